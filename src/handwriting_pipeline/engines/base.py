"""One interface for every extraction engine: an image in, the four keys out.

An engine returns an :class:`EngineResult`: the four values ("None" when missing), a
confidence per field in 0-1 (NaN when the engine gives none), the raw response (JSON-able,
kept in the cache), usage for cost (pages, tokens) and the error when the form failed.
"""

from __future__ import annotations

import hashlib
import json
import math
from abc import ABC, abstractmethod
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, ClassVar

from PIL import Image

from handwriting_pipeline.config import Settings
from handwriting_pipeline.fields import KEYS, clean_fields, empty_fields
from handwriting_pipeline.fields.formspec import HSF_FORM, FormSpec, is_hsf_layout


@dataclass
class EngineResult:
    """What one engine read from one form."""

    fields: dict[str, str] = field(default_factory=empty_fields)
    confidence: dict[str, float] = field(default_factory=lambda: {k: math.nan for k in KEYS})
    raw: Any = None
    usage: dict[str, int] = field(default_factory=dict)  # pages, input_tokens, output_tokens
    seconds: float = 0.0
    error: str | None = None
    keys: tuple[str, ...] | None = None  # the form's fields (None: the HSF form's four)

    def __post_init__(self) -> None:
        keys = tuple(self.keys) if self.keys else KEYS
        self.keys = None if keys == KEYS else keys
        self.fields = clean_fields(self.fields, keys)
        self.confidence = {k: float(self.confidence.get(k, math.nan)) for k in keys}

    def to_record(self, file_name: str) -> dict[str, Any]:
        """A row of the predictions table (see :mod:`handwriting_pipeline.predictions`)."""
        return {
            "file_name": file_name,
            **self.fields,
            **{f"{k}_conf": v for k, v in self.confidence.items()},
            "seconds": self.seconds,
            "pages": int(self.usage.get("pages", 0)),
            "input_tokens": int(self.usage.get("input_tokens", 0)),
            "output_tokens": int(self.usage.get("output_tokens", 0)),
            "error": self.error,
        }

    def to_json(self) -> dict[str, Any]:
        """JSON-able form for the on-disk cache."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> "EngineResult":
        return cls(**data)


class Engine(ABC):
    """Base class of all extraction engines.

    Subclasses set ``name`` and ``version`` (bump ``version`` whenever the output for the same
    image can change: it is part of the cache key), take their settings as keyword arguments
    and implement :meth:`read`.
    """

    name: ClassVar[str] = "engine"
    version: ClassVar[str] = "1"

    # ---- capabilities, read by the registry, the extract wiring and the runner
    #: how forms are read in parallel: "process" (CPU-bound, one worker process per core),
    #: "thread" (API calls), "batch" (``read_batch`` with ``batch_size`` forms: Donut)
    parallel: ClassVar[str] = "process"
    #: False: ``read(None, file_name)`` (recorded outputs need no image)
    needs_image: ClassVar[bool] = True
    #: True: a failing :meth:`check_ready` only skips the engine (logged) instead of stopping the run
    optional: ClassVar[bool] = False
    #: section of conf/local/credentials.yml the engine is built with (``credentials=...``), or None
    credentials: ClassVar[str | None] = None
    #: answers go to the response cache (False: answers are free to repeat, e.g. recorded outputs)
    cacheable: ClassVar[bool] = True
    #: a paid API: listed as such, always cached, never re-called
    paid: ClassVar[bool] = False
    #: joins ``extract.engines: default`` (trained engines only when their model exists)
    default: ClassVar[bool] = False
    #: reads a form in a small fraction of the others' time: the cascade's first stage (the
    #: other engines read only the forms it is unsure of)
    fast: ClassVar[bool] = False
    #: engines this one stands in for in a default run once it is ready (its model exists): they
    #: are left out then (named explicitly they still run). The field reader ensemble replaces the
    #: single field reader: the same reader, K times, chosen on more forms
    supersedes: ClassVar[tuple[str, ...]] = ()
    #: keyword argument -> catalog dataset the engine is built from (``{"model": "donut_model"}``);
    #: an input with a false ``available`` attribute (no trained model) keeps the engine out of
    #: the default run and stops an explicit one with "train it first". How such a model is
    #: trained is registered in ``TRAINING`` (``pipelines/train/pipeline.py``)
    catalog_inputs: ClassVar[dict[str, str]] = {}
    #: Python packages whose versions the report lists next to the engine's own version
    packages: ClassVar[tuple[str, ...]] = ()
    # attributes holding process-bound objects (SDK clients, ONNX sessions), rebuilt lazily in
    # each worker process instead of being pickled
    process_local: ClassVar[tuple[str, ...]] = ()
    #: the ``extract.<method>`` block as a frozen :class:`~handwriting_pipeline.config.Settings`
    #: dataclass (a key it does not know stops the run; its defaults are the constructor's and
    #: the YAML's); None: the block is passed on as it is
    settings_class: ClassVar[type[Settings] | None] = None

    def __init__(self, **config: Any) -> None:
        self.config = config

    def __getstate__(self) -> dict[str, Any]:
        state = dict(self.__dict__)
        for attr in self.process_local:
            state[attr] = None
        return state

    # ---- the two hooks where engines differ
    @classmethod
    def from_params(cls, method: str, settings: Mapping[str, Any], credentials: Mapping[str, Any] | None = None,
                    **inputs: Any) -> "Engine":
        """The engine for ``method`` from its ``extract.<method>`` block, its credentials section
        (engines that declare :attr:`credentials`) and its :attr:`catalog_inputs`."""
        extra = {"credentials": dict(credentials or {})} if cls.credentials else {}
        return cls(**cls.settings_for(method, settings), **extra, **inputs)

    @classmethod
    def settings_for(cls, method: str, settings: Mapping[str, Any] | None) -> dict[str, Any]:
        """The ``extract.<method>`` block checked by :attr:`settings_class`, as keyword arguments."""
        if cls.settings_class is None:
            return dict(settings or {})
        return cls.settings_class.from_params(settings, f"extract.{method}").to_dict()

    def forms_to_read(self, file_names: list[str]) -> list[str]:
        """The forms this engine can read among ``file_names`` (default: all)."""
        return list(file_names)

    @classmethod
    def unavailable(cls, **inputs: Any) -> str | None:
        """Why the engine cannot run with these catalog inputs (None: it can): an input whose
        ``available`` attribute is false (e.g. no trained model) names its ``reason``."""
        for key in cls.catalog_inputs:
            ref = inputs.get(key)
            if ref is None or not getattr(ref, "available", True):
                return str(getattr(ref, "reason", "") or f"no {cls.catalog_inputs[key]}")
        return None

    @classmethod
    def learns_form(cls, form: FormSpec) -> bool:
        """Whether training can make this engine read ``form`` (a trained engine's training steps
        run only then): by default the HSF top section's layout."""
        return is_hsf_layout(form)

    @classmethod
    def form_problem(cls, form: FormSpec, **inputs: Any) -> str | None:
        """Why the engine cannot read ``form`` (None: it can). By default an engine reads the
        HSF top section's layout (its lines, fields and types); an engine that reads any form
        (a model trained on it) overrides this."""
        if is_hsf_layout(form):
            return None
        return f"it reads only the '{HSF_FORM}' layout, not form '{form.name}'"

    @classmethod
    def form_inputs(cls, form: FormSpec) -> dict[str, Any]:
        """What the engine is built with to read ``form`` besides its settings (an engine that
        reads any form spec's lines is told which form: ``{"form": <name or spec file>}``);
        {} by default: the engine reads the form it was made or trained for."""
        return {}

    @classmethod
    def vote_calibration(cls, **inputs: Any) -> Mapping[str, Any] | None:
        """The vote's calibration of this engine's confidences that comes with its catalog inputs
        (a trained model carries its own, fitted on held-out forms); None: use
        ``ensemble.vote.calibration`` from the parameters."""
        return None

    @classmethod
    def form_calibrations(cls, **inputs: Any) -> Mapping[str, Mapping[str, Any]]:
        """``{engine: calibration}`` of *other*, untrained engines that comes with this engine's
        catalog inputs: a model trained on a form carries them, fitted on its held-out forms of
        that form (:func:`~handwriting_pipeline.methods.form_engine_calibrations`); {} by default."""
        return {}

    @classmethod
    def model_choices(cls, **inputs: Any) -> list[dict[str, Any]]:
        """The components its trained model chose on forms it never trained on, one dict per
        component (``component``, ``on``, ``gain``, ``low``, ``high``, ``forms``, ``note``) for
        the report; [] when there are none."""
        return []

    @classmethod
    def model_guarantees(cls, **inputs: Any) -> Mapping[str, Any]:
        """The digitize guarantees its trained model carries (``digitize.review.guarantees``
        format, fitted with the model on forms it never trained on); {} when none."""
        return {}

    @classmethod
    def vote_recalibration(cls, **inputs: Any) -> Mapping[str, Any]:
        """The vote's recalibration its trained model carries (``ensemble.vote.recalibration``
        format: per engine set, fitted with the model on forms it never trained on); {} when none."""
        return {}

    @classmethod
    def requires_training(cls) -> bool:
        """True when the engine is built from a trained model (a catalog input)."""
        return bool(cls.catalog_inputs)

    def check_ready(self) -> None:
        """Raise a clear error before any work when credentials or binaries are missing."""

    @abstractmethod
    def read(self, image: Image.Image, file_name: str = "") -> EngineResult:
        """Read one form crop. Must not raise for a bad image: return ``error`` instead."""

    def read_batch(self, images: list[Image.Image], file_names: list[str]) -> list[EngineResult]:
        """Read several forms; engines that batch (Donut) override this."""
        return [self.read(image, name) for image, name in zip(images, file_names)]

    def cache_key(self, image_sha256: str) -> str:
        """Key of this engine's answer for one image: engine, version, config and image hash."""
        config = json.dumps(self.config, sort_keys=True, default=str)
        digest = hashlib.sha256(f"{self.name}|{self.version}|{config}".encode()).hexdigest()[:16]
        return f"{self.name}-{digest}-{image_sha256}"


def image_sha256(image: Image.Image) -> str:
    """SHA-256 of an image's mode, size and pixels (independent of the file's encoding)."""
    h = hashlib.sha256(f"{image.mode}|{image.size}".encode())
    h.update(image.tobytes())
    return h.hexdigest()
