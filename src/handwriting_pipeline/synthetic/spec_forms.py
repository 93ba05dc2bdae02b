"""Synthetic filled-in forms for any form spec (``conf/base/forms/<name>.yml``), with exact labels.

The image is the spec's reading area (``spec.page.area``: the crop when the spec has one, else
the page), white, with

* printed parts: the spec's title at the top, each line's box outline (5 px, the printed box
  lines registration and the field reader look for) and, above each field's part of its line, a
  small bold label (the field's ``title``, else its name). A line box is divided into one part
  per field, left to right, in proportion to a typical width of each field's type
  (:func:`typical_chars`); a line without a ``box`` in the spec gets one below the others;
* handwriting: each field's value (:data:`.values.VALUE_SAMPLERS`, by the field's type) written
  in its part on the line's baseline, by one writer per form with one pen: digits are real
  MNIST digits for most writers, letters and punctuation come from OFL handwriting fonts
  (:mod:`.glyphs`, drawn with :mod:`.pen`, as the HSF renderer :mod:`.generator` does);
* a scanner: small rotation, scale and shift, binarisation and specks.

The labels are the values as written, in spec order; an empty field is "None".

>>> gen = SpecFormGenerator(load_form("order_card"), seed=0)
>>> image, fields = gen.sample(0)      # 1700x1100 mode "1"; fields ORDER_NO, DATE, AMOUNT, ...
>>> form = gen.render(0)               # + boxes (line name -> outer box), parts (field -> its part)
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from handwriting_pipeline.fields import NONE
from handwriting_pipeline.fields.formspec import FormSpec, load_form
from handwriting_pipeline.fields.types import FieldType, type_of

from .generator import SyntheticForm
from .glyphs import FontGlyphs, font_glyphs, handwriting_font_paths, mnist_digits
from .pen import Box, Writer, draw_glyphs, ink_strokes, new_writer, printed_font, pull_inside, scan, shape_text
from .stream import FormStream
from .values import sample_value

PAD = 80  # margin around the area, so shifts/rotations never show an edge
LINE_WIDTH = 5  # printed box outline, pixels
TITLE_FONT = "DejaVuSans.ttf"
LABEL_FONT = "DejaVuSans-Bold.ttf"
GAP = 8  # pixels kept free inside a part, on each side, before writing

#: typical written width of a value, in characters, per field type (how a line box is shared)
TYPICAL_CHARS: dict[str, float] = {
    "date": 8, "us_city": 11, "us_state": 3, "us_zip": 5, "digits": 6, "amount": 7, "phone": 13,
    "text": 14, "choice": 6, "checkbox": 2,
}

DEFAULTS: dict[str, Any] = {
    "blank_rate": 0.03,  # wholly blank forms (every field "None")
    "empty_field_rate": 0.03,  # each field of a non-blank form left empty with this probability
    "font_dirs": [],  # extra folders of .ttf/.otf handwriting fonts
    "use_system_fonts": True,  # also use Debian fonts-* handwriting fonts when installed
    "mnist_digit_rate": 0.85,  # share of writers whose digits are MNIST digits (else font digits)
    "line_shift_rate": 0.04,  # lines written low/high, across the box line
    "cap_height": [36, 62],  # writer's capital height range, pixels (at most 3/4 of a box's inner height)
    "pen_width": [3, 7],  # stroke width range, pixels
    "rotation_deg": 0.6,  # max skew of the whole scanned form, degrees
    "shift_x": [-20, 20],  # page offset range, pixels
    "shift_y": [-14, 14],
    "salt_noise": 25,  # mean number of scanner specks per form
    "file_prefix": None,  # file names <prefix>_<seed>_<index:07d>.png; None: synthetic_<spec name>
}


@dataclass
class SpecForm(SyntheticForm):
    """One rendered spec form: :class:`.generator.SyntheticForm` (``boxes``: each line's outer
    box, by line name) plus ``parts``: each field's part of its line box, by field name (image
    pixels, after the scan's skew and shift, clipped to the image)."""

    parts: dict[str, Box] = field(default_factory=dict)


