"""An ensemble of field readers whose CTC posteriors are averaged (issue #20, lever 5).

*Members* are copies of the trained reader fine-tuned a few epochs more with another seed and
augmentation strength (:func:`fine_tune_member`). They share the architecture and the input, so
for the same [3, 48, W] line they give the same frames; :class:`EnsembleReader` reads every
line with each of them and averages the per-frame posteriors (``log mean exp``, as the test-time
views of :mod:`.views`), then the average is decoded like one reading: beam search, the base
reader's lexicon and style layer, the ensemble's own field confidences.

A model folder keeps its members under ``members/<k>/`` (each a saved
:class:`~handwriting_pipeline.fieldreader.model.FieldReader`); ``fieldreader.json`` ``members``
describes them and holds the ensemble's vote calibration (fitted on the held-out train forms).
"""

from __future__ import annotations

import copy
import dataclasses
import logging
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from handwriting_pipeline.config import MembersSettings, ReaderTrainerSettings
from handwriting_pipeline.fieldreader.model import MEMBERS_DIR, FieldReader
from handwriting_pipeline.fieldreader.views import ViewsReader, average_log_probs

logger = logging.getLogger(__name__)


def member_trainer_settings(settings: MembersSettings, index: int,
                            base: ReaderTrainerSettings | Mapping[str, Any] | None = None) -> ReaderTrainerSettings:
    """The trainer settings of member ``index``: the base trainer's, with the member's epochs,
    learning rate, seed, augmentation and time cap (no early stop inside its few epochs)."""
    base = ReaderTrainerSettings.from_params(base or {})
    seeds, augment = list(settings.seeds), list(settings.augment)
    if index >= len(seeds):
        raise ValueError(f"train_fieldreader.members: member {index} has no seed (seeds: {seeds}); "
                         "give at least `count` seeds")
    return dataclasses.replace(
        base, epochs=int(settings.epochs), learning_rate=float(settings.learning_rate), seed=int(seeds[index]),
        augment=float(augment[index % len(augment)]) if augment else base.augment,
        max_minutes=settings.max_minutes, patience=max(int(settings.epochs), 1))


def copy_reader(reader: Any) -> Any:
    """A trainable copy of a reader with torch weights (config copied, no style layer)."""
    if reader.net is None:
        raise ValueError("the base field reader has no torch weights: load it with with_torch=True")
    config = copy.deepcopy(reader.config)
    config.views, config.calibration, config.members = {}, {}, {}
    return FieldReader(copy.deepcopy(reader.net), config, None, reader.threads)


def fine_tune_member(base: Any, train_lines: list, held_lines: list, settings: MembersSettings,
                     index: int, trainer: ReaderTrainerSettings | Mapping[str, Any] | None = None,
                     checkpoint_dir: str | Path | None = None) -> tuple[Any, list[dict[str, Any]], str]:
    """Member ``index``: a copy of ``base`` fine-tuned on ``train_lines`` (best epoch on
    ``held_lines``, the held-out train forms). Returns (member, history rows, stop reason)."""
    from handwriting_pipeline.fieldreader.training import train_reader

    member = copy_reader(base)
    member.net.freeze_before(float(settings.freeze))
    trainer_settings = member_trainer_settings(settings, index, trainer)
    logger.info("[fieldreader] member %d: seed %d, augment %.2f, lr %.1e, %d epochs", index, trainer_settings.seed,
                trainer_settings.augment, trainer_settings.learning_rate, trainer_settings.epochs)
    history, reason = train_reader(member, train_lines, held_lines, trainer_settings, checkpoint_dir=checkpoint_dir)
    member.config.summary = {"member": index, "epochs": len(history), "stop_reason": reason,
                             "seed": trainer_settings.seed, "augment": trainer_settings.augment,
                             "learning_rate": trainer_settings.learning_rate, "freeze": float(settings.freeze)}
    return member, history, reason


class EnsembleReader(ViewsReader):
    """Several field readers as one: every reader (same architecture and input, hence the same
    frames) reads each line — in the same test-time ``views``, plain by default — and the
    per-frame posteriors are averaged (``log mean exp``). ``config`` and every other attribute
    are the first reader's (the base model: its line settings, lexicon, style layer)."""

    def __init__(self, readers: Sequence[Any], views: Any = "plain") -> None:
        if not readers:
            raise ValueError("an ensemble needs at least one field reader")
        super().__init__(readers[0], views)
        self.readers = tuple(readers)

    def log_probs(self, arrays: list[np.ndarray]) -> list[np.ndarray]:
        per_reader = [ViewsReader(r, self.views).log_probs(arrays) for r in self.readers]
        if len(per_reader) == 1:
            return per_reader[0]
        out = []
        for i in range(len(arrays)):
            shapes = {p[i].shape for p in per_reader}
            if len(shapes) > 1:
                raise ValueError(f"ensemble members disagree on the frames of line {i}: {sorted(shapes)}; members "
                                 "must share the base reader's architecture and line settings")
            out.append(average_log_probs([p[i] for p in per_reader]))
        return out


def ensemble_of(reader: Any, count: int | None = None) -> EnsembleReader:
    """The reader and its first ``count`` saved members (all when None) as one reader."""
    members = list(getattr(reader, "members", []) or [])
    return EnsembleReader([reader, *(members if count is None else members[:count])])


__all__ = ["MEMBERS_DIR", "EnsembleReader", "copy_reader", "ensemble_of", "fine_tune_member",
           "member_trainer_settings"]
