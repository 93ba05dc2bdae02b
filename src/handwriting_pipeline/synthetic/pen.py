"""The pen and scanner shared by the synthetic form renderers (:mod:`.generator`, :mod:`.spec_forms`).

* :class:`Writer` and :func:`new_writer`: one writer per form (font, MNIST or font digits,
  capital height, pen width, slant, spacing, drift, wobble);
* :func:`shape_text`: a string as skeleton glyphs with x offsets, in cap-height units;
* :func:`draw_glyphs`: the glyphs plotted (skeleton points, value 255) onto an ink canvas;
* :func:`ink_strokes`: the skeletons given the writer's round pen;
* :func:`scan`: the page skewed, scaled, shifted and binarised like a scanner, with specks;
* :func:`printed_font` / :func:`fit_font`: the matplotlib-shipped fonts of the printed parts.

Every function draws from the ``rng`` it is given in a fixed order, so a form is a pure
function of its generator's seed, options and index.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

import numpy as np
from PIL import Image, ImageFont

from .glyphs import FontGlyphs, Glyph, MnistDigits

Box = tuple[int, int, int, int]  # x0, y0, x1, y1
Shaped = list[tuple[Glyph, float]]  # glyphs with their x offsets, cap-height units


# --------------------------------------------------------------------------- printed fonts
@lru_cache(maxsize=32)
def printed_font(name: str, size: int) -> ImageFont.FreeTypeFont:
    """A font that matplotlib ships (``cmr10.ttf``, ``DejaVuSans-Bold.ttf``) at ``size`` px."""
    import matplotlib

    path = os.path.join(matplotlib.get_data_path(), "fonts", "ttf", name)
    return ImageFont.truetype(path, size)


def fit_font(name: str, text: str, width: float) -> ImageFont.FreeTypeFont:
    """``name`` at the size where ``text`` is ``width`` pixels long (at least 8 px)."""
    probe = printed_font(name, 100)
    return printed_font(name, max(8, int(round(100 * width / probe.getlength(text)))))


# --------------------------------------------------------------------------- the writer
@dataclass
class Writer:
    """One form's hand: everything it writes shares font, digits, size, pen and slant."""

    font: FontGlyphs
    mnist: bool
    cap: float
    pen: int
    slant: float
    tracking: float
    space: float
    drift: float
    wobble: float


def new_writer(rng: np.random.Generator, fonts: list[FontGlyphs], options: dict[str, Any]) -> Writer:
    """A writer drawn from ``options`` (``mnist_digit_rate``, ``cap_height``, ``pen_width``)."""
    lo, hi = options["cap_height"]
    plo, phi = options["pen_width"]
    return Writer(
        font=fonts[int(rng.integers(len(fonts)))],
        mnist=bool(rng.random() < options["mnist_digit_rate"]),
        cap=float(rng.uniform(lo, hi)),
        pen=int(rng.integers(plo, phi + 1)),
        slant=float(np.clip(rng.normal(0.05, 0.12), -0.25, 0.4)),
        tracking=float(rng.uniform(0.0, 0.18)),
        space=float(rng.uniform(0.35, 0.8)),
        drift=float(rng.normal(0, 0.02)),
        wobble=float(rng.uniform(0.0, 0.05)),
    )


def can_write(ch: str, fonts: Iterable[FontGlyphs]) -> bool:
    """Whether a character can be written: a space, or a glyph of one of the fonts."""
    return ch == " " or any(f.has(ch) for f in fonts)


def shape_text(rng: np.random.Generator, writer: Writer, text: str, fonts: list[FontGlyphs],
               mnist: MnistDigits) -> tuple[Shaped, float]:
    """Glyphs of ``text`` with x offsets (cap units) and total width (cap units).

    Digits are MNIST digits for an MNIST writer, else font glyphs; a character the writer's
    font lacks comes from the first font that has it (ValueError when none has it).
    """
    out: Shaped = []
    x = 0.0
    width = 0.0
    for ch in text:
        if ch == " ":
            x += writer.space * rng.uniform(0.8, 1.3)
            continue
        if ch.isdigit() and writer.mnist:
            d = int(ch)
            glyph = mnist.get(d, int(rng.integers(mnist.count(d))))
        else:
            glyph = writer.font.get(ch)
            if glyph is None:  # font lacks it: first font that has it
                glyph = next((g for g in (f.get(ch) for f in fonts) if g is not None), None)
            if glyph is None:
                raise ValueError(f"no handwriting font can draw {ch!r} (in {text!r}); fonts: {[f.path for f in fonts]}")
        out.append((glyph, x))
        width = x + glyph.width
        x += glyph.advance + writer.tracking * rng.uniform(0.5, 1.5)
    return out, width


