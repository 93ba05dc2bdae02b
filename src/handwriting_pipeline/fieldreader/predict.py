"""Reading forms with a field reader: lines -> log-probabilities -> text -> the form's fields.

Per line, a CTC prefix beam search gives the n best readings with their likelihoods. The best
reading is the answer (optionally re-ranked by :mod:`.lexicon`); a field's raw confidence is the
share of the beam's probability mass whose reading agrees with the answer on that field
(``P(field = value | image)`` over the beam), later calibrated (:mod:`.calibration`).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from PIL import Image

from handwriting_pipeline.fieldreader.decode import beam_search, one_thread
from handwriting_pipeline.fieldreader.model import FieldReader
from handwriting_pipeline.fieldreader.text import fields_of_lines, line_fields
from handwriting_pipeline.fields import NONE
from handwriting_pipeline.fields.formspec import FormSpec, hsf_form, load_form
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


def _field_confidence(beams: Mapping[str, list[tuple[str, float]]], answer: dict[str, str], spec: FormSpec) -> dict[str, float]:
    """Per field, the share of its line's beam probability whose reading agrees on the field."""
    conf = {}
    for line in spec.lines:
        beam = beams.get(line.name, [])
        probs = _posterior(beam) if beam else np.ones(1)
        read = [line_fields(text, line.fields, spec) for text, _ in beam]
        for key in line.fields:
            agree = [p for fields, p in zip(read, probs) if fields[key] == answer[key]] if beam else [1.0]
            conf[key] = float(sum(agree))
    return {key: conf[key] for key in spec.keys}


def read_lines(reader: FieldReader, lines_per_form: Sequence[dict[str, np.ndarray]], beam: int = 8,
               rerank: Reranker | None = None) -> list[FormReading]:
    """Read already cut lines (line name -> grey per form: ``{"DATE": grey, "CSZ": grey}`` on the
    HSF form) of the reader's form."""
    items = [(i, name, line) for i, lines in enumerate(lines_per_form) for name, line in lines.items()
             if has_ink(line)]
    log_probs = reader.log_probs([to_array(line, reader.config.lines) for _, _, line in items])
    found = [beam_search(lp, beam, alphabet=reader.config.alphabet) for lp in log_probs]
    names, lines = [name for _, name, _ in items], [line for _, _, line in items]
    with one_thread():
        if rerank is not None and hasattr(rerank, "batch"):  # a re-ranker that reads all lines at once
            found = rerank.batch(log_probs, found, names, lines, forms=[i for i, _, _ in items])
        elif rerank is not None:
            found = [rerank(lp, f, name, image=line) for lp, f, name, line in zip(log_probs, found, names, lines)]
    beams: dict[tuple[int, str], list[tuple[str, float]]] = {(i, name): f for (i, name, _), f in zip(items, found)}
    out, spec = [], load_form(reader.config.lines.form)
    for i in range(len(lines_per_form)):
        form_beams = {line: beams.get((i, line), []) for line in spec.line_names}
        texts = {line: beam[0][0] if beam else "" for line, beam in form_beams.items()}
        answer = fields_of_lines(texts, spec)
        out.append(FormReading(answer, _field_confidence(form_beams, answer, spec), texts))
    return out


def check_crop(image: Image.Image, spec: FormSpec | None = None, tolerance: float = 0.25) -> None:
    """Raise ValueError for an image that is not the form's crop (or page) by its aspect ratio
    (default form: the HSF top section, 2460x350), or unreadable."""
    spec = spec or hsf_form()
    width, height = image.size
    area_w, area_h = spec.page.area
    aspect = area_w / area_h
    if not width or not height or abs(width / height - aspect) > tolerance * aspect:
        raise ValueError(f"{width}x{height}: not a registered '{spec.name}' image (expected about {area_w}x{area_h})")
    image.load()


def read_forms(reader: FieldReader, images: Sequence[Image.Image], beam: int = 8,
               rerank: Reranker | None = None) -> list[FormReading]:
    """Read whole top-section crops; a form whose lines cannot be cut gets "None" and its error."""
    cut, failed = [], {}
    for i, image in enumerate(images):
        try:
            check_crop(image, load_form(reader.config.lines.form))
            cut.append(cut_lines(image, reader.config.lines))
        except Exception as err:  # noqa: BLE001 - one bad image must not stop the batch
            failed[i] = f"{type(err).__name__}: {err}"
            cut.append({})
    readings = read_lines(reader, cut, beam=beam, rerank=rerank)
    for i, error in failed.items():
        keys = load_form(reader.config.lines.form).keys
        readings[i] = FormReading({k: NONE for k in keys}, {k: math.nan for k in keys}, error=error)
    return readings
