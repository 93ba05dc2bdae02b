"""Seeded generator of synthetic NIST SD19 top-section crops with exact labels.

A form is drawn in the coordinates of a "nominal" real crop (measured on
``../shared/data/hsf_top``: DATE box outer edge at x=745, boxes' top line at y=198), then the
whole page is rotated, scaled and shifted a little, as a scanner does, and cut to 2460x350.

Printed parts (Computer Modern, the TeX font of the real form; matplotlib ships it):
"HANDWRITING SAMPLE FORM" header, bold labels NAME / DATE / CITY / STATE / ZIP, the DATE box,
the shared CITY/STATE/ZIP box, the blacked-out NAME box and the bold sentence line at the bottom.
Handwriting: digits are skeletons of real MNIST digits, letters and punctuation skeletons of
OFL handwriting fonts, all re-inked with one pen per form (see :mod:`.glyphs`; the writer, pen
and scanner are shared with :mod:`.spec_forms` in :mod:`.pen`).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from PIL import Image, ImageDraw

from handwriting_pipeline.fields import KEYS, NONE

from .glyphs import FontGlyphs, Glyph, font_glyphs, handwriting_font_paths, mnist_digits
from .pen import Writer, draw_glyphs, fit_font, ink_strokes, new_writer, pull_inside, scan, shape_text
from .stream import FormStream
from .values import sample_date, sample_place

WIDTH, HEIGHT = 2460, 350
PAD = 80  # margin around the nominal crop, so shifts/rotations never show an edge

# Nominal layout in crop pixels, measured on real crops (f0123_28, f0267_24, f0509_28, ...)
BOX_TOP, BOX_BOTTOM = 198, 295
DATE_BOX = (745, BOX_TOP, 1110, BOX_BOTTOM)
CSZ_BOX = (1160, BOX_TOP, 2118, BOX_BOTTOM)
NAME_BLACK = (78, 182, 726, 308)
LINE_WIDTH = 6
LABEL_BASELINE = 193
LABELS = {"NAME": 167, "DATE": 815, "CITY": 1207, "STATE": 1673, "ZIP": 1866}
HEADER = ("HANDWRITING SAMPLE FORM", 652, 46, 934)  # text, x, baseline, width
SENTENCE = (
    "This sample of handwriting is being collected for use in testing computer recognition "
    "of hand printed numbers",
    78,
    320,
    2135,
)  # text, x, cap top, width

DEFAULTS: dict[str, Any] = {
    "blank_rate": 0.03,  # wholly blank forms (all four fields "None"), like the authors' blank copies
    "empty_field_rate": 0.03,  # each field of a non-blank form left empty with this probability
    "font_dirs": [],  # extra folders of .ttf/.otf handwriting fonts
    "use_system_fonts": True,  # also use Debian fonts-* handwriting fonts when installed
    "mnist_digit_rate": 0.85,  # share of writers whose digits are MNIST digits (else font digits)
    "line_shift_rate": 0.04,  # fields written low/high, across the box line
    "cap_height": [36, 62],  # writer's capital height range, pixels (box inner height ~85)
    "pen_width": [3, 7],  # stroke width range, pixels
    "rotation_deg": 0.6,  # max skew of the whole scanned form, degrees
    "shift_x": [-20, 20],  # page offset range, pixels (real crops vary about this much)
    "shift_y": [-12, 14],
    "salt_noise": 25,  # mean number of scanner specks per form
    "file_prefix": "synthetic",
}


@dataclass
class SyntheticForm:
    """One rendered form: the image, its labels and where things were drawn (image pixels)."""

    image: Image.Image
    fields: dict[str, str]
    boxes: dict[str, tuple[int, int, int, int]] = field(default_factory=dict)  # DATE, CSZ outer boxes
    place: tuple[str, str, str] | None = None  # gazetteer (zip, city, state) the triple came from


def render_template() -> np.ndarray:
    """The printed form (uint8 canvas, 255 = ink) in nominal crop coordinates plus PAD."""
    img = Image.new("L", (WIDTH + 2 * PAD, HEIGHT + 2 * PAD), 0)
    draw = ImageDraw.Draw(img)
    p = PAD
    text, x, baseline, width = HEADER
    draw.text((x + p, baseline + p), text, font=fit_font("cmr10.ttf", text, width), fill=255, anchor="ls",
              stroke_width=1, stroke_fill=255)
    label_font = fit_font("cmb10.ttf", "DATE", 126)
    for label, lx in LABELS.items():
        draw.text((lx + p, LABEL_BASELINE + p), label, font=label_font, fill=255, anchor="ls")
    for x0, y0, x1, y1 in (DATE_BOX, CSZ_BOX):
        draw.rectangle((x0 + p, y0 + p, x1 + p, y1 + p), outline=255, width=LINE_WIDTH)
    x0, y0, x1, y1 = NAME_BLACK
    draw.rectangle((x0 + p, y0 + p, x1 + p, y1 + p), fill=255)
    text, x, top, width = SENTENCE
    draw.text((x + p, top + p), text, font=fit_font("cmb10.ttf", text, width), fill=255, anchor="lt",
              stroke_width=1, stroke_fill=255)
    return np.asarray(img).copy()


class SyntheticFormGenerator(FormStream):
    """Seeded generator of labelled synthetic HSF top-section crops (2460x350, mode "1").

    ``SyntheticFormGenerator(seed=0, **options)``; every option is optional (see ``DEFAULTS``):

    - ``blank_rate`` (0.03): share of wholly blank forms (all four fields "None").
    - ``empty_field_rate`` (0.03): chance that each field of a filled form is left empty.
    - ``font_dirs`` ([]): extra folders with handwriting .ttf/.otf fonts.
    - ``use_system_fonts`` (True): also use installed Debian handwriting fonts
      (fonts-dkg-handwriting, fonts-femkeklaver, fonts-breip, fonts-rufscript) if present.
    - ``mnist_digit_rate`` (0.85): share of writers whose digits are real MNIST digits.
    - ``line_shift_rate`` (0.04): chance a field is written across the box's top or bottom line.
    - ``cap_height`` ([36, 62]), ``pen_width`` ([3, 7]): handwriting size and stroke ranges (px).
    - ``rotation_deg`` (0.6), ``shift_x`` ([-20, 20]), ``shift_y`` ([-12, 14]): page skew/offset.
    - ``salt_noise`` (25): mean number of scanner specks per form.
    - ``file_prefix`` ("synthetic"): file names are ``<prefix>_<seed>_<index:07d>.png``.

    ``sample(i)`` is a pure function of ``(seed, options, i)``: same arguments, same pixels and
    labels, in any process and any order. ``generate(n, start, workers)`` streams
    ``(file_name, image, fields)`` for indices ``start .. start+n-1`` in order, rendering in
    ``workers`` processes. Labels are exactly the text drawn; "None" marks an empty field.
    """

    def __init__(self, seed: int = 0, **options: Any):
        unknown = set(options) - set(DEFAULTS)
        if unknown:
            raise ValueError(f"unknown SyntheticFormGenerator options {sorted(unknown)}; known: {sorted(DEFAULTS)}")
        self.seed = int(seed)
        self.options = {**DEFAULTS, **options}
        o = self.options
        self.font_paths = handwriting_font_paths(tuple(o["font_dirs"] or ()), bool(o["use_system_fonts"]))
        self.fonts: list[FontGlyphs] = [font_glyphs(p) for p in self.font_paths]
        self.mnist = mnist_digits()
        self.template = render_template()

    def __getstate__(self) -> dict[str, Any]:
        """Pickle as (seed, options) only: a copy in another process rebuilds fonts and caches."""
        return {"seed": self.seed, "options": self.options}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__init__(state["seed"], **state["options"])

    # ------------------------------------------------------------------ rendering
    def render(self, i: int) -> SyntheticForm:
        """Form ``i`` with its layout (box positions in image pixels) and gazetteer source."""
        rng = np.random.default_rng([self.seed, int(i), 0x5D19])
        o = self.options
        fields = {k: NONE for k in KEYS}
        place = None
        if rng.random() >= o["blank_rate"]:
            city, state, zip_code, place = sample_place(rng)
            fields = {"DATE": sample_date(rng), "CITY": city, "STATE": state, "ZIP": zip_code}
            empty = rng.random(4) < o["empty_field_rate"]
            if empty.all():
                empty[int(rng.integers(4))] = False
            for key, drop in zip(KEYS, empty):
                if drop:
                    fields[key] = NONE
        canvas = self.template.copy()
        if any(v != NONE for v in fields.values()):
            writer = self._writer(rng)
            ink = np.zeros_like(canvas)
            self._write_date(rng, ink, writer, fields["DATE"])
            self._write_csz(rng, ink, writer, fields)
            self._ink(ink, writer.pen)
            np.maximum(canvas, ink, out=canvas)
        image, boxes = self._scan(rng, canvas)
        return SyntheticForm(image=image, fields=fields, boxes=boxes, place=place)

    def _writer(self, rng: np.random.Generator) -> Writer:
        return new_writer(rng, self.fonts, self.options)

    def _glyphs(self, rng: np.random.Generator, writer: Writer, text: str) -> tuple[list[tuple[Glyph | None, float]], float]:
        """Glyphs of ``text`` with x offsets (cap units) and total width (cap units)."""
        return shape_text(rng, writer, text, self.fonts, self.mnist)

    def _draw(self, rng: np.random.Generator, ink: np.ndarray, writer: Writer, glyphs, x0: float, baseline: float,
              cap: float) -> None:
        """Plot transformed skeleton points (value 255) into ``ink`` (canvas coordinates)."""
        draw_glyphs(rng, ink, writer, glyphs, x0, baseline, cap, PAD)

    @staticmethod
    def _ink(ink: np.ndarray, pen: int) -> None:
        """Give the skeleton strokes a round pen of ``pen`` pixels (in place)."""
        # handwriting stays within the band of the two boxes (plus what crosses their lines)
        y0, y1 = max(0, BOX_TOP + PAD - 90), min(ink.shape[0], BOX_BOTTOM + PAD + 90)
        x0, x1 = max(0, DATE_BOX[0] + PAD - 60), min(ink.shape[1], CSZ_BOX[2] + PAD + 90)
        ink_strokes(ink, pen, (x0, y0, x1, y1))

    def _baseline(self, rng: np.random.Generator, cap: float) -> float:
        top, bottom = BOX_TOP + LINE_WIDTH, BOX_BOTTOM - LINE_WIDTH
        if rng.random() < self.options["line_shift_rate"]:
            if rng.random() < 0.6:  # written low, across the bottom line
                return bottom + rng.uniform(0.0, 0.2) * cap
            return top + rng.uniform(0.65, 0.85) * cap  # written high, across the top line
        lo = top + cap + 4
        hi = max(lo, bottom - 3)
        return float(rng.uniform(lo, hi))

    def _write_date(self, rng: np.random.Generator, ink: np.ndarray, writer: Writer, text: str) -> None:
        if text == NONE:
            return
        glyphs, width = self._glyphs(rng, writer, text)
        left, right = DATE_BOX[0] + LINE_WIDTH + 8, DATE_BOX[2] - LINE_WIDTH - 8
        cap = writer.cap * rng.uniform(0.9, 1.1)
        width += max(writer.slant, 0.0) + 0.1  # slanted tops and per-letter size jitter
        cap = min(cap, (right - left) / max(width, 1e-6))  # the writer squeezes to fit the box
        slack = max(0.0, (right - left) - width * cap)
        x0 = left + rng.uniform(0, 0.6) * slack
        self._draw(rng, ink, writer, glyphs, x0, self._baseline(rng, cap), cap)

    def _write_csz(self, rng: np.random.Generator, ink: np.ndarray, writer: Writer, fields: dict[str, str]) -> None:
        parts = [(k, fields[k]) for k in ("CITY", "STATE", "ZIP") if fields[k] != NONE]
        if not parts:
            return
        shaped = [(k, *self._glyphs(rng, writer, text)) for k, text in parts]
        left, right = CSZ_BOX[0] + LINE_WIDTH + 8, CSZ_BOX[2] - LINE_WIDTH - 8
        cap = writer.cap * rng.uniform(0.9, 1.1)
        gap = rng.uniform(0.5, 1.2)  # cap units between words
        total = sum(w for _, _, w in shaped) + gap * (len(shaped) - 1) + max(writer.slant, 0.0) + 0.1
        cap = min(cap, (right - left) / total)
        # where the writer aims each part: city at the box's left, state/zip under their labels
        aims = {
            "CITY": left + rng.uniform(0, 50),
            "STATE": LABELS["STATE"] + rng.uniform(-100, 50),
            "ZIP": LABELS["ZIP"] + rng.uniform(-70, 60),
        }
        x = left
        xs = []
        for k, _, w in shaped:
            x = max(x, aims[k])
            xs.append(x)
            x += (w + gap) * cap
        margin = (max(writer.slant, 0.0) + 0.1) * cap
        if xs[-1] + shaped[-1][2] * cap + margin > right:  # too far right: pull parts left, last first
            limit = right - margin - rng.uniform(0, 15)
            pull_inside(xs, [w for _, _, w in shaped], left, limit, gap, cap)
        baseline = self._baseline(rng, cap)
        for (k, glyphs, _), x0 in zip(shaped, xs):
            self._draw(rng, ink, writer, glyphs, x0, baseline + rng.normal(0, 2), cap)

    def _scan(self, rng: np.random.Generator, canvas: np.ndarray) -> tuple[Image.Image, dict[str, tuple[int, int, int, int]]]:
        """Skew, shift and binarise the page like a scanner; cut the 2460x350 crop."""
        return scan(rng, canvas, (WIDTH, HEIGHT), PAD, self.options,
                    (("DATE", DATE_BOX), ("CITY_STATE_ZIP", CSZ_BOX)))


# ---------------------------------------------------------------------- worker processes
