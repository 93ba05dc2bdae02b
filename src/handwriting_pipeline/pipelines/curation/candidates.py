"""What flows between the curation nodes: :class:`Candidates` (labels, lazily opened images,
what was dropped and why), the split names and the run's form (:func:`form_spec`)."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Iterator

import pandas as pd
from PIL import Image

from handwriting_pipeline.datasets.forms import LABEL_COLUMNS
from handwriting_pipeline.fields import KEYS, clean_fields
from handwriting_pipeline.fields.formspec import HSF_FORM, FormSpec, is_hsf_layout, load_form

logger = logging.getLogger("handwriting_pipeline.pipelines.curation.nodes")

SPLITS = ("train", "validation", "test")
SPLIT_ALIASES = {"val": "validation", "valid": "validation", "dev": "validation", "eval": "test"}
CANDIDATE_COLUMNS = [*LABEL_COLUMNS, "group"]


# --------------------------------------------------------------------------- the run's form
def form_spec(form: str | FormSpec | None) -> FormSpec:
    """The form a curation run reads (``params:form``: a shipped form's name or a spec file's
    path, :func:`~handwriting_pipeline.fields.formspec.load_form`); None: the HSF form."""
    return form if isinstance(form, FormSpec) else load_form(form or HSF_FORM)


def form_label(spec: FormSpec) -> str:
    """How notes and descriptions name the forms: "" for the HSF form (its texts stay as they
    were), else the quoted form name and a space ("'order_card' ")."""
    return "" if is_hsf_layout(spec) else f"'{spec.name}' "


# --------------------------------------------------------------------------- data passed between nodes
class PackedImage:
    """A 1-bit image kept as packed bits (1/8 of PIL's memory); calling it gives the PIL image."""

    __slots__ = ("size", "data")

    def __init__(self, image: Image.Image) -> None:
        image = image if image.mode == "1" else image.convert("1", dither=Image.Dither.NONE)
        self.size, self.data = image.size, image.tobytes()

    def __call__(self) -> Image.Image:
        return Image.frombytes("1", self.size, self.data)


@dataclass
class Candidates:
    """Forms on their way through curation.

    ``labels``: file_name, split ("" until split), the form's fields (``keys``: the spec's keys,
    by default the HSF form's DATE, CITY, STATE, ZIP), group (forms of one group - copies of one
    source image - stay in one split). ``images``: file_name -> PIL image
    or a zero-argument function returning one (opened lazily). ``dropped``: one
    ``{"file_name", "stage", "reason"}`` per form left out. ``notes``: remarks for the report.
    """

    source: str
    labels: pd.DataFrame = field(default_factory=lambda: pd.DataFrame(columns=CANDIDATE_COLUMNS))
    images: dict[str, Any] = field(default_factory=dict)
    dropped: list[dict[str, str]] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    presplit: bool = False
    keys: tuple[str, ...] = KEYS

    def __len__(self) -> int:
        return len(self.labels)

    def drop(self, file_name: str, stage: str, reason: str) -> None:
        """Record a dropped form and log it (file and problem named)."""
        logger.warning("%s: %s -> dropped (%s)", file_name, reason, stage)
        self.dropped.append({"file_name": str(file_name), "stage": stage, "reason": reason})


def _open(image: Any) -> Image.Image:
    return image() if callable(image) else image


class _OpenedImages(Mapping[str, Image.Image]):
    """file_name -> PIL image over a mapping of images or image-returning functions."""

    def __init__(self, images: Mapping[str, Any], names: list[str]) -> None:
        self._images, self._names = images, list(names)

    def __getitem__(self, name: str) -> Image.Image:
        if name not in self._names:
            raise KeyError(name)
        return _open(self._images[name])

    def __iter__(self) -> Iterator[str]:
        return iter(self._names)

    def __len__(self) -> int:
        return len(self._names)


def candidate_columns(keys: tuple[str, ...] = KEYS) -> list[str]:
    """The columns of a candidates' labels: file_name, split, the form's ``keys``, group."""
    return ["file_name", "split", *keys, "group"]


def _labels_frame(rows: list[dict[str, Any]], keys: tuple[str, ...] = KEYS) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=candidate_columns(tuple(keys)))
    for key in keys:
        frame[key] = [clean_fields({key: v}, tuple(keys))[key] for v in frame[key]]
    frame["split"] = frame["split"].fillna("").astype(str)
    frame["group"] = [g if isinstance(g, str) and g else n for g, n in zip(frame["group"], frame["file_name"])]
    return frame


def _size(value: Any) -> tuple[int, int] | None:
    return None if value is None else (int(value[0]), int(value[1]))
