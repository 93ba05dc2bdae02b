"""Where the handwriting boxes are on a registered form image: pure geometry, no text.

:func:`find_line_boxes` finds a form spec's line boxes from their printed outlines (long thin
horizontal and vertical ink runs, :func:`line_masks`), so an image shifted by the scanner still
works; the template positions are only the fallback. :func:`find_boxes` is the HSF top section's
DATE box and shared CITY/STATE/ZIP box. :func:`box_region` cuts
a box with a margin and whitens its rule lines. Used by the layout engines (RapidOCR,
Tesseract), the field reader's line cutting (:mod:`handwriting_pipeline.forms.lines`) and the
review crops of digitize.
"""

from __future__ import annotations

import cv2
import numpy as np
from PIL import Image

from handwriting_pipeline.fields.formspec import FormSpec, hsf_form
from handwriting_pipeline.forms.spec import line_boxes

Box = tuple[int, int, int, int]  # x0, y0, x1, y1 (pixels, x1/y1 exclusive)

# Template geometry of the 2460x350 crop (measured on real SD19 crops), from the HSF form's spec
# (its crop and its two line boxes); used only when the outlines cannot be found, scaled to the
# image size.
_HSF = hsf_form()
TEMPLATE_SIZE: tuple[int, int] = _HSF.page.area
TEMPLATE_DATE_BOX: Box = _HSF.line("DATE").box
TEMPLATE_CSZ_BOX: Box = _HSF.line("CSZ").box


def to_grey(image: Image.Image) -> np.ndarray:
    """Any PIL image -> 8-bit grey array (ink dark)."""
    return np.asarray(image.convert("L"), dtype=np.uint8)


def _runs(mask: np.ndarray, min_len: int, gap: int = 0) -> list[tuple[int, int]]:
    """Start/end of True runs in a 1-D mask at least ``min_len`` long (gaps <= ``gap`` bridged)."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    runs, start, prev = [], idx[0], idx[0]
    for i in idx[1:]:
        if i - prev > gap + 1:
            runs.append((start, prev + 1))
            start = i
        prev = i
    runs.append((start, prev + 1))
    return [(int(a), int(b)) for a, b in runs if b - a >= min_len]


def line_masks(grey: np.ndarray, min_h: int = 120, min_v: int = 50) -> tuple[np.ndarray, np.ndarray]:
    """Masks of thin horizontal and vertical rule lines (solid blocks such as the blacked-out
    NAME box are removed: they are long in both directions)."""
    ink = (grey < 128).astype(np.uint8)
    horiz = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((1, min_h), np.uint8))
    vert = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((min_v, 1), np.uint8))
    solid = cv2.morphologyEx(ink, cv2.MORPH_OPEN, np.ones((25, 25), np.uint8))
    solid = cv2.dilate(solid, np.ones((9, 9), np.uint8))
    return (horiz & (1 - solid)).astype(bool), (vert & (1 - solid)).astype(bool)


def _scale(box: Box, size: tuple[int, int]) -> Box:
    sx, sy = size[0] / TEMPLATE_SIZE[0], size[1] / TEMPLATE_SIZE[1]
    return (round(box[0] * sx), round(box[1] * sy), round(box[2] * sx), round(box[3] * sy))


def _find_row(grey: np.ndarray, templates: list[Box]) -> list[Box] | None:
    """The boxes of one printed row (side by side, sharing their top and bottom rules), left to
    right, from their outlines; None when the row is not found. ``templates``: the boxes on
    this image's scale, left to right; the found boxes' widths must rank as the templates' do."""
    height, width = grey.shape
    horiz, _ = line_masks(grey)
    counts = horiz.sum(axis=1)
    lo, hi = int(height * 0.3), int(height * 0.97)
    # rule rows: rows with horizontal line pixels; a (slightly skewed) rule spans a few rows,
    # so neighbouring rows are grouped and a group weighs the columns it covers
    strong = counts >= width * 0.04
    strong[:lo] = False
    strong[hi:] = False
    groups = _runs(strong, 1, gap=4)
    if len(groups) < 2:
        return None

    def weight(g: tuple[int, int]) -> int:
        return int(horiz[g[0]:g[1]].any(axis=0).sum())

    groups = [g for g in groups if weight(g) >= width * 0.2]
    best = None
    for i, top in enumerate(groups):
        for bottom in groups[i + 1:]:
            gap = (bottom[0] + bottom[1]) / 2 - (top[0] + top[1]) / 2
            if 0.15 * height <= gap <= 0.5 * height:
                score = min(weight(top), weight(bottom))
                if best is None or score > best[0]:
                    best = (score, top, bottom)
    if best is None:
        return None
    _, top, bottom = best
    y0, y1 = top[0], bottom[1]
    # horizontal extents of the boxes: union of the top and bottom rules' segments
    cols = horiz[top[0]:top[1]].any(axis=0) | horiz[bottom[0]:bottom[1]].any(axis=0)
    segments = [s for s in _runs(cols, int(width * 0.08), gap=int(width * 0.012))]
    if len(segments) < len(templates):
        return None
    found = sorted(segments[-len(templates):])
    widths = [b - a for a, b in found]
    if list(np.argsort(widths, kind="stable")) != list(np.argsort([b[2] - b[0] for b in templates], kind="stable")):
        return None  # the widths do not rank as the template's (e.g. the shared box is the wider one)
    return [(a, y0, b, y1) for a, b in found]