def draw_glyphs(rng: np.random.Generator, ink: np.ndarray, writer: Writer, glyphs: Shaped, x0: float,
                baseline: float, cap: float, offset: int = 0) -> None:
    """Plot transformed skeleton points (value 255) into ``ink``; ``x0``/``baseline`` are in
    layout pixels, ``offset`` the canvas margin added to both."""
    h, w = ink.shape
    for glyph, gx in glyphs:
        pts = glyph.points
        s = cap * (1.0 + rng.normal(0, 0.05))
        angle = rng.normal(0, 0.04)
        shear = writer.slant + rng.normal(0, 0.04)
        ca, sa = np.cos(angle), np.sin(angle)
        x = pts[:, 0] - shear * pts[:, 1]
        y = pts[:, 1]
        if writer.wobble:
            phase = rng.uniform(0, 6.3, 2)
            x = x + writer.wobble * np.sin(3.0 * y + phase[0])
            y = y + writer.wobble * np.sin(3.0 * x + phase[1])
        px = x0 + gx * cap + s * (ca * x - sa * y) + offset
        py = baseline + s * (sa * x + ca * y) + writer.drift * gx * cap + rng.normal(0, 0.025) * cap + offset
        xi = np.round(px).astype(np.intp)
        yi = np.round(py).astype(np.intp)
        keep = (xi >= 0) & (xi < w) & (yi >= 0) & (yi < h)
        ink[yi[keep], xi[keep]] = 255


def ink_strokes(ink: np.ndarray, pen: int, region: Box | None = None) -> None:
    """Give the skeleton strokes a round pen of ``pen`` pixels (in place), within ``region``
    (x0, y0, x1, y1 on the canvas; the whole canvas when None)."""
    import cv2

    x0, y0, x1, y1 = region if region is not None else (0, 0, ink.shape[1], ink.shape[0])
    kernel = cv2.getStructuringElement(cv2.MORPH_ELLIPSE, (pen, pen))
    ink[y0:y1, x0:x1] = cv2.dilate(ink[y0:y1, x0:x1], kernel)


# --------------------------------------------------------------------------- the scanner
def scan(rng: np.random.Generator, canvas: np.ndarray, size: tuple[int, int], pad: int, options: dict[str, Any],
         boxes: Iterable[tuple[str, Box]] = ()) -> tuple[Image.Image, dict[str, Box]]:
    """Skew, scale, shift and binarise ``canvas`` (uint8, 255 = ink; the layout plus ``pad`` on
    every side) like a scanner, add specks and cut the ``size`` (width, height) image (mode "1",
    ink black). Options: ``rotation_deg``, ``shift_x``, ``shift_y``, ``salt_noise``.
    ``boxes`` (layout coordinates) come back as the bounding boxes of their mapped corners."""
    import cv2

    width, height = size
    angle = np.deg2rad(rng.uniform(-options["rotation_deg"], options["rotation_deg"]))
    scale = rng.uniform(0.985, 1.015)
    tx, ty = rng.uniform(*options["shift_x"]), rng.uniform(*options["shift_y"])
    a = scale * np.array([[np.cos(angle), -np.sin(angle)], [np.sin(angle), np.cos(angle)]])
    centre = np.array([width / 2, height / 2])
    b = centre + np.array([tx, ty]) - a @ (centre + pad)
    matrix = np.hstack([a, b[:, None]]).astype(np.float32)
    out = cv2.warpAffine(canvas, matrix, (width, height), flags=cv2.INTER_LINEAR, borderValue=0)
    ink = out > int(rng.integers(90, 170))
    n = rng.poisson(options["salt_noise"])
    if n:
        ys = rng.integers(0, height - 3, n)
        xs = rng.integers(0, width - 3, n)
        sizes = rng.integers(1, 4, n)
        for y, x, s in zip(ys, xs, sizes):
            ink[y : y + s, x : x + s] = True
    mapped_boxes = {}
    for name, (x0, y0, x1, y1) in boxes:
        corners = np.array([[x0, y0], [x1, y0], [x0, y1], [x1, y1]], dtype=float) + pad
        mapped = corners @ a.T + b
        mapped_boxes[name] = (
            int(np.floor(mapped[:, 0].min())),
            int(np.floor(mapped[:, 1].min())),
            int(np.ceil(mapped[:, 0].max())),
            int(np.ceil(mapped[:, 1].max())),
        )
    image = Image.fromarray(~ink)  # bool array -> mode "1", ink black
    return image, mapped_boxes


def pull_inside(xs: list[float], widths: list[float], left: float, limit: float, gap: float, cap: float) -> None:
    """Values written too far right (their starts ``xs``, widths in cap heights): pulled left so the
    last ends at ``limit``, each keeping ``gap`` before the next, last first; when that starts
    the first left of ``left``, all are packed from ``left`` instead. Changes ``xs`` in place."""
    for j in range(len(xs) - 1, -1, -1):
        xs[j] = min(xs[j], limit - widths[j] * cap)
        limit = xs[j] - gap * cap
    if xs[0] < left:  # still too wide: pack from the left edge
        x = left
        for j, w in enumerate(widths):
            xs[j] = x
            x += (w + gap) * cap
