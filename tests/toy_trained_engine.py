"""A toy trained engine, everything it needs in this one module (the README's "Adding a trained
engine", as a test proves it): the model, its training step and the engine that reads with it.

The model memorises the training forms (image SHA-256 -> labels) and carries its own vote
calibration, fitted on the forms it trained on. Registered with two lines, the engine and its
training (``registry.ENGINES["toy"] = ToyTrainedEngine``, ``TRAINING["toy"] = TRAINING_STEPS`` in
``pipelines/train/pipeline.py``) and given its parameter blocks (``train_toy``, ``extract.toy``),
it is trained by ``kedro run --pipeline train``, saved by the
catalog factory ``{engine}_model``, read by extract and digitize and weighed by the vote.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from handwriting_pipeline.engines.base import Engine, EngineResult, image_sha256
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.registry import Step
from handwriting_pipeline.training.calibration import fit_calibration
from handwriting_pipeline.training.not_trained import NotTrained


@dataclass
class ToyModel:
    """What training learned: the labels of every training image, and the vote's calibration."""

    answers: dict[str, dict[str, str]] = field(default_factory=dict)
    confidence: float = 0.9
    calibration: dict[str, Any] = field(default_factory=dict)

    def read(self, image: Any) -> tuple[dict[str, str], float]:
        fields = self.answers.get(image_sha256(image))
        return (fields, self.confidence) if fields else ({}, 0.0)


def train_toy(train_forms: Any, params: dict[str, Any]) -> ToyModel:
    """The training step: memorise the training forms, then calibrate on them."""
    model = ToyModel(confidence=float(params.get("confidence", 0.9)))
    names = train_forms.labels["file_name"].tolist()
    model.answers = {image_sha256(train_forms.images[n]): train_forms.fields(n) for n in names}
    rows = []
    for name in names:
        fields, conf = model.read(train_forms.images[name])
        rows.append({"file_name": name, **fields, **{f"{k}_conf": conf for k in KEYS}})
    model.calibration = fit_calibration(train_forms.labels, {"toy": pd.DataFrame(rows)}).get("toy", {})
    return model


def not_trained() -> NotTrained:
    """What the training step gives when ``train.models`` leaves the toy out."""
    return NotTrained("toy not in train.models")


#: how the toy is trained: one step writing its model (its entry in the train pipeline's TRAINING)
TRAINING_STEPS = [Step(train_toy, {"train_forms": "train_forms", "params": "params:train_toy"}, "toy_model", "train_toy",
                       skipped=not_trained)]


class ToyTrainedEngine(Engine):
    """Reads a form by looking its image up in the trained model."""

    name: ClassVar[str] = "toy"
    parallel: ClassVar[str] = "serial"
    default: ClassVar[bool] = True  # when its model exists
    catalog_inputs: ClassVar[dict[str, str]] = {"model": "toy_model"}

    def __init__(self, model: Any = None, **config: Any) -> None:
        super().__init__(model=getattr(model, "path", None), **config)
        self.model_ref = model

    @classmethod
    def vote_calibration(cls, model: Any = None, **inputs: Any) -> dict[str, Any] | None:
        if model is None or not getattr(model, "available", False):
            return None
        return model.load().calibration or None

    def read(self, image: Any, file_name: str = "") -> EngineResult:
        fields, conf = self.model_ref.load().read(image)
        return EngineResult(fields=fields, confidence={k: conf for k in fields})
