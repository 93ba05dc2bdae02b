"""The Donut engine: a trained Donut (``donut_model``) read forms in batches on CPU or GPU.

>>> engine = DonutEngine.from_model(catalog.load("donut_model"), batch_size=8, num_beams=1)
>>> engine.check_ready()
>>> results = engine.read_batch(images, file_names)
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, ClassVar

from PIL import Image

from handwriting_pipeline.config import Settings
from handwriting_pipeline.engines.base import Engine, EngineResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class DonutEngineSettings(Settings):
    """``extract.donut`` (joint decoding: text_lines models only)."""

    source: ClassVar[str] = "conf/base/parameters_extract.yml"
    batch_size: int = 8
    num_beams: int = 1
    max_length: int | None = None
    device: str = "auto"
    joint_weight: float = 0.0
    joint_beams: int = 4
    fieldreader_dir: str | None = None


class DonutEngine(Engine):
    """Batched greedy (or beam) Donut generation; output parsed to the keys of the form its model
    was trained on (saved with it; the HSF form's four for older models).

    A blank, corrupt or unreadable image gives "None" values and ``error``; a generation
    failure does the same for its batch. ``seconds`` is the batch time divided by its forms.
    """

    name: ClassVar[str] = "donut"
    packages = ("transformers", "torch")
    version: ClassVar[str] = "1"
    parallel: ClassVar[str] = "batch"
    default: ClassVar[bool] = True  # when a trained model exists
    catalog_inputs: ClassVar[dict[str, str]] = {"model": "donut_model"}
    settings_class = DonutEngineSettings

    def __init__(self, model_ref: Any = None, batch_size: int = 8, num_beams: int = 1, max_length: int | None = None,
                 device: str = "auto", joint_weight: float = 0.0, joint_beams: int = 4,
                 fieldreader_dir: str | None = None, **config: Any) -> None:
        # the weights' fingerprint is part of the cache key: a model retrained into the same folder
        # must not get the old model's cached answers. Joint decoding (text_lines models only):
        # ``joint_weight`` > 0 rescores a beam of ``joint_beams`` with the field reader's CTC score
        # (the reader in ``fieldreader_dir``, or the stock recognizer), see donut/joint.py
        joint = {"joint_weight": float(joint_weight), "joint_beams": int(joint_beams),
                 "fieldreader_dir": fieldreader_dir} if joint_weight else {}
        super().__init__(model=getattr(model_ref, "path", None), weights=getattr(model_ref, "fingerprint", None),
                         batch_size=int(batch_size), num_beams=int(num_beams), max_length=max_length, **joint, **config)
        self.joint_weight, self.joint_beams, self.fieldreader_dir = float(joint_weight), int(joint_beams), fieldreader_dir
        self.model_ref = model_ref
        self.batch_size, self.num_beams, self.max_length, self.device = int(batch_size), int(num_beams), max_length, device
        self._predictor = None

    @classmethod
    def from_model(cls, donut_model: Any, batch_size: int = 8, num_beams: int = 1, max_length: int | None = None,
                   device: str = "auto", **joint: Any) -> "DonutEngine":
        """An engine on the ``donut_model`` catalog entry (a ``DonutModelRef``) or a folder path."""
        if isinstance(donut_model, (str, bytes)) or hasattr(donut_model, "__fspath__"):
            from handwriting_pipeline.datasets.model import DonutModelRef

            donut_model = DonutModelRef.from_path(donut_model)
        return cls(donut_model, batch_size=batch_size, num_beams=num_beams, max_length=max_length, device=device,
                   **joint)

    @classmethod
    def from_params(cls, method: str, settings: Any, credentials: Any = None, **inputs: Any) -> "DonutEngine":
        """The engine on the ``donut_model`` catalog input with the ``extract.donut`` settings."""
        return cls.from_model(inputs.get("model"), **cls.settings_for(method, settings))

    @classmethod
    def vote_calibration(cls, model: Any = None, **inputs: Any) -> dict[str, Any] | None:
        """The calibration saved with the model (``vote_calibration.json``, fitted on held-out
        train forms it never trained on), or None: an uncalibrated Donut stays out of the default vote."""
        from handwriting_pipeline.donut.model import load_vote_calibration

        return load_vote_calibration(getattr(model, "path", None) if getattr(model, "available", False) else None)

    @classmethod
    def learns_form(cls, form: Any) -> bool:
        """Donut learns any form spec whose fields make distinct tokens (:mod:`..donut.grammar`)."""
        from handwriting_pipeline.donut.grammar import grammar_problem

        return grammar_problem(form) is None

    @classmethod
    def form_problem(cls, form: Any, model: Any = None, **inputs: Any) -> str | None:
        """Donut reads the form its model was trained on (saved with it): any HSF-layout form for a
        model of the HSF form, else that form."""
        if model is None or not getattr(model, "available", False):
            return super().form_problem(form)  # no model: said by ``unavailable``
        from handwriting_pipeline.donut.model import saved_form
        from handwriting_pipeline.fields.formspec import is_hsf_layout, load_form

        trained = load_form(saved_form(model.path))
        if trained.same_layout(form) and (is_hsf_layout(form) or trained.name == form.name):
            return None
        return (f"its model was trained on form '{trained.name}', not '{form.name}'; train one on this form: "
                f"kedro run --pipeline train --params form={form.name}")

    def check_ready(self) -> None:
        """Raise when there is no trained model (train it first) or it cannot be loaded."""
        from kedro.io.core import DatasetError

        ref = self.model_ref
        if ref is None or not getattr(ref, "available", False):
            reason = getattr(ref, "reason", "no model given")
            raise RuntimeError(f"Donut engine not ready: {reason}")
        try:
            self.predictor
        except DatasetError as err:
            raise RuntimeError(f"Donut engine not ready: {err}") from err

    @property
    def predictor(self):
        if self._predictor is None:
            from handwriting_pipeline.donut.inference import DonutPredictor

            self._predictor = DonutPredictor(self.model_ref.bundle(), batch_size=self.batch_size,
                                             num_beams=self.num_beams, max_length=self.max_length, device=self.device)
        return self._predictor

    def read(self, image: Image.Image, file_name: str = "") -> EngineResult:
        return self.read_batch([image], [file_name])[0]

    def _read_joint(self, images: list[Image.Image]) -> list[EngineResult]:
        import time

        from handwriting_pipeline.donut.joint import JointPredictor
        from handwriting_pipeline.fieldreader.model import FieldReader

        started = time.perf_counter()
        reader = FieldReader.load(self.fieldreader_dir) if self.fieldreader_dir else FieldReader.stock()
        predictor = JointPredictor(self.predictor.bundle, reader, num_beams=self.joint_beams,
                                   weights=[self.joint_weight], batch_size=self.batch_size)
        answers = predictor.predict(images)[self.joint_weight]
        seconds = (time.perf_counter() - started) / max(1, len(images))
        return [EngineResult(fields=f, usage={"pages": 0}, seconds=seconds) for f in answers]

    def read_batch(self, images: list[Image.Image], file_names: list[str]) -> list[EngineResult]:
        if self.joint_weight:
            try:
                return self._read_joint(images)
            except Exception as err:  # noqa: BLE001 - every form gets the error
                logger.warning("Donut joint decoding failed: %s", err)
                return [EngineResult(error=f"donut engine failed: {type(err).__name__}: {err}") for _ in images]
        try:
            predictions = self.predictor.predict(images)
        except Exception as err:  # noqa: BLE001 - e.g. the model cannot be loaded: every form gets the error
            logger.warning("Donut engine failed: %s", err)
            return [EngineResult(error=f"donut engine failed: {type(err).__name__}: {err}") for _ in images]
        return [
            EngineResult(fields=p.fields, confidence=p.confidence, raw={"sequence": p.raw}, usage={"pages": 0},
                         seconds=p.seconds, error=p.error, keys=tuple(p.fields))
            for p in predictions
        ]
