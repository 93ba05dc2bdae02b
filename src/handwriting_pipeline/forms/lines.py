"""The handwritten lines of a form, cut for the recognizer.

Which lines, and where, the form spec says (``LineSettings.form``: the HSF top section's DATE
line and shared CITY/STATE/ZIP line unless another form is named). The boxes come from
:func:`handwriting_pipeline.forms.boxes.find_line_boxes` (on the HSF form the same boxes the
RapidOCR engine reads). Each box is cut with a margin (writing crosses the
outline), its printed rule lines are whitened, small specks are dropped, and the region is
trimmed left and right to the ink. Vertically the cut keeps the whole box, not just the ink:
how tall a letter is against the box is what tells ``o`` from ``O`` and ``s`` from ``S``.

:func:`to_array` turns a line into the recognizer's input: ``height`` rows (48, the stock
recognizer's; its network also takes up to 95), width scaled by the same factor times
``x_stretch`` (more CTC frames per written character), ``(x/255 - 0.5) / 0.5``.
"""

from __future__ import annotations

from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from handwriting_pipeline.fields.formspec import HSF_FORM, hsf_form, load_form
from handwriting_pipeline.forms.boxes import box_region, find_line_boxes, to_grey

HEIGHT = 48
#: the HSF form's lines from its spec: ("DATE", "CSZ"), the DATE box and the shared CITY/STATE/ZIP box
LINES: tuple[str, ...] = hsf_form().line_names


@dataclass(frozen=True)
class LineSettings:
    """How lines are cut and scaled (saved with the model: inference must match training)."""

    pad_x: int = 30
    pad_top: int = 14
    pad_bottom: int = 10
    min_speck_area: int = 12  # connected components smaller than this (pixels) are noise
    margin: int = 12  # pixels kept left and right of the ink
    x_stretch: float = 1.0
    max_width: int = 1600  # model input width cap (after scaling)
    form: str = HSF_FORM  # the form spec whose lines are cut: a shipped form's name or a spec file's path
    height: int = HEIGHT  # rows of the recognizer's input (letter case shows better in more)


def clean_region(region: np.ndarray, settings: LineSettings) -> np.ndarray:
    """Whiten ink that is not writing: specks, thin remnants of rule lines, and anything lying
    wholly in the margin around the box (bottoms of the printed labels above it, the blacked-out
    NAME box beside it)."""
    ink = (region < 128).astype(np.uint8)
    count, labels, stats, _ = cv2.connectedComponentsWithStats(ink, connectivity=8)
    height, width = region.shape
    x, y, w, h, area = (stats[:, i] for i in range(5))
    noise = ((area < settings.min_speck_area) | (h <= 2)
             | (y + h <= settings.pad_top + 2) | (y >= height - settings.pad_bottom - 2)
             | (x + w <= settings.pad_x + 2) | (x >= width - settings.pad_x - 2))
    noise[0] = False  # background
    if noise.any():
        region = region.copy()
        region[noise[labels]] = 255
    return region


def trim_horizontally(region: np.ndarray, margin: int) -> np.ndarray:
    """Cut the columns without ink on both sides (keeps ``margin`` pixels); blank stays as is."""
    cols = np.flatnonzero((region < 128).any(axis=0))
    if cols.size == 0:
        return region
    return region[:, max(0, cols[0] - margin): cols[-1] + 1 + margin]


def cut_lines(image: Image.Image, settings: LineSettings = LineSettings()) -> dict[str, np.ndarray]:
    """Line name -> grey array (ink dark on white) of one registered form image, for every line
    of ``settings.form`` (the HSF top section: ``{"DATE": ..., "CSZ": ...}``)."""
    grey = to_grey(image)
    boxes, _ = find_line_boxes(grey, load_form(settings.form))
    lines = {}
    for name, box in boxes.items():
        region, _, _ = box_region(grey, box, pad_x=settings.pad_x, pad_top=settings.pad_top,
                                  pad_bottom=settings.pad_bottom)
        region = clean_region(region, settings)
        lines[name] = trim_horizontally(region, settings.margin)
    return lines


def has_ink(line: np.ndarray, min_pixels: int = 40) -> bool:
    """Whether a line holds any writing."""
    return int((line < 128).sum()) >= min_pixels


def scaled_width(line: np.ndarray, settings: LineSettings) -> int:
    height, width = line.shape
    return int(min(settings.max_width, max(16, round(width * settings.height / height * settings.x_stretch))))


def to_array(line: np.ndarray, settings: LineSettings) -> np.ndarray:
    """A grey line -> float32 [3, height, W] in [-1, 1] (W a multiple of 8)."""
    width = scaled_width(line, settings)
    width = (width + 7) // 8 * 8
    resized = cv2.resize(line, (width, settings.height), interpolation=cv2.INTER_AREA).astype(np.float32)
    normed = (resized / 255.0 - 0.5) / 0.5
    return np.repeat(normed[None], 3, axis=0)


def padded_width(width: int, multiple: int) -> int:
    """``width`` rounded up to a multiple of ``multiple`` columns (0 or 1: unchanged)."""
    return -(-width // multiple) * multiple if multiple > 1 else width


def batch_arrays(arrays: list[np.ndarray], width: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Right-pad [3, height, W] arrays (one height) with white to one batch ``width`` columns wide
    (default: the widest array's); returns (batch, frames per item)."""
    width = max(width, *(a.shape[2] for a in arrays))
    batch = np.ones((len(arrays), 3, arrays[0].shape[1], width), dtype=np.float32)  # +1 = white
    for i, array in enumerate(arrays):
        batch[i, :, :, : array.shape[2]] = array
    return batch, np.array([a.shape[2] // 8 for a in arrays], dtype=np.int64)