def _find_outline(grey: np.ndarray, template: Box) -> Box | None:
    """One box's printed outline near its template place (``template`` on this image's scale):
    the longest horizontal rules near its top and bottom edges and the vertical rules near its
    sides; None when the top or bottom rule is missing."""
    height, width = grey.shape
    bw, bh = template[2] - template[0], template[3] - template[1]
    mx, my = max(40, bw // 10), max(30, bh // 2)
    x0, y0 = max(0, template[0] - mx), max(0, template[1] - my)
    x1, y1 = min(width, template[2] + mx), min(height, template[3] + my)
    horiz, vert = line_masks(grey[y0:y1, x0:x1], min_h=min(120, max(40, bw // 3)), min_v=max(20, bh // 2))
    # a (slightly skewed) rule spans a few rows: neighbouring rows with rule pixels are grouped,
    # and a group counts when the columns it covers add up to half the box's width
    groups = _runs(horiz.sum(axis=1) >= 0.04 * bw, 1, gap=4)
    rows = [g for g in groups if horiz[g[0]:g[1]].any(axis=0).sum() >= 0.5 * bw]
    if len(rows) < 2:
        return None

    def nearest(runs: list[tuple[int, int]], target: float) -> tuple[int, int]:
        return min(runs, key=lambda r: abs((r[0] + r[1]) / 2 - target))

    top, bottom = nearest(rows, template[1] - y0), nearest(rows, template[3] - y0)
    if bottom[0] - top[1] < bh // 3:
        return None
    cols = _runs(vert[top[0]:bottom[1]].sum(axis=0) >= 0.4 * (bottom[1] - top[0]), 1, gap=4)
    left = nearest(cols, template[0] - x0)[0] if cols else template[0] - x0
    right = nearest(cols, template[2] - x0)[1] if cols else template[2] - x0
    if right - left < bw // 2:
        left, right = template[0] - x0, template[2] - x0
    return (x0 + left, y0 + top[0], x0 + right, y0 + bottom[1])


def find_line_boxes(grey: np.ndarray, spec: FormSpec) -> tuple[dict[str, Box], bool]:
    """Line name -> box on a registered image of the spec's crop (or page), found the way
    ``page.line_boxes`` says (``row`` or ``outline``); a box not found keeps its template place
    (scaled). Returns (boxes, all found)."""
    height, width = grey.shape
    templates = line_boxes(spec, (width, height))
    names = [line.name for line in spec.lines if line.name in templates]
    if spec.page.line_boxes == "row":
        order = sorted(names, key=lambda n: templates[n][0])
        row = _find_row(grey, [templates[n] for n in order])
        found = dict(zip(order, row)) if row else templates
        return {name: found[name] for name in names}, bool(row)
    found = {name: _find_outline(grey, templates[name]) for name in names}
    return {name: box or templates[name] for name, box in found.items()}, all(found.values())


def find_boxes(grey: np.ndarray) -> tuple[Box, Box, bool]:
    """The HSF top section's DATE box and shared CITY/STATE/ZIP box from their outlines
    (:func:`find_line_boxes` on its spec). Returns ``(date_box, csz_box, found)``; ``found`` is
    False when the template was used."""
    boxes, found = find_line_boxes(grey, _HSF)
    date_box, csz_box = boxes.values()
    return date_box, csz_box, found


def label_strip(layout_boxes: tuple[Box, Box], shape: tuple[int, int]) -> Box:
    """The strip above both boxes where the printed labels are."""
    date_box, csz_box = layout_boxes
    height, width = shape
    top = max(0, date_box[1] - round(0.22 * height))
    return (max(0, date_box[0] - 40), top, min(width, csz_box[2] + 20), max(top + 1, date_box[1] - 1))


def box_region(grey: np.ndarray, box: Box, pad_x: int = 25, pad_top: int = 18, pad_bottom: int = 12,
               erase_rules: bool = True) -> tuple[np.ndarray, int, int]:
    """The pixels of a box (with a margin: writing crosses the outline), rule lines whitened.

    Returns the region and its page offset (x, y).
    """
    height, width = grey.shape
    x0, y0 = max(0, box[0] - pad_x), max(0, box[1] - pad_top)
    x1, y1 = min(width, box[2] + pad_x), min(height, box[3] + pad_bottom)
    region = grey[y0:y1, x0:x1].copy()
    if erase_rules:
        horiz, vert = line_masks(region, min_h=max(60, (x1 - x0) // 4), min_v=max(30, (y1 - y0) // 2))
        region[horiz | vert] = 255
    return region, x0, y0
