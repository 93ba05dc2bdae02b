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

The confidence the thresholds apply to is, when it measurably ranks errors better, the vote's
confidence **recalibrated** from richer features (engines agreeing exactly, how the text is
written: mixed case, look-alike letters, dots; :mod:`handwriting_pipeline.ensemble.recalibrate`),
fitted on the same out-of-fold forms and saved with the reader (``summary["recalibration"]``). It
is on only when, on those forms, the FLA after a person reviews the ``REVIEW_SHARE`` % least sure
fields gains with a paired 95 % bootstrap interval above 0 (the choice is saved with the reader's
other choices); the thresholds are then fitted on cross-fitted confidences (each form voted with
the recalibration of the other folds), so they hold for forms the recalibration never saw.

The thresholds: :func:`~handwriting_pipeline.ensemble.trust.field_thresholds` (Learn then Test
with Clopper-Pearson bounds) at ``digitize.review.alpha`` per level, ``digitize.review.delta``
and ``start_rate``.
"""

from __future__ import annotations

import dataclasses
import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from handwriting_pipeline.ensemble.cascade import cascade_tables, replay
from handwriting_pipeline.ensemble.recalibrate import crossfit_recalibration
from handwriting_pipeline.ensemble.settings import EnsembleSettings
from handwriting_pipeline.ensemble.trust import field_thresholds, trust_rows
from handwriting_pipeline.methods import untrained_engines

logger = logging.getLogger(__name__)


def slow_engines(extract_params: Mapping[str, Any]) -> list[Any]:
    """The cascade's other engines in a default digitize run that need no trained model (the
    trained ones are not there yet while training): their ready specs."""
    return untrained_engines(extract_params, where="guarantee")


#: the share of fields (%) a person reviews in the recalibration's choice (writing level)
REVIEW_SHARE = 15


def cascade_trust_rows(labels: pd.DataFrame, read: Mapping[str, pd.DataFrame], vote: Any, normalize: Mapping[str, Any],
                  per_fold: Mapping[int, Any] | None = None, fold_of: Mapping[str, int] | None = None) -> pd.DataFrame:
    """:func:`trust_rows` of the cascade's readings; with ``per_fold``, each fold's forms voted
    with the recalibration fitted without them."""
    if per_fold is None:
        return trust_rows(labels, read, vote, dict(normalize))
    parts = [trust_rows(labels[labels["file_name"].map(fold_of) == k], read,
                        dataclasses.replace(vote, recalibration={**vote.recalibration, **recal}), dict(normalize))
             for k, recal in per_fold.items()]
    return pd.concat(parts, ignore_index=True)


def reviewed_fla(rows: pd.DataFrame, share: float = REVIEW_SHARE) -> pd.Series:
    """Per form, 1 when all its fields are right as written after a person fixes the ``share`` %
    of fields with the lowest ``written_conf`` (:func:`trust_rows`)."""
    order = rows.assign(conf=rows["written_conf"].astype(float).fillna(-1.0)).sort_values("conf", kind="stable")
    right = order["written_right"].astype(bool).copy()
    right.iloc[: int(round(len(order) * share / 100))] = True
    return right.groupby(order["file_name"]).all().astype(float)


def recalibration_choice(plain: pd.DataFrame, crossfit: pd.DataFrame, setting: Mapping[str, Any]) -> Any:
    """On only when reviewing the least sure fields by the cross-fitted recalibrated confidence
    leaves more forms right than by the vote's own (paired bootstrap over forms, low > 0)."""
    from handwriting_pipeline.fieldreader.oof import Choice
    from handwriting_pipeline.selection import paired_bootstrap

    with_, without = reviewed_fla(crossfit), reviewed_fla(plain)
    gain = paired_bootstrap(with_, without)
    return Choice("confidence recalibration", gain.better, dict(setting), len(with_), 100 * float(without.mean()),
                  100 * float(with_.mean()), gain,
                  f"FLA after {REVIEW_SHARE} % of fields reviewed, least sure first; cross-fitted")


