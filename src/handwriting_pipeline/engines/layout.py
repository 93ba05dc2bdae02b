"""Where the fields are on an HSF top-section crop, and which words belong to which box.

Shared by the offline OCR engines (RapidOCR, Tesseract): they only differ in how they turn a
region of pixels into words. The steps:

1. :func:`find_boxes` finds the two handwriting boxes (DATE, and the shared CITY/STATE/ZIP box)
   from their printed outlines: long thin horizontal and vertical ink runs (morphological
   opening), so a crop shifted by the scanner still works; template positions only as fallback.
2. :func:`find_labels` locates the printed labels DATE, CITY, STATE, ZIP above the boxes by
   reading the strip above them with the engine's own OCR (template positions as fallback).
3. Each box is read as a region (the engine's detector finds the text lines inside it), low
   flat fragments are dropped (:func:`drop_fragments`) and :func:`assign_fields` hands the
   words to the field rules of :mod:`handwriting_pipeline.fields`: the DATE and its repairs
   (:func:`~handwriting_pipeline.fields.parse.read_date`), CITY/STATE/ZIP split with the
   x-positions of the STATE and ZIP labels as evidence
   (:func:`~handwriting_pipeline.fields.parse.split_city_state_zip`), case-ambiguous letters
   settled (:func:`~handwriting_pipeline.fields.text.settle_case`) and the offline ZIP database
   check (:func:`~handwriting_pipeline.fields.gazetteer.gazetteer_check`).

The box geometry is :mod:`handwriting_pipeline.forms.boxes`; this module holds the label
positions, the word-to-field assignment and the :class:`LayoutEngine` base; every text rule lives
in :mod:`handwriting_pipeline.fields`. Rules were developed on 250 train crops and checked on the
199 validation crops.

Another form (an engine built with ``form=<name or spec path>`` whose spec does not have the HSF
layout) is read generically by :func:`read_spec_form`: each line's box from the spec
(:func:`~handwriting_pipeline.forms.boxes.find_line_boxes`), read as a region, its text lines
left to right split into the line's fields by the field reader's splitter
(:func:`~handwriting_pipeline.fieldreader.text.line_fields`: one text line per field, else its
word rules), each value kept to its field type's characters. The HSF form is read as above, unchanged.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image

from handwriting_pipeline.engines.base import Engine, EngineResult
from handwriting_pipeline.fieldreader.text import SEP, line_fields
from handwriting_pipeline.fields import KEYS, NONE, normalize_key
from handwriting_pipeline.fields.formspec import FormSpec, is_hsf_layout, load_form
from handwriting_pipeline.fields.gazetteer import gazetteer_check
from handwriting_pipeline.fields.parse import Box, Word, read_date, split_city_state_zip, split_word
from handwriting_pipeline.fields.text import normalise_text, settle_case
from handwriting_pipeline.fields.types import type_of
from handwriting_pipeline.forms.boxes import box_region, find_boxes, find_line_boxes, label_strip, to_grey

logger = logging.getLogger(__name__)


# label left edges as fractions of the shared box width (CITY, STATE, ZIP)
TEMPLATE_LABEL_FRACTIONS = {"CITY": 0.05, "STATE": 0.54, "ZIP": 0.71}


@dataclass
class Layout:
    """Boxes and label positions of one crop, and whether each was found or taken from the template."""

    date_box: Box
    csz_box: Box
    labels: dict[str, Box] = field(default_factory=dict)
    found_boxes: bool = False
    found_labels: list[str] = field(default_factory=list)


ReadRegion = Callable[[np.ndarray], list[Word]]  # grey uint8 region -> words in region coords


# --------------------------------------------------------------------------- image
def find_labels(grey: np.ndarray, date_box: Box, csz_box: Box,
                read_region: ReadRegion | None) -> tuple[dict[str, Box], list[str]]:
    """Positions of the printed DATE, CITY, STATE, ZIP labels (page coordinates).

    Reads the strip above the boxes with ``read_region``; labels not found come from the
    template (fractions of the shared box). Returns the positions and the keys found.
    """
    found: dict[str, Box] = {}
    if read_region is not None:
        x0, y0, x1, y1 = label_strip((date_box, csz_box), grey.shape)
        for word in read_region(grey[y0:y1, x0:x1]):
            for piece, box in split_word(word):
                key = normalize_key(piece) if len(piece) >= 3 else None
                if key is not None and key not in found:
                    found[key] = (box[0] + x0, box[1] + y0, box[2] + x0, box[3] + y0)
    labels = dict(found)
    cw = csz_box[2] - csz_box[0]
    for key, frac in TEMPLATE_LABEL_FRACTIONS.items():
        if key not in labels:
            left = csz_box[0] + round(frac * cw)
            labels[key] = (left, date_box[1] - 45, left + round(0.1 * cw), date_box[1] - 5)
    if "DATE" not in labels:
        labels["DATE"] = (date_box[0] + 60, date_box[1] - 45, date_box[0] + 190, date_box[1] - 5)
    return labels, sorted(found)


def analyse(image: Image.Image, read_region: ReadRegion | None) -> tuple[np.ndarray, Layout]:
    """Grey image and layout (boxes + labels) of one crop."""
    grey = to_grey(image)
    date_box, csz_box, found = find_boxes(grey)
    labels, found_labels = find_labels(grey, date_box, csz_box, read_region)
    return grey, Layout(date_box, csz_box, labels, found, found_labels)


def drop_fragments(words: Sequence[Word], min_ratio: float = 0.45) -> list[Word]:
    """Drop low, flat detections (bits of the printed labels or rules next to a box): a text
    line much lower than the tallest one in the same box is not handwriting."""
    if not words:
        return []
    tallest = max(w.box[3] - w.box[1] for w in words)
    return [w for w in words if (w.box[3] - w.box[1]) >= min_ratio * tallest]


def assign_fields(date_words: Sequence[Word], csz_words: Sequence[Word],
                  labels: dict[str, Box]) -> tuple[dict[str, str], dict[str, float]]:
    """The four fields (and confidences) from the words read in the two boxes."""
    date, date_conf = read_date(drop_fragments(date_words))
    values, conf = split_city_state_zip(drop_fragments(csz_words), labels)
    for key in ("CITY", "STATE"):
        values[key] = settle_case(values[key])
    values.update(gazetteer_check(values))
    values["DATE"], conf["DATE"] = date, date_conf
    return {k: values[k] for k in KEYS}, {k: conf[k] for k in KEYS}


def _is_label(word: Word, oy: int, box: Box) -> bool:
    """A printed label read inside a box region (it lies above the box, text is a key)."""
    y_center = (word.box[1] + word.box[3]) / 2 + oy
    return y_center < box[1] + 5 and normalize_key(word.text) is not None


def read_form(image: Image.Image, read_region: ReadRegion, read_labels: bool = True,
              read_labels_with: ReadRegion | None = None) -> tuple[dict[str, str], dict[str, float], dict]:
    """Whole offline reading of one crop with an engine's ``read_region`` (labels read with
    ``read_labels_with`` when given, else ``read_region``; template label positions when
    ``read_labels`` is False).

    Returns fields, confidences and a JSON-able raw record (layout + words per box).
    """
    grey, layout = analyse(image, (read_labels_with or read_region) if read_labels else None)
    grey = grey.copy()
    for key in layout.found_labels:  # printed labels must not be read as handwriting
        x0, y0, x1, y1 = layout.labels[key]
        grey[max(0, y0 - 3):min(y1 + 2, layout.date_box[1]), max(0, x0 - 3):x1 + 3] = 255
    words = {}
    for name, box in (("DATE", layout.date_box), ("CSZ", layout.csz_box)):
        region, ox, oy = box_region(grey, box)
        found = read_region(region)
        words[name] = [Word(w.text, w.score, (w.box[0] + ox, w.box[1] + oy, w.box[2] + ox, w.box[3] + oy))
                       for w in found if not _is_label(w, oy, box)]
    fields, conf = assign_fields(words["DATE"], words["CSZ"], layout.labels)
    raw = {
        "date_box": list(layout.date_box), "csz_box": list(layout.csz_box),
        "found_boxes": layout.found_boxes, "found_labels": layout.found_labels,
        "labels": {k: list(v) for k, v in layout.labels.items()},
        "words": {k: [[w.text, round(float(w.score), 4), list(w.box)] for w in v] for k, v in words.items()},
    }
    return fields, conf, raw


# --------------------------------------------------------------------------- any form spec
def line_words(grey: np.ndarray, box: Box, read_region: ReadRegion) -> list[Word]:
    """The handwritten words of one line box, left to right (page coordinates): what lies above
    the box (its printed labels) and low flat fragments are dropped."""
    region, ox, oy = box_region(grey, box)
    words = [Word(w.text, w.score, (w.box[0] + ox, w.box[1] + oy, w.box[2] + ox, w.box[3] + oy))
             for w in read_region(region)]
    inside = [w for w in words if (w.box[1] + w.box[3]) / 2 >= box[1] + 5]
    return sorted(drop_fragments(inside), key=lambda w: w.x_center)


def typed_value(text: str, spec: FormSpec, key: str) -> str:
    """A field's text kept to its type's characters, spaces collapsed ("None" when empty)."""
    allowed = set(type_of(spec.field(key)).allowed_chars)
    kept = " ".join("".join(c for c in text if c in allowed).split())
    return kept or NONE


def read_spec_form(image: Image.Image, spec: FormSpec,
                   read_region: ReadRegion) -> tuple[dict[str, str], dict[str, float], dict]:
    """Another form's reading with an engine's ``read_region`` (see the module docstring): its
    fields, confidences (the mean score of the line's words) and a JSON-able raw record."""
    grey = to_grey(image)
    boxes, found = find_line_boxes(grey, spec)
    fields, conf, words = dict.fromkeys(spec.keys, NONE), dict.fromkeys(spec.keys, math.nan), {}
    for line in spec.lines:
        read = line_words(grey, boxes[line.name], read_region) if line.name in boxes else []
        words[line.name] = read
        score = float(np.mean([w.score for w in read])) if read else math.nan
        texts = [normalise_text(w.text) for w in read]  # one text line per field: each is its field
        text = (SEP if len(texts) == len(line.fields) else " ").join(texts)
        for key, value in line_fields(text, line.fields, spec).items():
            fields[key] = typed_value(value, spec, key)
            conf[key] = score if fields[key] != NONE else math.nan
    raw = {"boxes": {k: list(v) for k, v in boxes.items()}, "found_boxes": found,
           "words": {k: [[w.text, round(float(w.score), 4), list(w.box)] for w in v] for k, v in words.items()}}
    return fields, conf, raw


__all__ = [
    "Layout", "ReadRegion", "find_labels", "analyse", "drop_fragments", "assign_fields", "read_form", "LayoutEngine",
    "line_words", "read_spec_form", "typed_value",
]


class LayoutEngine(Engine):
    """Base of the offline OCR engines that share this module's box/label layout and field rules.

    Subclasses implement :meth:`read_region` (text words in a grey region) and may override
    :meth:`read_labels_region` (how the printed labels are read). Built with ``form=<name or
    spec path>`` of a form without the HSF layout, the engine reads that form
    (:func:`read_spec_form`); without it, the HSF form.
    """

    @classmethod
    def form_problem(cls, form: FormSpec, **inputs: Any) -> str | None:
        """None: the engine reads any form spec's line boxes (built with :meth:`form_inputs`)."""
        return None

    @classmethod
    def form_inputs(cls, form: FormSpec) -> dict[str, Any]:
        """``form=`` for a form without the HSF layout; nothing for the HSF form (its reading and
        cache keys stay as they were)."""
        return {} if is_hsf_layout(form) else {"form": form.reference}

    @property
    def form(self) -> FormSpec | None:
        """The form built for (``form`` in the config), None: the HSF form."""
        name = self.config.get("form")
        return load_form(name) if name else None

    def read_region(self, grey: np.ndarray) -> list[Word]:
        raise NotImplementedError

    def read_labels_region(self, grey: np.ndarray) -> list[Word]:
        """Words of the strip with the printed labels (default: like any region)."""
        return self.read_region(grey)

    def _read_form(self, image: Image.Image, form: FormSpec | None) -> tuple[dict[str, str], dict[str, float], dict]:
        if form is not None and not is_hsf_layout(form):
            return read_spec_form(image, form, self.read_region)
        return read_form(image, self.read_region, read_labels=self.config["read_labels"],
                         read_labels_with=self.read_labels_region)

    def read(self, image: Image.Image, file_name: str = "") -> EngineResult:
        start = time.perf_counter()
        form = self.form
        keys = form.keys if form is not None else None
        try:
            fields, conf, raw = self._read_form(image, form)
        except Exception as err:  # noqa: BLE001 - a bad image must not stop the run
            logger.warning("%s could not read %s: %s", self.name, file_name or "image", err)
            return EngineResult(error=f"{type(err).__name__}: {err}", seconds=time.perf_counter() - start, keys=keys)
        conf = {k: (v if v == v else math.nan) for k, v in conf.items()}
        return EngineResult(fields=fields, confidence=conf, raw=raw, usage={"pages": 0},
                            seconds=time.perf_counter() - start, keys=keys)