def typical_chars(ftype: FieldType) -> float:
    """How many characters a value of this type (with its options) typically takes."""
    o = ftype.options
    if ftype.name == "digits":
        n = o.length or o.max_length or max(o.min_length or 0, 6)
        return n + 1.0
    if ftype.name == "text" and o.max_length:
        return float(min(TYPICAL_CHARS["text"], o.max_length + 1))
    if ftype.name == "choice":
        return max(len(option) for option in o.options) + 1.0
    return float(TYPICAL_CHARS.get(ftype.name, 8))


def _label_size(box: Box) -> int:
    return int(np.clip(round(0.28 * (box[3] - box[1])), 14, 34))


def layout_lines(spec: FormSpec, top: int = 0) -> dict[str, Box]:
    """Each line's box (area pixels): the spec's box, or for a line without one a box across the
    area in a band below the boxed lines (and ``top``). ValueError when they do not fit."""
    width, height = spec.page.area
    boxes = {line.name: line.box for line in spec.lines if line.box is not None}
    free = [line.name for line in spec.lines if line.box is None]
    if free:
        y = max([top] + [b[3] for b in boxes.values()]) + 10
        band = (height - 10 - y) / len(free)
        box_h = int(min(120, band - 40))
        if box_h < 40:
            raise ValueError(f"form '{spec.name}': no room for the lines without a box ({', '.join(free)}) in "
                             f"{width}x{height}; give them a box in the spec")
        x0, x1 = int(0.05 * width), int(0.95 * width)
        for k, name in enumerate(free):
            y0 = int(y + k * band + (band - box_h))  # the label sits in the band above the box
            boxes[name] = (x0, y0, x1, y0 + box_h)
    return {line.name: boxes[line.name] for line in spec.lines}


def layout_parts(spec: FormSpec, line_boxes: dict[str, Box], types: dict[str, FieldType]) -> dict[str, Box]:
    """Each field's part of its line box: the box split left to right in proportion to
    :func:`typical_chars` of the line's fields (parts share their edges; full box height)."""
    parts: dict[str, Box] = {}
    for line in spec.lines:
        x0, y0, x1, y1 = line_boxes[line.name]
        weights = np.array([typical_chars(types[name]) for name in line.fields])
        edges = np.round(x0 + (x1 - x0) * np.concatenate([[0.0], np.cumsum(weights) / weights.sum()])).astype(int)
        for name, left, right in zip(line.fields, edges[:-1], edges[1:]):
            parts[name] = (int(left), y0, int(right), y1)
    return {f.name: parts[f.name] for f in spec.fields}