def fit_guarantees(fast: str, fast_table: pd.DataFrame, calibration: Mapping[str, Any], labels: pd.DataFrame,
                   slow_tables: Mapping[str, pd.DataFrame], ensemble_params: Mapping[str, Any],
                   alphas: Mapping[str, float], delta: float, normalize: Mapping[str, Any] | None = None,
                   start_rate: float = 0.0, recalibrate: bool = True) -> dict[str, Any]:
    """``{"guarantees": {"cascade:<engines>": {level: {alpha, delta, fitted_on, fields}}},
    "recalibration": {engine set: ...} (empty when off), "choice": Choice}`` of the cascade whose
    fast stage is ``fast`` (its predictions on the labelled forms, with its vote ``calibration``)
    and whose slower engines read the forms it escalates (``slow_tables``: their readings of all
    the forms; only the escalated ones count)."""
    ensemble = EnsembleSettings.from_params(ensemble_params)
    vote = dataclasses.replace(ensemble.vote, calibration={**ensemble.vote.calibration, fast: dict(calibration)})
    read = cascade_tables(replay({fast: fast_table, **slow_tables}), fast_table["file_name"].tolist(), [fast],
                          list(slow_tables), vote, ensemble.cascade)
    normalize = dict(normalize or {})
    rows, recalibration, choice = cascade_trust_rows(labels, read, vote, normalize), {}, None
    if recalibrate:
        recal, per_fold, fold_of = crossfit_recalibration(labels, [{fast: fast_table}, {fast: fast_table, **slow_tables}],
                                                          vote)
        crossfit = cascade_trust_rows(labels, read, vote, normalize, per_fold, fold_of)
        choice = recalibration_choice(rows, crossfit, {"folds": len(per_fold), "engine_sets": sorted(recal)})
        if choice.on:
            rows, recalibration = crossfit, recal
    sent = max((len(read[m]) for m in slow_tables if m in read), default=0)
    fitted_on = (f"{labels['file_name'].nunique()} train forms read out of fold by {fast}, "
                 f"{sent} escalated to {', '.join(slow_tables) or 'no other engine'}"
                 + (", confidences recalibrated (cross-fitted)" if recalibration else ""))
    entry = {}
    for level, alpha in alphas.items():
        found = field_thresholds(rows, float(alpha), float(delta), on=level, start_rate=start_rate)
        entry[level] = {"alpha": float(alpha), "delta": float(delta), "fitted_on": fitted_on,
                        "fields": {k: {f: t.to_dict()[f] for f in ("threshold", "n", "sure", "errors", "bound")}
                                   for k, t in found.items()}}
    key = f"cascade:{'+'.join(sorted([fast, *slow_tables]))}"
    logger.info("guarantee %s fitted on %s: %s", key, fitted_on, {lvl: {k: f["threshold"] for k, f in e["fields"].items()}
                                                                  for lvl, e in entry.items()})
    return {"guarantees": {key: entry}, "recalibration": recalibration, "choice": choice}


def add_guarantees(reader: Any, fast: str, oof_predictions: pd.DataFrame, train_forms: Any,
                   extract_params: Mapping[str, Any], ensemble_params: Mapping[str, Any],
                   digitize_params: Mapping[str, Any], cache: Any = None) -> Any:
    """``reader`` (read by engine ``fast``) with the guarantees of the cascade it leads in its
    ``config.summary["guarantees"]``, the vote's recalibration in ``summary["recalibration"]`` and
    its choice among ``summary["oof"]["choices"]``; a reader that was not trained, or no out-of-fold
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
    fitted = fit_guarantees(fast, table, reader.config.calibration, labels, slow, ensemble_params,
                            settings.review.alpha, settings.review.delta, settings.normalize, settings.review.start_rate)
    summary = reader.config.summary
    summary["guarantees"], summary["recalibration"] = fitted["guarantees"], fitted["recalibration"]
    if fitted["choice"] is not None:
        oof = summary.setdefault("oof", {})
        oof["choices"] = [c for c in oof.get("choices", []) if c["component"] != fitted["choice"].component]
        oof["choices"].append(fitted["choice"].to_json())
    return reader


__all__ = ["REVIEW_SHARE", "add_guarantees", "cascade_trust_rows", "fit_guarantees", "recalibration_choice",
           "reviewed_fla", "slow_engines"]
