"""Page registration and cropping of the top section of NIST SD19 handwriting sample forms.

A scanned page may be shifted by tens of pixels and skewed by a degree or two, so a fixed
crop box cuts the DATE / CITY boxes in the wrong place. :func:`crop_top_section` registers
the page on its printed box lines before cropping:

1. **skew**: the ink of the search band is cut into vertical strips; for each candidate angle
   the strips' row profiles are shifted by ``x * tan(angle)`` and summed; the angle giving the
   sharpest profile (printed rules and text lines all horizontal) is the skew;
2. the search band (the crop box's rows ± ``max_shift``, all the page needs) is rotated back
   (white fill; OpenCV, the band only - rotating the whole page cost ~0.4 s with PIL) and the
   **box row** is found in it: two long horizontal
   rules one box height apart (runs of ink longer than ``min_run`` pixels, so text does not
   count), with vertical box edges between them; the widest box is the CITY/STATE/ZIP box;
3. **shift**: the top rule and the CITY box are moved onto where they lie on the published
   crops (``reference``, measured on the real crops of ``../shared/data/hsf_top``) and the
   crop box is cut there, then thresholded to 1-bit like the published crops.

Anything that does not fit (no box row, box of the wrong width, skew or shift out of range)
raises :class:`RegistrationError` with the reason, so the curation report can list the page.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any

import cv2
import numpy as np
from PIL import Image

from handwriting_pipeline.fields.formspec import hsf_form

#: where the top section lies on a 2560x3300 page: the HSF form spec's ``page.crop``
#: (``curation.crop.box`` and ``digitize.crop_box`` give the same box)
CROP_BOX: tuple[int, int, int, int] = hsf_form().page.crop

#: Box-line positions on the published 2460x350 crops (crop coordinates, pixels): medians over
#: the 1,599 real crops of ../shared/data/hsf_top measured with :func:`find_box_row`
#: (top rule's first row, bottom rule's first row, CITY/STATE/ZIP box left and right edges).
REFERENCE: dict[str, float] = {
    "top_rule": 188.0,
    "bottom_rule": 279.0,
    "city_left": 1177.0,
    "city_right": 2131.0,
}


class RegistrationError(ValueError):
    """The page's printed box lines were not found where a form's top section should be."""


@dataclass
class Registration:
    """What registration found on one page (page coordinates after deskewing)."""

    angle: float  # skew of the scan in degrees (counter-clockwise positive); undone before cropping
    dx: int  # shift of the page right of the reference, pixels
    dy: int  # shift of the page below the reference, pixels
    top_rule: int
    bottom_rule: int
    boxes: list[tuple[int, int]] = field(default_factory=list)  # box x ranges, left to right
    band_top: int = 0  # page row of the first row of the deskewed band register_page returns

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass
class BoxRow:
    """A row of printed boxes: top and bottom rule rows and the boxes' x ranges."""

    top_rule: int
    bottom_rule: int
    boxes: list[tuple[int, int]]
    city: tuple[int, int] | None = None

    @property
    def city_box(self) -> tuple[int, int]:
        """The shared CITY / STATE / ZIP box (the box of the expected width, else the widest)."""
        return self.city or max(self.boxes, key=lambda b: b[1] - b[0])


def _runs(mask: np.ndarray, max_gap: int = 0) -> list[tuple[int, int]]:
    """(start, end) inclusive index ranges where ``mask`` is true, gaps up to ``max_gap`` closed."""
    idx = np.flatnonzero(mask)
    if idx.size == 0:
        return []
    breaks = np.flatnonzero(np.diff(idx) > max_gap + 1)
    starts = np.concatenate(([idx[0]], idx[breaks + 1]))
    ends = np.concatenate((idx[breaks], [idx[-1]]))
    return [(int(s), int(e)) for s, e in zip(starts, ends)]


