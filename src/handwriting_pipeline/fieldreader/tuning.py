"""Tuning a trained field reader on held-out train forms: what it carries besides its weights,
learned without the evaluation split:

* the lexicon of the fit forms' labels, with the decoding settings (δ, case prior) that read the
  held-out training forms best (:func:`choose_lexicon`);
* the calibration of its per-field confidences for the vote, fitted on the same held-out forms
  (:func:`calibrate`, the vote's own logistic fit);
* the style layer (:mod:`.style`): its classifiers trained on the fit forms, its weights chosen on
  the held-out forms, kept only when it reads them better than the lexicon alone (:func:`fit_style`).
"""

from __future__ import annotations

import itertools
import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from handwriting_pipeline.config import FieldReaderTrainSettings
from handwriting_pipeline.fieldreader.lexicon import Lexicon
from handwriting_pipeline.fieldreader.model import FieldReader
from handwriting_pipeline.fieldreader.predict import FormReading, read_lines
from handwriting_pipeline.fields.formspec import is_hsf_layout
from handwriting_pipeline.forms.lines import cut_lines

logger = logging.getLogger(__name__)


def exact_share(readings: Sequence[FormReading], gold: Sequence[Mapping[str, str]]) -> float:
    """Share of forms whose four fields are all exactly right (FLA / 100)."""
    return float(np.mean([all(r.fields[k] == g[k] for k in r.fields) for r, g in zip(readings, gold)])) if gold else 0.0


def choose_lexicon(reader: FieldReader, lines: Sequence[dict[str, np.ndarray]], gold: Sequence[Mapping[str, str]],
                   fit_labels: Sequence[Mapping[str, str]], grid: Mapping[str, Sequence[float]],
                   max_edits: int = 2) -> tuple[Lexicon | None, list[FormReading]]:
    """The lexicon settings (``grid``: penalty, case_weight lists) that read ``lines`` best;
    None (no lexicon) when none beats plain beam search."""
    best_lexicon, best = None, read_lines(reader, lines)
    best_score = exact_share(best, gold)
    logger.info("fieldreader on %d held-out forms: FLA %.1f without lexicon", len(gold), 100 * best_score)
    for penalty, case_weight in itertools.product(grid["penalty"], grid["case_weight"]):
        lexicon = Lexicon.from_labels(fit_labels, penalty=penalty, case_weight=case_weight, max_edits=max_edits)
        readings = read_lines(reader, lines, rerank=lexicon.rerank)
        score = exact_share(readings, gold)
        logger.info("  lexicon penalty %.1f case_weight %.1f: FLA %.1f", penalty, case_weight, 100 * score)
        if score > best_score:
            best_lexicon, best, best_score = lexicon, readings, score
    return best_lexicon, best


def calibrate(readings: Sequence[FormReading], names: Sequence[str], labels: pd.DataFrame,
              form: Any = None) -> dict[str, Any]:
    """The vote's per-field calibration (``ensemble.vote.calibration`` format) of these readings of
    ``form`` (the reader's form spec; None: the HSF form), one entry per field of the form."""
    from handwriting_pipeline.training.calibration import fit_calibration

    table = pd.DataFrame([{"file_name": n, **r.fields, **{f"{k}_conf": r.confidence[k] for k in r.fields}}
                          for n, r in zip(names, readings)])
    calibration = fit_calibration(labels, {"fieldreader": table}, form=form).get("fieldreader", {})
    for values in calibration.values():
        values.pop("n", None)
    return calibration


def add_lexicon_and_calibration(reader: Any, train_forms: Any, split: dict[str, list[str]],
                                params: Mapping[str, Any] | FieldReaderTrainSettings) -> Any:
    """Save with the model what decoding and the vote need, learned on the held-out forms: the
    lexicon of the fit forms' labels with the decoding settings that read them best, and the
    per-field confidence calibration. ``train_forms``: labelled forms; ``split``:
    ``{"fit": [...], "holdout": [...]}`` file names; ``params``: the ``train_fieldreader`` block
    (its ``lexicon``)."""
    if not hasattr(reader, "config"):  # NotTrained
        return reader
    holdout = train_forms.subset(split["holdout"])
    lines = [cut_lines(holdout.images[n], reader.config.lines) for n in split["holdout"]]
    gold = [holdout.fields(n) for n in split["holdout"]]
    settings = FieldReaderTrainSettings.from_params(params)
    if is_hsf_layout(reader.form):  # the lexicon is written for the HSF fields
        lexicon, readings = choose_lexicon(reader, lines, gold, [train_forms.fields(n) for n in split["fit"]],
                                           settings.lexicon.grid, int(settings.lexicon.max_edits))
    else:
        logger.info("form '%s': no lexicon (it is written for the HSF layout); plain beam search", reader.form.name)
        lexicon, readings = None, read_lines(reader, lines)
    reader.config.lexicon = lexicon.to_json() if lexicon else {}
    reader.config.calibration = calibrate(readings, split["holdout"], holdout.labels, reader.form)
    return reader


