"""The field reader's training recipe from the ``train_fieldreader`` parameters: hold out forms ->
fine-tune -> lexicon and calibration -> style layer. The ``train`` pipeline runs these
functions as its steps (``TRAINING["fieldreader"]`` in ``pipelines/train/pipeline.py``); torch is
imported only when a step runs."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd

from handwriting_pipeline.config import FieldReaderTrainSettings
from handwriting_pipeline.selection import holdout_names
from handwriting_pipeline.training.not_trained import NotTrained

logger = logging.getLogger(__name__)


def hold_out_forms(train_forms: Any, params: Mapping[str, Any]) -> dict[str, list[str]]:
    """Split the train forms into forms to learn from and held-out forms (early stopping and
    confidence calibration): the last ``holdout_share`` of them, at most ``holdout_forms``."""
    settings = FieldReaderTrainSettings.from_params(params)
    return holdout_names(train_forms.labels["file_name"].tolist(), int(settings.holdout_forms),
                         float(settings.holdout_share))


def _lines(forms: Any, names: list[str], reader: Any, second: Mapping[str, Any] | None = None) -> list:
    from handwriting_pipeline.fieldreader.training import prepare_lines

    return prepare_lines(((n, forms.images[n], forms.fields(n)) for n in names), reader.config.lines, second=second)


def _fit_lines(forms: Any, names: list[str], reader: Any, settings: FieldReaderTrainSettings) -> list:
    """The fit lines with the labels ``train_fieldreader.labels`` asks for (fieldreader/labels.py)."""
    from handwriting_pipeline.fieldreader.labels import second_labels, use_labels

    second = second_labels(settings.labels, settings.second_annotation)
    return use_labels(_lines(forms, names, reader, second), settings.labels)


def fine_tune(train_forms: Any, split: dict[str, list[str]], params: Mapping[str, Any],
              form: str | None = None) -> tuple[Any, pd.DataFrame]:
    """The stock recognizer fine-tuned on the fit forms' lines, validated on the held-out ones.
    ``form``: the form spec whose lines it reads (``form`` in parameters.yml; None: the HSF form)."""
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.training import train_reader

    settings = FieldReaderTrainSettings.from_params(params)
    reader = FieldReader.stock(form, height=settings.line_height)
    reader.net.freeze_before(float(settings.freeze))
    fit_lines, held_lines = _fit_lines(train_forms, split["fit"], reader, settings), _lines(train_forms, split["holdout"], reader)
    history, reason = train_reader(reader, fit_lines, held_lines, settings.trainer,
                                   checkpoint_dir=settings.checkpoint_dir, resume=bool(settings.resume))
    reader.config.summary = {"form": reader.form.name, "fit_forms": len(split["fit"]), "holdout_forms": len(split["holdout"]),
                             "epochs": len(history), "stop_reason": reason}
    return reader, pd.DataFrame(history)


def not_trained() -> tuple[NotTrained, pd.DataFrame]:
    """What :func:`fine_tune` gives when ``train.models`` leaves the field reader out: the saved
    model stays as it is."""
    return NotTrained("fieldreader not in train.models"), pd.DataFrame()


def add_lexicon_and_calibration(reader: Any, train_forms: Any, split: dict[str, list[str]],
                                params: Mapping[str, Any]) -> Any:
    """The lexicon, decoding settings and confidence calibration learned on the held-out forms,
    saved with the model (:func:`~handwriting_pipeline.fieldreader.tuning.add_lexicon_and_calibration`)."""
    from handwriting_pipeline.fieldreader import tuning

    return tuning.add_lexicon_and_calibration(reader, train_forms, split, params)


def add_style_layer(reader: Any, train_forms: Any, split: dict[str, list[str]], params: Mapping[str, Any]) -> Any:
    """The style layer (case, dots, spaces from the glyphs), kept when it reads the held-out forms
    better (:func:`~handwriting_pipeline.fieldreader.tuning.add_style_layer`)."""
    from handwriting_pipeline.fieldreader import tuning

    return tuning.add_style_layer(reader, train_forms, split, params)
