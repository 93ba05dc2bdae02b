"""The field reader ensemble (``fieldreader_ensemble``, issue #20 lever 5): the trained reader and
its members — copies fine-tuned a few epochs more with other seeds and augmentation, saved in the
model folder under ``members/<k>/`` — read every line; their per-frame CTC posteriors are averaged
(:class:`~handwriting_pipeline.fieldreader.members.EnsembleReader`) and decoded like the plain
engine (beam search, the model's lexicon and style layer, field confidences).

The members and the calibration of the averaged reading for the vote come from training
(``train_fieldreader.members``; fitted on the held-out train forms) and are saved with the model
(``fieldreader.json`` ``members``); a model without members keeps this engine out of the run.

Floor 5 (engines). May import: floors 0-4 (the field reader, its members, the model datasets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from handwriting_pipeline.engines.fieldreader import FieldReaderEngine, FieldReaderSettings
from handwriting_pipeline.engines.fieldreader_views import saved_knowledge


@dataclass(frozen=True)
class FieldReaderEnsembleSettings(FieldReaderSettings):
    """``extract.fieldreader_ensemble``: the plain engine's settings and ``members``."""

    members: int = 0  # how many of the saved members join the base reader; 0 = all


def saved_members(model: Any) -> dict[str, Any]:
    """The ``members`` block a field reader model carries ({} when none or no model)."""
    return saved_knowledge(model, "members")


class FieldReaderEnsembleEngine(FieldReaderEngine):
    """The field reader and its members reading each line, posteriors averaged."""

    name: ClassVar[str] = "fieldreader_ensemble"
    version: ClassVar[str] = "1"
    default: ClassVar[bool] = False  # measured: README "Field reader" / benchmarks/ensemble_benchmark.py
    fast: ClassVar[bool] = False  # one reading per member: not the cascade's first stage
    settings_class = FieldReaderEnsembleSettings

    def __init__(self, model_ref: Any = None, members: int = 0, **settings: Any) -> None:
        super().__init__(model_ref, members=int(members), **settings)
        self.member_count = int(members)

    @classmethod
    def training_steps(cls) -> list:
        """None of its own: the field reader's training fine-tunes the members and fits their
        calibration (``train_fieldreader.members``, :func:`~handwriting_pipeline.fieldreader.recipe.add_members`)."""
        return []

    @classmethod
    def unavailable(cls, **inputs: Any) -> str | None:
        reason = super().unavailable(**inputs)
        model = inputs.get("model")
        if reason is None and not (saved_members(model).get("count") and model.bundle().members):
            reason = ("the field reader model carries no ensemble members: train them with "
                      "train_fieldreader.members.count > 0 (kedro run --pipeline train)")
        return reason

    @classmethod
    def vote_calibration(cls, model: Any = None, **inputs: Any) -> dict[str, Any] | None:
        """The calibration of the averaged reading, fitted on the model's held-out train forms."""
        return dict(saved_members(model).get("calibration") or {}) or None

    @property
    def reader(self):
        from handwriting_pipeline.fieldreader.members import ensemble_of

        base = super().reader
        for member in base.members:
            member.threads = self.threads
        return ensemble_of(base, self.member_count or None)