def fit_style(reader: FieldReader, fit_lines: Sequence[Mapping[str, np.ndarray]], fit_texts: Sequence[Mapping[str, str]],
              lines: Sequence[dict[str, np.ndarray]], gold: Sequence[Mapping[str, str]], lexicon: Lexicon | None,
              grid: Sequence[float], features: Sequence[str] = ("all",)) -> tuple[Any, list[FormReading]]:
    """The style layer: classifiers fitted on the fit forms' lines (``fit_texts``: each line's true
    text) on each feature set of ``features`` (:data:`~.style.FEATURE_SETS`), the feature set and
    weights that read the held-out ``lines`` best. Returns (StyleModel or None when none reads the
    held-out forms better than the lexicon alone, the held-out readings as decoded)."""
    import time

    from handwriting_pipeline.fieldreader.style import (
        FEATURE_SETS,
        LineBeams,
        StyleModel,
        StyleReranker,
        collect_examples,
        fit_weights,
        line_choices,
    )

    started = time.time()
    plain = read_lines(reader, lines, rerank=lexicon.rerank if lexicon else None)
    baseline = exact_share(plain, gold)
    examples, read = collect_examples(reader, fit_lines, fit_texts), LineBeams.read(reader, lines)
    model, weights, score = None, {}, baseline
    for name in features:
        candidate = StyleModel.fit(examples, *FEATURE_SETS[name])
        found, share = fit_weights(line_choices(reader, read, StyleReranker(reader.config.lines, candidate, lexicon)),
                                   gold, grid)
        logger.info("style layer (%s features) on %d held-out forms: FLA %.1f (lexicon alone %.1f), weights %s",
                    name, len(gold), 100 * share, 100 * baseline, found)
        if share > score:
            model, weights, score = candidate, found, share
    if model is None:
        return None, plain
    model.weights = weights
    model.summary.update({"holdout_fla": round(100 * score, 2), "holdout_fla_without": round(100 * baseline, 2),
                          "fit_minutes": round((time.time() - started) / 60, 2)})
    return model, read_lines(reader, lines, rerank=StyleReranker(reader.config.lines, model, lexicon))


def add_style_layer(reader: Any, train_forms: Any, split: dict[str, list[str]],
                    params: Mapping[str, Any] | FieldReaderTrainSettings) -> Any:
    """Fit the style layer (case, dots, spaces from the glyphs) on the fit forms, choose its weights
    on the held-out forms and keep it only when it reads them better than the lexicon alone; then
    recalibrate the confidences on the readings as the engine will decode them."""
    settings = FieldReaderTrainSettings.from_params(params)
    if not hasattr(reader, "config") or not settings.style.enabled:  # NotTrained, or switched off
        return reader
    if not is_hsf_layout(reader.form):
        logger.info("form '%s': no style layer (it is written for the HSF layout)", reader.form.name)
        return reader
    from handwriting_pipeline.fieldreader.text import line_targets

    def cut(names):
        return [cut_lines(train_forms.images[n], reader.config.lines) for n in names]

    lexicon = Lexicon.from_json(reader.config.lexicon) if reader.config.lexicon else None
    style, readings = fit_style(reader, cut(split["fit"]), [line_targets(train_forms.fields(n)) for n in split["fit"]],
                                cut(split["holdout"]), [train_forms.fields(n) for n in split["holdout"]], lexicon,
                                settings.style.grid, settings.style.features)
    reader.style = style
    if style is not None:
        reader.config.calibration = calibrate(readings, split["holdout"], train_forms.subset(split["holdout"]).labels,
                                              reader.form)
    return reader


def saved_rerank(reader: Any, lexicon: bool = True, style: bool = True) -> Any:
    """The re-ranker a saved reader decodes with: its style layer over its lexicon when it has one
    (and ``style``), else its lexicon's (when it has one and ``lexicon``), else None."""
    from handwriting_pipeline.fieldreader.style import StyleReranker

    data = reader.config.lexicon
    known = Lexicon.from_json(data) if (lexicon and data) else None
    if style and getattr(reader, "style", None) is not None:
        return StyleReranker(reader.config.lines, reader.style, known)
    return known.rerank if known else None
