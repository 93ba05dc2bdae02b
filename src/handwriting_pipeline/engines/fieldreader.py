"""The field reader engine: the PP-OCRv6 recognizer fine-tuned on these forms' lines
(``fieldreader_model`` from the train pipeline) reads the DATE line and the CITY/STATE/ZIP line.

>>> engine = FieldReaderEngine.from_model(catalog.load("fieldreader_model"), beam=8, lexicon=True)
>>> engine.check_ready()
>>> results = engine.read_batch(images, file_names)
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass
from functools import cached_property
from typing import Any, ClassVar

from PIL import Image

from handwriting_pipeline.config import Settings
from handwriting_pipeline.engines.base import Engine, EngineResult

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class FieldReaderSettings(Settings):
    """``extract.fieldreader``."""

    source: ClassVar[str] = "conf/base/parameters_extract.yml"
    beam: int = 8
    lexicon: bool = True
    style: bool = True
    batch_size: int = 64
    threads: int = 2


class FieldReaderEngine(Engine):
    """Beam search per line, optionally re-ranked with the lexicon and the style layer (case, dots,
    spaces from the glyphs) saved with the model.

    Confidences are the beam posterior of each field's value (raw); the model folder carries
    their calibration (fitted on held-out training forms) for the vote.
    """

    name: ClassVar[str] = "fieldreader"
    packages = ("rapidocr", "onnxruntime", "torch")
    version: ClassVar[str] = "2"  # 2: lines padded by width bucket (reading independent of the batch)
    parallel: ClassVar[str] = "batch"
    default: ClassVar[bool] = True  # when a trained model exists
    fast: ClassVar[bool] = True  # ~30 forms/s: the cascade's first stage
    catalog_inputs: ClassVar[dict[str, str]] = {"model": "fieldreader_model"}
    settings_class = FieldReaderSettings

    def __init__(self, model_ref: Any = None, beam: int = 8, lexicon: bool = True, batch_size: int = 64,
                 threads: int = 2, style: bool = True, **config: Any) -> None:
        # the weights' fingerprint is part of the cache key: a retrained model must not reuse answers
        super().__init__(model=getattr(model_ref, "path", None), weights=getattr(model_ref, "fingerprint", None),
                         beam=int(beam), lexicon=bool(lexicon), style=bool(style), **config)
        self.model_ref = model_ref
        self.beam, self.use_lexicon, self.batch_size, self.threads = int(beam), bool(lexicon), int(batch_size), int(threads)
        self.use_style = bool(style)

    @classmethod
    def from_model(cls, model: Any, **settings: Any) -> "FieldReaderEngine":
        """An engine on the ``fieldreader_model`` catalog entry (a ``FieldReaderRef``) or a folder."""
        if isinstance(model, (str, bytes)) or hasattr(model, "__fspath__"):
            from handwriting_pipeline.datasets.model import FieldReaderRef

            model = FieldReaderRef.from_path(model)
        return cls(model, **settings)

    @classmethod
    def from_params(cls, method: str, settings: Any, credentials: Any = None, **inputs: Any) -> "FieldReaderEngine":
        """The engine on the ``fieldreader_model`` catalog input with the ``extract.fieldreader`` settings."""
        return cls.from_model(inputs.get("model"), **cls.settings_for(method, settings))

    @classmethod
    def vote_calibration(cls, model: Any = None, **inputs: Any) -> dict[str, Any] | None:
        """The per-field calibration saved with the model (fitted on its held-out training forms)."""
        if model is None or not getattr(model, "available", False):
            return None
        return dict(model.bundle().config.calibration) or None

    @classmethod
    def form_calibrations(cls, model: Any = None, **inputs: Any) -> dict[str, Any]:
        """The untrained engines' calibrations saved with the model (fitted in training on its
        held-out forms, on a form the shipped calibrations do not cover)."""
        if model is None or not getattr(model, "available", False):
            return {}
        from handwriting_pipeline.fieldreader.model import ENGINE_CALIBRATIONS

        return dict((getattr(model.bundle().config, "summary", None) or {}).get(ENGINE_CALIBRATIONS) or {})

    @classmethod
    def model_choices(cls, model: Any = None, **inputs: Any) -> list[dict[str, Any]]:
        """The choices saved with the model (an ensemble's, made on the out-of-fold forms)."""
        if model is None or not getattr(model, "available", False):
            return []
        from handwriting_pipeline.fieldreader.oof import choices_table

        return choices_table(model.bundle()).to_dict("records")

    @classmethod
    def model_guarantees(cls, model: Any = None, **inputs: Any) -> dict[str, Any]:
        """The digitize guarantees saved with the model (fitted in training on the out-of-fold forms)."""
        if model is None or not getattr(model, "available", False):
            return {}
        return dict((getattr(model.bundle().config, "summary", None) or {}).get("guarantees") or {})

    @classmethod
    def vote_recalibration(cls, model: Any = None, **inputs: Any) -> dict[str, Any]:
        """The vote's recalibration saved with the model (an ensemble's, fitted on the out-of-fold forms)."""
        if model is None or not getattr(model, "available", False):
            return {}
        return dict((getattr(model.bundle().config, "summary", None) or {}).get("recalibration") or {})

    @classmethod
    def learns_form(cls, form: Any) -> bool:
        """A field reader learns any form spec's lines (its training reads them from the spec)."""
        return True

    @classmethod
    def form_problem(cls, form: Any, model: Any = None, **inputs: Any) -> str | None:
        """A field reader reads the form its model was trained on (its spec is saved with it)."""
        if model is None or not getattr(model, "available", False):
            return None  # no model: said by ``unavailable``
        from handwriting_pipeline.fields.formspec import load_form

        trained = load_form(model.bundle().config.lines.form)
        if trained.name == form.name and trained.same_layout(form):
            return None
        return (f"its model was trained on form '{trained.name}', not '{form.name}'; train one on this form: "
                f"kedro run --pipeline train --params form={form.name}")

    def check_ready(self) -> None:
        ref = self.model_ref
        if ref is None or not getattr(ref, "available", False):
            reason = getattr(ref, "reason", "no model given")
            raise RuntimeError(f"field reader not ready: {reason}. Train it first: kedro run --pipeline train")
        ref.bundle()

    @property
    def reader(self):
        reader = self.model_ref.bundle()
        reader.threads = self.threads
        return reader

    @cached_property
    def rerank(self):
        """The style layer over the lexicon when the model has one (and ``style`` is on), else the lexicon."""
        from handwriting_pipeline.fieldreader.tuning import saved_rerank

        return saved_rerank(self.reader, lexicon=self.use_lexicon, style=self.use_style)

    def read(self, image: Image.Image, file_name: str = "") -> EngineResult:
        return self.read_batch([image], [file_name])[0]

    def read_batch(self, images: list[Image.Image], file_names: list[str]) -> list[EngineResult]:
        from handwriting_pipeline.fieldreader.predict import read_forms

        started = time.perf_counter()
        try:
            readings = read_forms(self.reader, images, beam=self.beam, rerank=self.rerank)
        except Exception as err:  # noqa: BLE001 - e.g. the model cannot be loaded: every form gets the error
            logger.warning("field reader failed: %s", err)
            return [EngineResult(error=f"fieldreader failed: {type(err).__name__}: {err}") for _ in images]
        seconds = (time.perf_counter() - started) / max(1, len(images))
        return [EngineResult(fields=r.fields, confidence=r.confidence, raw={"lines": r.lines}, usage={"pages": 0},
                             seconds=seconds, error=r.error, keys=tuple(r.fields)) for r in readings]


class FieldReaderEnsembleEngine(FieldReaderEngine):
    """The fold readers of cross-fitting read as one (``fieldreader_ensemble_model``: their
    per-frame CTC posteriors averaged, :class:`~handwriting_pipeline.fieldreader.ensemble.EnsembleReader`),
    decoded with the lexicon and calibration chosen on the out-of-fold forms
    (:mod:`handwriting_pipeline.fieldreader.oof`). Once trained it stands in for the single field
    reader in default runs (``supersedes``): the cascade's fast stage, its vote and its trust
    thresholds are then those measured on the out-of-fold forms. K members read about K times
    slower than one reader (still several forms a second)."""

    name: ClassVar[str] = "fieldreader_ensemble"
    supersedes: ClassVar[tuple[str, ...]] = ("fieldreader",)
    catalog_inputs: ClassVar[dict[str, str]] = {"model": "fieldreader_ensemble_model"}
