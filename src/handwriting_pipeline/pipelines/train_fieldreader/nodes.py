"""Nodes of the field reader's training: hold out forms -> fine-tune -> lexicon and calibration
-> style layer.
The heavy lifting lives in :mod:`handwriting_pipeline.fieldreader`."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from handwriting_pipeline.config import FieldReaderTrainSettings

logger = logging.getLogger(__name__)


def hold_out_forms(train_forms: Any, params: Mapping[str, Any]) -> dict[str, list[str]]:
    """Split the train forms into forms to learn from and held-out forms (early stopping and
    confidence calibration): the last ``holdout_share`` of them, at most ``holdout_forms``."""
    settings = FieldReaderTrainSettings.from_params(params)
    names = train_forms.labels["file_name"].tolist()
    n = min(int(settings.holdout_forms), max(1, round(len(names) * float(settings.holdout_share))))
    return {"fit": names[: len(names) - n], "holdout": names[len(names) - n:]}


def _lines(forms: Any, names: list[str], reader: Any) -> list:
    from handwriting_pipeline.fieldreader.training import prepare_lines

    return prepare_lines(((n, forms.images[n], forms.fields(n)) for n in names), reader.config.lines)


def fine_tune_fieldreader(train_forms: Any, split: dict[str, list[str]], models: list[str],
                          params: Mapping[str, Any]) -> tuple[Any, pd.DataFrame]:
    """The stock recognizer fine-tuned on the fit forms' lines (``NotTrained`` when ``train.models``
    leaves it out: the saved model then stays as it is)."""
    from handwriting_pipeline.datasets.model import NotTrained

    if "fieldreader" not in models:
        logger.info("train: fieldreader not in train.models, not trained")
        return NotTrained("fieldreader not in train.models"), pd.DataFrame()
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.training import train_reader

    settings = FieldReaderTrainSettings.from_params(params)
    reader = FieldReader.stock()
    reader.net.freeze_before(float(settings.freeze))
    history, reason = train_reader(reader, _lines(train_forms, split["fit"], reader),
                                   _lines(train_forms, split["holdout"], reader), settings.trainer,
                                   checkpoint_dir=settings.checkpoint_dir, resume=bool(settings.resume))
    reader.config.summary = {"fit_forms": len(split["fit"]), "holdout_forms": len(split["holdout"]),
                             "epochs": len(history), "stop_reason": reason}
    return reader, pd.DataFrame(history)


def add_knowledge(reader: Any, train_forms: Any, split: dict[str, list[str]], params: Mapping[str, Any]) -> Any:
    """Save with the model what decoding and the vote need, learned on the held-out forms: the
    lexicon of the fit forms' labels with the decoding settings that read them best, and the
    per-field confidence calibration."""
    if not hasattr(reader, "config"):  # NotTrained
        return reader
    from handwriting_pipeline.fieldreader.knowledge import calibrate, choose_lexicon
    from handwriting_pipeline.fieldreader.lines import cut_lines

    holdout = train_forms.subset(split["holdout"])
    lines = [cut_lines(holdout.images[n], reader.config.lines) for n in split["holdout"]]
    gold = [holdout.fields(n) for n in split["holdout"]]
    settings = FieldReaderTrainSettings.from_params(params).lexicon
    lexicon, readings = choose_lexicon(reader, lines, gold, [train_forms.fields(n) for n in split["fit"]],
                                       settings.grid, int(settings.max_edits))
    reader.config.lexicon = lexicon.to_json() if lexicon else {}
    reader.config.calibration = calibrate(readings, split["holdout"], holdout.labels)
    return reader


def fit_style_layer(reader: Any, train_forms: Any, split: dict[str, list[str]], params: Mapping[str, Any]) -> Any:
    """Fit the style layer (case, dots, spaces from the glyphs) on the fit forms, choose its weights
    on the held-out forms and keep it only when it reads them better; recalibrate the confidences
    on the readings as the engine will decode them."""
    settings = FieldReaderTrainSettings.from_params(params)
    if not hasattr(reader, "config") or not settings.style.enabled:
        return reader
    from handwriting_pipeline.fieldreader.knowledge import calibrate, fit_style
    from handwriting_pipeline.fieldreader.lexicon import Lexicon
    from handwriting_pipeline.fieldreader.lines import cut_lines
    from handwriting_pipeline.fieldreader.text import line_targets

    def cut(names):
        return [cut_lines(train_forms.images[n], reader.config.lines) for n in names]

    lexicon = Lexicon.from_json(reader.config.lexicon) if reader.config.lexicon else None
    style, readings = fit_style(reader, cut(split["fit"]), [line_targets(train_forms.fields(n)) for n in split["fit"]],
                                cut(split["holdout"]), [train_forms.fields(n) for n in split["holdout"]], lexicon,
                                settings.style.grid, settings.style.geometry)
    reader.style = style
    if style is not None:
        reader.config.calibration = calibrate(readings, split["holdout"], train_forms.subset(split["holdout"]).labels)
    return reader