def long_run_rows(ink: np.ndarray, min_run: int) -> np.ndarray:
    """Per row, how many pixels start a horizontal ink run of at least ``min_run`` pixels
    (rules score high, handwriting and printed text score zero). One-pixel breaks are bridged
    by OR-ing each row with its neighbours."""
    thick = ink.copy()
    thick[1:] |= ink[:-1]
    thick[:-1] |= ink[1:]
    cs = np.zeros((thick.shape[0], thick.shape[1] + 1), dtype=np.int32)
    np.cumsum(thick, axis=1, out=cs[:, 1:])
    full = (cs[:, min_run:] - cs[:, :-min_run]) == min_run
    return full.sum(axis=1)


def find_box_row(ink: np.ndarray, expected_top: float | None = None, box_height: float = 92.0,
                 min_run: int = 100, min_rule: int = 600, city_width: float | None = None,
                 width_tolerance: float = 0.08) -> BoxRow:
    """Find the row of printed boxes in a binary image (True = ink).

    Candidates are pairs of rule bands ``box_height`` (±25 %) apart with vertical box edges
    between them; the one whose top rule is nearest ``expected_top`` (and whose widest box is
    ``city_width`` ± ``width_tolerance`` wide, when given) wins. Raises RegistrationError.
    """
    scores = long_run_rows(ink, min_run)
    bands = _runs(scores >= min_rule, max_gap=2)
    if not bands:
        raise RegistrationError("no long horizontal rules (box lines) found")
    candidates: list[BoxRow] = []
    reasons: list[str] = []
    for i, (a0, a1) in enumerate(bands):
        for b0, b1 in bands[i + 1:]:
            gap = b0 - a0
            if gap < 0.75 * box_height:
                continue
            if gap > 1.25 * box_height:
                break
            row = _boxes_between(ink, a0, a1, b0, b1, box_height, city_width, width_tolerance)
            if row is None:
                reasons.append(f"rules at y={a0},{b0} have no box edges between them")
                continue
            if city_width is not None:
                left, right = row.city_box
                if abs((right - left) - city_width) > width_tolerance * city_width:
                    reasons.append(f"widest box at y={a0} is {right - left}px wide, expected ~{city_width:.0f}px")
                    continue
            candidates.append(row)
    if not candidates:
        why = "; ".join(reasons[:3]) or f"no two rules ~{box_height:.0f}px apart"
        raise RegistrationError(f"box row not found ({why})")
    if expected_top is None:
        return candidates[0]
    return min(candidates, key=lambda r: abs(r.top_rule - expected_top))