class SpecFormGenerator(FormStream):
    """Seeded generator of labelled synthetic forms of one form spec (``spec.page.area``, mode "1").

    ``SpecFormGenerator(spec, seed=0, **options)``: ``spec`` a :class:`FormSpec` (or a shipped
    form's name / a spec file's path); every option is optional (see ``DEFAULTS``), with the
    meaning it has for :class:`.generator.SyntheticFormGenerator`: ``blank_rate``,
    ``empty_field_rate``, ``font_dirs``, ``use_system_fonts``, ``mnist_digit_rate``,
    ``line_shift_rate``, ``cap_height``, ``pen_width``, ``rotation_deg``, ``shift_x``,
    ``shift_y``, ``salt_noise``, ``file_prefix`` (default ``synthetic_<spec name>``).

    ``sample(i)`` is a pure function of ``(spec, seed, options, i)``; ``generate(n, start,
    workers)`` streams ``(file_name, image, fields)`` in index order, rendering in ``workers``
    processes. Labels are the text drawn, every field of the spec in order, "None" when empty.
    """

    def __init__(self, spec: FormSpec | str | Path, seed: int = 0, **options: Any):
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown SpecFormGenerator options {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.spec = spec if isinstance(spec, FormSpec) else load_form(spec)
        self.seed = int(seed)
        self.options = {**DEFAULTS, **options}
        o = self.options
        if o["file_prefix"] is None:
            o["file_prefix"] = f"synthetic_{self.spec.name}"
        self.font_paths = handwriting_font_paths(tuple(o["font_dirs"] or ()), bool(o["use_system_fonts"]))
        self.fonts: list[FontGlyphs] = [font_glyphs(p) for p in self.font_paths]
        self.mnist = mnist_digits()
        self.size: tuple[int, int] = tuple(self.spec.page.area)
        self.types = {f.name: type_of(f) for f in self.spec.fields}
        self.line_boxes, self.parts, self.template = self._layout()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle as (spec, seed, options) only: a copy in another process rebuilds fonts and caches."""
        return {"spec": self.spec, "seed": self.seed, "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["spec"], state["seed"], **state["options"])

    # ------------------------------------------------------------------ rendering
    def render(self, i: int) -> SpecForm:
        """Form ``i`` with its layout (line boxes and field parts in image pixels) and the
        gazetteer row (zip, city, state) its US place fields came from, if any."""
        rng = np.random.default_rng([self.seed, int(i), 0x5BEC])
        o = self.options
        keys = self.spec.keys
        fields = dict.fromkeys(keys, NONE)
        context: dict[str, Any] = {}
        if rng.random() >= o["blank_rate"]:
            fields = {k: sample_value(rng, self.types[k], context) for k in keys}
            empty = rng.random(len(keys)) < o["empty_field_rate"]
            if empty.all():
                empty[int(rng.integers(len(keys)))] = False
            for key, drop in zip(keys, empty):
                if drop:
                    fields[key] = NONE
        canvas = self.template.copy()
        if any(v != NONE for v in fields.values()):
            writer = new_writer(rng, self.fonts, o)
            ink = np.zeros_like(canvas)
            for line in self.spec.lines:
                self._write_line(rng, ink, writer, line.name, [(k, fields[k]) for k in line.fields])
            ink_strokes(ink, writer.pen)
            np.maximum(canvas, ink, out=canvas)
        boxes = [(name, box) for name, box in self.line_boxes.items()]
        parts = [(f"part:{name}", box) for name, box in self.parts.items()]
        image, mapped = scan(rng, canvas, self.size, PAD, o, boxes + parts)
        mapped = {name: self._clip(box) for name, box in mapped.items()}
        place = context["place"][3] if "place" in context else None
        return SpecForm(image=image, fields=fields, boxes={name: mapped[name] for name, _ in boxes},
                        place=place, parts={name: mapped[f"part:{name}"] for name in self.parts})

    # ------------------------------------------------------------------ printed parts
    def _layout(self) -> tuple[dict[str, Box], dict[str, Box], np.ndarray]:
        """Line boxes, field parts and the printed form (uint8 canvas, 255 = ink, area plus PAD)."""
        width, height = self.size
        title = self.spec.title
        title_top = max(4, int(0.015 * height))
        title_size = int(np.clip(round(0.04 * height), 20, 40))
        title_fit = printed_font(TITLE_FONT, 100).getlength(title)
        title_size = min(title_size, int(100 * 0.9 * width / max(title_fit, 1.0)))
        boxed = [line.box for line in self.spec.lines if line.box is not None]
        if boxed:  # the title stays above the highest label
            room = min(b[1] - 6 - _label_size(b) for b in boxed) - 4 - title_top
            title_size = min(title_size, int(room / 1.2))
        line_boxes = layout_lines(self.spec, top=title_top + int(1.2 * max(title_size, 0)))
        parts = layout_parts(self.spec, line_boxes, self.types)

        img = Image.new("L", (width + 2 * PAD, height + 2 * PAD), 0)
        draw = ImageDraw.Draw(img)
        p = PAD
        if title_size >= 12:
            draw.text((int(0.03 * width) + p, title_top + p), title, font=printed_font(TITLE_FONT, title_size),
                      fill=255, anchor="lt", stroke_width=1 if title_size < 28 else 0, stroke_fill=255)
        for x0, y0, x1, y1 in line_boxes.values():
            draw.rectangle((x0 + p, y0 + p, x1 - 1 + p, y1 - 1 + p), outline=255, width=LINE_WIDTH)
        for f in self.spec.fields:
            x0, y0, x1, _ = parts[f.name]
            label = f.title or f.name
            size = min(_label_size(parts[f.name]), y0 - 8)
            fit = printed_font(LABEL_FONT, 100).getlength(label)
            size = min(size, int(100 * (x1 - x0 - 8) / max(fit, 1.0)))
            if size >= 8:
                draw.text((x0 + 4 + p, y0 - 6 + p), label, font=printed_font(LABEL_FONT, size), fill=255, anchor="ls")
        return line_boxes, parts, np.asarray(img).copy()

    # ------------------------------------------------------------------ handwriting
    def _baseline(self, rng: np.random.Generator, cap: float, top: float, bottom: float) -> float:
        if rng.random() < self.options["line_shift_rate"]:
            if rng.random() < 0.6:  # written low, across the bottom line
                return bottom + rng.uniform(0.0, 0.2) * cap
            return top + rng.uniform(0.65, 0.85) * cap  # written high, across the top line
        lo = top + cap + 4
        hi = max(lo, bottom - 3)
        return float(rng.uniform(lo, hi))

    def _write_line(self, rng: np.random.Generator, ink: np.ndarray, writer: Writer, line: str,
                    values: list[tuple[str, str]]) -> None:
        """Write the line's non-empty values on one baseline, each aimed at its part; as the HSF
        writer does on its shared line, a value pushes the next one right, values too far right
        are pulled back inside the box, and a line too long for the box is written smaller."""
        values = [(k, v) for k, v in values if v != NONE]
        if not values:
            return
        x0, y0, x1, y1 = self.line_boxes[line]
        top, bottom = y0 + LINE_WIDTH, y1 - LINE_WIDTH
        left, right = x0 + LINE_WIDTH + GAP, x1 - LINE_WIDTH - GAP
        shaped = [(k, *shape_text(rng, writer, text, self.fonts, self.mnist)) for k, text in values]
        cap = min(writer.cap * rng.uniform(0.9, 1.1), 0.75 * (bottom - top))
        gap = rng.uniform(0.5, 1.2)  # cap units between values
        margin = max(writer.slant, 0.0) + 0.1  # slanted tops and per-letter size jitter
        total = sum(w for _, _, w in shaped) + gap * (len(shaped) - 1) + margin
        cap = min(cap, (right - left) / total)
        xs = []
        x = left
        for k, _, w in shaped:
            part_left, part_right = max(left, self.parts[k][0] + GAP), min(right, self.parts[k][2] - GAP)
            slack = max(0.0, part_right - part_left - (w + margin) * cap)
            x = max(x, part_left + rng.uniform(0, 0.5) * slack)
            xs.append(x)
            x += (w + gap) * cap
        if xs[-1] + (shaped[-1][2] + margin) * cap > right:  # too far right: pull values left, last first
            limit = right - margin * cap - rng.uniform(0, 10)
            pull_inside(xs, [w for _, _, w in shaped], left, limit, gap, cap)
        baseline = self._baseline(rng, cap, top, bottom)
        for (_, glyphs, _), start in zip(shaped, xs):
            draw_glyphs(rng, ink, writer, glyphs, start, baseline + rng.normal(0, 2), cap, PAD)

    def _clip(self, box: Box) -> Box:
        width, height = self.size
        return (max(0, box[0]), max(0, box[1]), min(width, box[2]), min(height, box[3]))


# ---------------------------------------------------------------------- worker processes
