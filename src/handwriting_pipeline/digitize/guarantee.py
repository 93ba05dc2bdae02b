"""Digitize's guarantee, fitted where the trained reader is built: on the out-of-fold train forms.

A measured guarantee (``digitize.review.guarantees``: per method and engine set, per level, a
threshold per field at or above which a field is sure) holds only for the confidences it was
fitted on. :func:`add_guarantees` fits it for the digitize cascade a trained reader will lead —
that reader as the fast stage, reading the out-of-fold forms as it was chosen to
(``oof_predictions``: each form read by a fold reader that never saw it), the default engines
that need no trained model (RapidOCR) reading the forms the cascade escalates — and saves it with
the reader (``config.summary["guarantees"]``), so model and guarantee are versioned together.
Digitize takes a model's guarantees over those of the parameters
(:func:`handwriting_pipeline.methods.model_guarantees`).

The thresholds: :func:`~handwriting_pipeline.ensemble.trust.field_thresholds` (Learn then Test
with Clopper-Pearson bounds) at ``digitize.review.alpha`` per level, ``digitize.review.delta``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from handwriting_pipeline.ensemble.cascade import cascade_tables, replay
from handwriting_pipeline.ensemble.settings import EnsembleSettings
from handwriting_pipeline.ensemble.trust import field_thresholds, trust_rows
from handwriting_pipeline.methods import chosen_engines, ready_engines
from handwriting_pipeline.registry import engine_class

logger = logging.getLogger(__name__)


def slow_engines(extract_params: Mapping[str, Any]) -> list[Any]:
    """The cascade's other engines in a default digitize run that need no trained model (the
    trained ones are not there yet while training): their ready specs."""
    wanted, _ = chosen_engines("default", images_only=True)
    wanted = [m for m in wanted if not engine_class(m).requires_training()]
    specs, _ = ready_engines(wanted, False, extract_params, {}, {}, where="guarantee", images_only=True)
    return specs


def fit_guarantees(fast: str, fast_table: pd.DataFrame, calibration: Mapping[str, Any], labels: pd.DataFrame,
                   slow_tables: Mapping[str, pd.DataFrame], ensemble_params: Mapping[str, Any],
                   alphas: Mapping[str, float], delta: float, normalize: Mapping[str, Any] | None = None
                   ) -> dict[str, Any]:
    """``{"cascade:<engines>": {level: {alpha, delta, fitted_on, fields}}}`` of the cascade whose
    fast stage is ``fast`` (its predictions on the labelled forms, with its vote ``calibration``)
    and whose slower engines read the forms it escalates (``slow_tables``: their readings of all
    the forms; only the escalated ones count)."""
    ensemble = EnsembleSettings.from_params(ensemble_params)
    vote = dataclasses.replace(ensemble.vote, calibration={**ensemble.vote.calibration, fast: dict(calibration)})
    read = cascade_tables(replay({fast: fast_table, **slow_tables}), fast_table["file_name"].tolist(), [fast],
                          list(slow_tables), vote, ensemble.cascade)
    rows = trust_rows(labels, read, vote, dict(normalize or {}))
    sent = max((len(read[m]) for m in slow_tables if m in read), default=0)
    fitted_on = (f"{labels['file_name'].nunique()} train forms read out of fold by {fast}, "
                 f"{sent} escalated to {', '.join(slow_tables) or 'no other engine'}")
    entry = {}
    for level, alpha in alphas.items():
        found = field_thresholds(rows, float(alpha), float(delta), on=level)
        entry[level] = {"alpha": float(alpha), "delta": float(delta), "fitted_on": fitted_on,
                        "fields": {k: {f: t.to_dict()[f] for f in ("threshold", "n", "sure", "errors", "bound")}
                                   for k, t in found.items()}}
    key = f"cascade:{'+'.join(sorted([fast, *slow_tables]))}"
    logger.info("guarantee %s fitted on %s: %s", key, fitted_on, {lvl: {k: f["threshold"] for k, f in e["fields"].items()}
                                                                  for lvl, e in entry.items()})
    return {key: entry}


def add_guarantees(reader: Any, fast: str, oof_predictions: pd.DataFrame, train_forms: Any,
                   extract_params: Mapping[str, Any], ensemble_params: Mapping[str, Any],
                   digitize_params: Mapping[str, Any], cache: Any = None) -> Any:
    """``reader`` (read by engine ``fast``) with the guarantees of the cascade it leads in its
    ``config.summary["guarantees"]``; a reader that was not trained, or no out-of-fold
    predictions, comes back as it is."""
    from handwriting_pipeline.digitize.core import DigitizeSettings
    from handwriting_pipeline.engines.runner import run_engine
    from handwriting_pipeline.predictions import normalise_predictions

    if not hasattr(reader, "config") or oof_predictions is None or len(oof_predictions) == 0:
        return reader
    settings = DigitizeSettings.from_params(digitize_params)
    table = normalise_predictions(pd.DataFrame(oof_predictions))
    names = table["file_name"].tolist()
    labels = train_forms.labels.set_index("file_name").loc[names].reset_index()
    workers = int(extract_params.get("workers") or 1)
    slow = {s.method: run_engine(s.build(), names, train_forms.images, cache=cache, workers=workers)
            for s in slow_engines(extract_params)}
    reader.config.summary["guarantees"] = fit_guarantees(
        fast, table, reader.config.calibration, labels, slow, ensemble_params, settings.review.alpha,
        settings.review.delta, settings.normalize)
    return reader


__all__ = ["add_guarantees", "fit_guarantees", "slow_engines"]