def _boxes_between(ink: np.ndarray, a0: int, a1: int, b0: int, b1: int, box_height: float,
                   city_width: float | None = None, width_tolerance: float = 0.08) -> BoxRow | None:
    inner = ink[a1 + 3: b0 - 2]
    if inner.shape[0] < 0.5 * box_height:
        return None
    column_ink = inner.mean(axis=0)
    edges: list[int] = []
    for s, e in _runs(column_ink >= 0.9, max_gap=1):
        edges.extend([s, e] if e - s > 30 else [(s + e) // 2])  # a wide run is a filled (blacked-out) box
    top_row = ink[a0: a1 + 1].any(axis=0)
    bottom_row = ink[b0: b1 + 1].any(axis=0)

    def ruled(left: int, right: int) -> bool:
        return top_row[left:right + 1].mean() > 0.8 and bottom_row[left:right + 1].mean() > 0.8

    boxes = [(left, right) for left, right in zip(edges, edges[1:]) if right - left > 60 and ruled(left, right)]
    if not boxes:
        return None
    city = None
    if city_width is not None:
        # a handwritten stroke spanning the box height looks like an edge: look at every pair
        fits = [(abs((r - l) - city_width), l, r) for i, l in enumerate(edges) for r in edges[i + 1:]
                if abs((r - l) - city_width) <= width_tolerance * city_width and ruled(l, r)]
        if fits:
            _, left, right = min(fits)
            city = (left, right)
            boxes = sorted([b for b in boxes if b[1] <= left or b[0] >= right] + [city])
    return BoxRow(top_rule=a0, bottom_rule=b0, boxes=boxes, city=city)


def estimate_skew(ink: np.ndarray, max_angle: float = 3.0, step: float = 0.05, strips: int = 48) -> float:
    """Skew in degrees (counter-clockwise positive) that makes the ink's rows sharpest.

    Coarse search over ±``max_angle`` then a fine one (``step``/5) around the best angle.
    """
    height, width = ink.shape
    strip_w = width // strips
    profiles = np.stack([ink[:, k * strip_w:(k + 1) * strip_w].sum(axis=1) for k in range(strips)]).astype(np.float64)
    centres = (np.arange(strips) + 0.5) * strip_w - width / 2

    def score(angle: float) -> float:
        # a line tilted counter-clockwise by `angle` rises to the right: y = y0 - x * tan(angle)
        shifts = np.rint(-centres * math.tan(math.radians(angle))).astype(int)
        pad = int(np.abs(shifts).max()) + 1
        total = np.zeros(height + 2 * pad)
        for k, shift in enumerate(shifts):
            total[pad - shift: pad - shift + height] += profiles[k]
        return float((total ** 2).sum())

    if not profiles.any():
        return 0.0  # no ink: nothing to straighten
    coarse = np.arange(-max_angle, max_angle + step / 2, step)
    best = max(coarse, key=score)
    fine = np.clip(np.arange(best - step, best + step + 1e-9, step / 5), -max_angle, max_angle)
    return float(max(fine, key=score))


def deskewed_rows(page: Image.Image, angle: float, top: int, bottom: int, max_skew: float = 3.0) -> np.ndarray:
    """Rows ``top:bottom`` of ``page`` rotated by ``-angle`` degrees about its centre (bilinear,
    white fill, greyscale): what ``page.convert("L").rotate(-angle)`` gives there (within one grey
    level), reading and computing only the page rows those depend on."""
    width, height = page.size
    theta = math.radians(max(abs(angle), abs(max_skew)))
    margin = math.ceil(width / 2 * math.sin(theta) + height / 2 * (1 - math.cos(theta))) + 2
    s0, s1 = max(0, top - margin), min(height, bottom + margin)
    source = np.asarray(page.crop((0, s0, width, s1)).convert("L"))
    matrix = cv2.getRotationMatrix2D((width / 2 - 0.5, height / 2 - 0.5), -angle, 1.0)
    matrix[:, 2] += matrix[:, 1] * s0  # source rows start at page row s0
    matrix[1, 2] -= top  # output rows start at page row top
    return cv2.warpAffine(source, matrix, (width, bottom - top), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_CONSTANT, borderValue=255)


def register_page(page: Image.Image, box: tuple[int, int, int, int] = CROP_BOX,
                  reference: Mapping[str, float] | None = None, max_shift: int = 200,
                  max_skew: float = 3.0, threshold: int = 128) -> tuple[np.ndarray, Registration]:
    """Deskew ``page`` and locate its box row. Returns the deskewed greyscale search band (page
    rows ``registration.band_top`` on, every column: wherever the box row is found within
    ``max_shift``, the shifted crop box lies inside it) and the registration (shift of the page
    relative to where ``reference`` puts the box lines)."""
    ref = {**REFERENCE, **(reference or {})}
    left, top, right, bottom = box
    y0, y1 = max(0, top - max_shift), min(page.height, bottom + max_shift)
    if y1 - y0 < 100:
        raise RegistrationError(f"page of {page.width}x{page.height} has no room for crop box {box}")
    region = np.asarray(page.crop((0, y0, page.width, y1)).convert("L"))
    angle = estimate_skew(region < threshold, max_angle=max_skew)
    if abs(angle) >= max_skew - 0.01:
        raise RegistrationError(f"skew {angle:+.2f} deg reaches the ±{max_skew} deg limit")
    if abs(angle) > 0.01:
        region = deskewed_rows(page, angle, y0, y1, max_skew)
    band = region < threshold
    city_width = ref["city_right"] - ref["city_left"]
    row = find_box_row(band, expected_top=top + ref["top_rule"] - y0,
                       box_height=ref["bottom_rule"] - ref["top_rule"], city_width=city_width)
    city_left, city_right = row.city_box
    dy = row.top_rule + y0 - (top + ref["top_rule"])
    dx = (city_left + city_right) / 2 - (left + (ref["city_left"] + ref["city_right"]) / 2)
    if abs(dy) > max_shift or abs(dx) > max_shift:
        raise RegistrationError(f"box row is shifted by ({dx:+.0f}, {dy:+.0f}) px, more than {max_shift} px")
    return region, Registration(angle=round(angle, 3), dx=int(round(dx)), dy=int(round(dy)),
                                top_rule=row.top_rule + y0, bottom_rule=row.bottom_rule + y0,
                                boxes=row.boxes, band_top=y0)


def crop_top_section(page: Image.Image, box: tuple[int, int, int, int] = CROP_BOX,
                     register: bool = True, reference: Mapping[str, float] | None = None,
                     max_shift: int = 200, max_skew: float = 3.0, threshold: int = 128,
                     blackout_name: bool = True) -> tuple[Image.Image, Registration | None]:
    """Cut the top section of a full SD19 page as a 1-bit image of the box's size.

    With ``register`` the page is deskewed and shifted so the printed boxes land where they
    are on the published crops (raises :class:`RegistrationError` when they are not found);
    without, the fixed box is cut as it is. ``blackout_name`` fills the NAME box (the box left
    of DATE) black, as the published crops do for privacy.
    """
    left, top, right, bottom = (int(v) for v in box)
    registration = None
    if register:
        band, registration = register_page(page, box, reference, max_shift, max_skew, threshold)
        left, right = left + registration.dx, right + registration.dx
        top, bottom = top + registration.dy - registration.band_top, bottom + registration.dy - registration.band_top
        gray = Image.fromarray(band)
        if blackout_name:
            gray = _blackout_name_box(gray, registration)
    else:
        gray = page.convert("L")
    canvas = Image.new("L", (right - left, bottom - top), 255)
    canvas.paste(gray.crop((max(left, 0), max(top, 0), min(right, gray.width), min(bottom, gray.height))),
                 (max(-left, 0), max(-top, 0)))
    binary = canvas.point(lambda v: 255 if v >= threshold else 0).convert("1", dither=Image.Dither.NONE)
    return binary, registration


def _blackout_name_box(gray: Image.Image, registration: Registration) -> Image.Image:
    boxes = sorted(registration.boxes)
    city = max(boxes, key=lambda b: b[1] - b[0])
    before = [b for b in boxes if b[1] < city[0]]
    if len(before) < 2:  # no NAME box left of the DATE box: nothing to hide
        return gray
    name_left, name_right = before[-2]
    out = gray.copy()
    top = registration.top_rule - registration.band_top  # ``gray`` is the band from ``band_top`` down
    out.paste(0, (name_left, top, name_right + 1, registration.bottom_rule - registration.band_top + 8))
    return out


def box_lines(crop: Image.Image) -> dict[str, float]:
    """Box-line positions on a crop (same keys as :data:`REFERENCE`), for checks and for
    measuring the reference on real crops."""
    ink = np.asarray(crop.convert("L")) < 128
    row = find_box_row(ink, expected_top=REFERENCE["top_rule"],
                       box_height=REFERENCE["bottom_rule"] - REFERENCE["top_rule"],
                       city_width=REFERENCE["city_right"] - REFERENCE["city_left"], width_tolerance=0.1)
    city_left, city_right = row.city_box
    return {"top_rule": float(row.top_rule), "bottom_rule": float(row.bottom_rule),
            "city_left": float(city_left), "city_right": float(city_right)}
