"""The field reader with test-time views (``fieldreader_tta``): the same trained model reads
every line in several views (small shifts, scales, binarization thresholds; see
:mod:`handwriting_pipeline.fieldreader.views`) whose CTC posteriors are averaged, then decodes
the average like the plain engine (beam search, lexicon, field confidences).

The views and the calibration of this reading for the vote are chosen and fitted on the model's
held-out train forms and saved with the model (``fieldreader.json`` ``views``:
``benchmarks/vote_benchmark.py --save-model``); a model without them keeps this engine out of the
default run, and the engine joins the vote as its own reader with its own calibration.

Floor 5 (engines). May import: floors 0-4 (the field reader, its views, the model datasets).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, ClassVar

from handwriting_pipeline.engines.fieldreader import FieldReaderEngine, FieldReaderSettings

CHOSEN = "chosen"


@dataclass(frozen=True)
class FieldReaderViewsSettings(FieldReaderSettings):
    """``extract.fieldreader_tta``: the plain engine's settings and ``views``."""

    #: "chosen": the views saved with the model (chosen on its held-out train forms); or a view
    #: list such as "dx=4;dy=-2;dy=2" (then the model's saved calibration may not fit it)
    views: str = CHOSEN


def saved_knowledge(model: Any, block: str) -> dict[str, Any]:
    """A block of what a field reader model carries besides its weights (``views``, ``members``:
    fitted on its held-out train forms); {} when none or no model."""
    if model is None or not getattr(model, "available", False):
        return {}
    return dict(getattr(model.bundle().config, block, {}) or {})


def saved_views(model: Any) -> dict[str, Any]:
    """The ``views`` block a field reader model carries ({} when none or no model)."""
    return saved_knowledge(model, "views")


class FieldReaderViewsEngine(FieldReaderEngine):
    """The field reader reading each line in several views, posteriors averaged."""

    name: ClassVar[str] = "fieldreader_tta"
    version: ClassVar[str] = "2"  # 2: lines padded by width bucket (reading independent of the batch)
    default: ClassVar[bool] = False  # measured: see README "Field reader" / benchmarks/vote_benchmark.py
    settings_class = FieldReaderViewsSettings

    def __init__(self, model_ref: Any = None, views: str = CHOSEN, **settings: Any) -> None:
        super().__init__(model_ref, views=str(views), **settings)
        self.views_spec = str(views)

    @classmethod
    def training_steps(cls) -> list:
        """None of its own: the field reader's training chooses the views and fits their
        calibration (``train_fieldreader.views``, :func:`~handwriting_pipeline.fieldreader.knowledge.add_knowledge`)."""
        return []

    @classmethod
    def unavailable(cls, **inputs: Any) -> str | None:
        reason = super().unavailable(**inputs)
        if reason is None and not saved_views(inputs.get("model")).get("views"):
            reason = ("the field reader model carries no test-time views: choose them on its held-out train "
                      "forms with benchmarks/vote_benchmark.py --save-model <folder>")
        return reason

    @classmethod
    def vote_calibration(cls, model: Any = None, **inputs: Any) -> dict[str, Any] | None:
        """The calibration of the averaged reading, fitted on the model's held-out train forms."""
        return dict(saved_views(model).get("calibration") or {}) or None

    @property
    def view_list(self) -> str:
        return saved_views(self.model_ref).get("views", "plain") if self.views_spec == CHOSEN else self.views_spec

    @property
    def reader(self):
        from handwriting_pipeline.fieldreader.views import ViewsReader

        return ViewsReader(super().reader, self.view_list)
