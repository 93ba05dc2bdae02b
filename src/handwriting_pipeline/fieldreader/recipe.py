"""The field reader's training recipe from the ``train_fieldreader`` parameters: hold out forms ->
fine-tune -> lexicon and calibration -> style layer -> members. The ``train`` pipeline runs these
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


def _lines(forms: Any, names: list[str], reader: Any) -> list:
    from handwriting_pipeline.fieldreader.training import prepare_lines

    return prepare_lines(((n, forms.images[n], forms.fields(n)) for n in names), reader.config.lines)


def fine_tune(train_forms: Any, split: dict[str, list[str]], params: Mapping[str, Any]) -> tuple[Any, pd.DataFrame]:
    """The stock recognizer fine-tuned on the fit forms' lines, validated on the held-out ones."""
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.training import train_reader

    settings = FieldReaderTrainSettings.from_params(params)
    reader = FieldReader.stock()
    reader.net.freeze_before(float(settings.freeze))
    fit_lines, held_lines = _lines(train_forms, split["fit"], reader), _lines(train_forms, split["holdout"], reader)
    history, reason = train_reader(reader, fit_lines, held_lines, settings.trainer,
                                   checkpoint_dir=settings.checkpoint_dir, resume=bool(settings.resume))
    reader.config.summary = {"fit_forms": len(split["fit"]), "holdout_forms": len(split["holdout"]),
                             "epochs": len(history), "stop_reason": reason}
    if settings.synthetic.enabled:
        more, synth_reason = with_synthetic_lines(reader, fit_lines, held_lines, settings)
        history += [{**row, "stage": "synthetic"} for row in more]
        reader.config.summary.update(epochs=len(history), synthetic_stop_reason=synth_reason)
    return reader, pd.DataFrame(history)


def with_synthetic_lines(reader: Any, fit_lines: list, held_lines: list,
                         settings: FieldReaderTrainSettings) -> tuple[list[dict[str, Any]], str]:
    """The fine-tuned reader trained further on its fit lines plus real-glyph synthetic lines
    (:mod:`~handwriting_pipeline.fieldreader.synthlines`: glyphs of the fit forms only, aligned by the
    reader itself), ``train_fieldreader.synthetic.epochs`` epochs at its learning rate."""
    from dataclasses import replace

    from handwriting_pipeline.fieldreader.synthlines import synthetic_lines
    from handwriting_pipeline.fieldreader.training import train_reader

    reader.net.eval()
    synth = synthetic_lines(reader, fit_lines, settings.synthetic)
    logger.info("[fieldreader] %d synthetic lines from the fit forms' glyphs", len(synth))
    trainer = replace(settings.trainer, epochs=int(settings.synthetic.epochs),
                      learning_rate=float(settings.synthetic.learning_rate))
    folder = f"{settings.checkpoint_dir}/synthetic" if settings.checkpoint_dir else None
    history, reason = train_reader(reader, fit_lines + synth, held_lines, trainer, checkpoint_dir=folder)
    reader.config.summary["synthetic_lines"] = len(synth)
    return history, reason


def not_trained() -> tuple[NotTrained, pd.DataFrame]:
    """What :func:`fine_tune` gives when ``train.models`` leaves the field reader out: the saved
    model stays as it is."""
    return NotTrained("fieldreader not in train.models"), pd.DataFrame()


def add_lexicon_and_calibration(reader: Any, train_forms: Any, split: dict[str, list[str]],
                                params: Mapping[str, Any]) -> Any:
    """The lexicon, decoding settings and confidence calibration learned on the held-out forms,
    saved with the model (:func:`~handwriting_pipeline.fieldreader.knowledge.add_knowledge`)."""
    from handwriting_pipeline.fieldreader.knowledge import add_knowledge

    return add_knowledge(reader, train_forms, split, params)


def add_style_layer(reader: Any, train_forms: Any, split: dict[str, list[str]], params: Mapping[str, Any]) -> Any:
    """The style layer (case, dots, spaces from the glyphs), kept when it reads the held-out forms
    better (:func:`~handwriting_pipeline.fieldreader.knowledge.add_style_layer`)."""
    from handwriting_pipeline.fieldreader import knowledge

    return knowledge.add_style_layer(reader, train_forms, split, params)


def add_members(reader: Any, train_forms: Any, split: dict[str, list[str]], params: Mapping[str, Any]) -> Any:
    """``members.count`` copies of the trained reader fine-tuned a few epochs more (other seeds and
    augmentation; best epoch on the held-out forms), saved with it, and the vote calibration of
    their averaged reading fitted on the held-out forms (the ``fieldreader_ensemble`` engine)."""
    from handwriting_pipeline.fieldreader.knowledge import members_knowledge
    from handwriting_pipeline.fieldreader.members import fine_tune_member

    settings = FieldReaderTrainSettings.from_params(params)
    count = int(settings.members.count)
    if not hasattr(reader, "config") or count <= 0:  # NotTrained, or no members asked for
        return reader
    train_lines, held_lines = _lines(train_forms, split["fit"], reader), _lines(train_forms, split["holdout"], reader)
    folder = settings.checkpoint_dir
    reader.members = [fine_tune_member(reader, train_lines, held_lines, settings.members, k, settings.trainer,
                                       checkpoint_dir=f"{folder}/member_{k}" if folder else None)[0]
                      for k in range(count)]
    holdout = train_forms.subset(split["holdout"])
    from handwriting_pipeline.forms.lines import cut_lines

    lines = [cut_lines(holdout.images[n], reader.config.lines) for n in split["holdout"]]
    reader.config.members = members_knowledge(reader, lines, [holdout.fields(n) for n in split["holdout"]],
                                              split["holdout"], holdout.labels)
    return reader
