"""Reading forms with a field reader: lines -> log-probabilities -> text -> the four fields.

Per line, a CTC prefix beam search gives the n best readings with their likelihoods. The best
reading is the answer (optionally re-ranked by :mod:`.lexicon`); a field's raw confidence is the
share of the beam's probability mass whose reading agrees with the answer on that field
(``P(field = value | image)`` over the beam), later calibrated (:mod:`.calibration`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from handwriting_pipeline.fieldreader.decode import beam_search, one_thread
from handwriting_pipeline.fieldreader.model import FieldReader
from handwriting_pipeline.fieldreader.text import fields_from_lines
from handwriting_pipeline.fields import KEYS, NONE
from handwriting_pipeline.forms.lines import cut_lines, has_ink, to_array

# a re-ranker: (line log-probabilities, beam of (text, log-likelihood), line name, image=the grey
# line) -> beam (the lexicon's :meth:`~.lexicon.Lexicon.rerank`, the style layer's :class:`~.style.StyleReranker`)
Reranker = Callable[..., list[tuple[str, float]]]


@dataclass
class FormReading:
    fields: dict[str, str]
    confidence: dict[str, float]
    lines: dict[str, str] = field(default_factory=dict)
    error: str | None = None


def _posterior(beam: list[tuple[str, float]]) -> np.ndarray:
    scores = np.array([s for _, s in beam], dtype=np.float64)
    scores = np.exp(scores - scores.max())
    return scores / scores.sum()


def _field_confidence(date_beam, csz_beam, answer: dict[str, str]) -> dict[str, float]:
    conf = {}
    for key in KEYS:
        beam = date_beam if key == "DATE" else csz_beam
        probs = _posterior(beam) if beam else np.ones(1)
        agree = [p for (text, _), p in zip(beam, probs) if _fields_of(text, key) == answer[key]] if beam else [1.0]
        conf[key] = float(sum(agree))
    return conf


def _fields_of(text: str, key: str) -> str:
    return fields_from_lines(text, "")["DATE"] if key == "DATE" else fields_from_lines("", text)[key]


def read_lines(reader: FieldReader, lines_per_form: Sequence[dict[str, np.ndarray]], beam: int = 8,
               rerank: Reranker | None = None) -> list[FormReading]:
    """Read already cut lines (``{"DATE": grey, "CSZ": grey}`` per form)."""
    items = [(i, name, line) for i, lines in enumerate(lines_per_form) for name, line in lines.items()
             if has_ink(line)]
    log_probs = reader.log_probs([to_array(line, reader.config.lines) for _, _, line in items])
    found = [beam_search(lp, beam) for lp in log_probs]
    names, lines = [name for _, name, _ in items], [line for _, _, line in items]
    with one_thread():
        if rerank is not None and hasattr(rerank, "batch"):  # a re-ranker that reads all lines at once
            found = rerank.batch(log_probs, found, names, lines, forms=[i for i, _, _ in items])
        elif rerank is not None:
            found = [rerank(lp, f, name, image=line) for lp, f, name, line in zip(log_probs, found, names, lines)]
    beams: dict[tuple[int, str], list[tuple[str, float]]] = {(i, name): f for (i, name, _), f in zip(items, found)}
    out = []
    for i in range(len(lines_per_form)):
        date_beam, csz_beam = beams.get((i, "DATE"), []), beams.get((i, "CSZ"), [])
        texts = {"DATE": date_beam[0][0] if date_beam else "", "CSZ": csz_beam[0][0] if csz_beam else ""}
        answer = fields_from_lines(texts["DATE"], texts["CSZ"])
        out.append(FormReading(answer, _field_confidence(date_beam, csz_beam, answer), texts))
    return out


CROP_ASPECT = 2460 / 350  # width / height of an HSF top-section crop


def check_crop(image: Image.Image, tolerance: float = 0.25) -> None:
    """Raise ValueError for an image that is no top-section crop (by its aspect ratio) or unreadable."""
    width, height = image.size
    if not width or not height or abs(width / height - CROP_ASPECT) > tolerance * CROP_ASPECT:
        raise ValueError(f"{width}x{height}: not an HSF top-section crop (expected about 2460x350)")
    image.load()


def read_forms(reader: FieldReader, images: Sequence[Image.Image], beam: int = 8,
               rerank: Reranker | None = None) -> list[FormReading]:
    """Read whole top-section crops; a form whose lines cannot be cut gets "None" and its error."""
    cut, failed = [], {}
    for i, image in enumerate(images):
        try:
            check_crop(image)
            cut.append(cut_lines(image, reader.config.lines))
        except Exception as err:  # noqa: BLE001 - one bad image must not stop the batch
            failed[i] = f"{type(err).__name__}: {err}"
            cut.append({})
    readings = read_lines(reader, cut, beam=beam, rerank=rerank)
    for i, error in failed.items():
        readings[i] = FormReading({k: NONE for k in KEYS}, {k: math.nan for k in KEYS}, error=error)
    return readings
