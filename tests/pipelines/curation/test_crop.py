"""Cropping and registration of full SD19 pages (crop.py) on the real shared page."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from handwriting_pipeline.forms.registration import (
    REFERENCE,
    RegistrationError,
    box_lines,
    crop_top_section,
    estimate_skew,
)


@pytest.fixture(scope="module")
def page(shared_page) -> Image.Image:
    with Image.open(shared_page) as img:
        img.load()
        return img.copy()


@pytest.fixture(scope="module")
def page_crop(page):
    return crop_top_section(page)


@pytest.fixture(scope="module")
def real_lines(shared_validation) -> dict[str, np.ndarray]:
    """Box-line positions on 40 real published crops."""
    names = sorted(p for p in shared_validation.glob("*.png"))[:40]
    lines = [box_lines(Image.open(p)) for p in names]
    return {k: np.array([line[k] for line in lines]) for k in REFERENCE}


def test_crop_has_the_published_size_and_mode(page_crop):
    crop, registration = page_crop
    assert crop.size == (2460, 350)
    assert crop.mode == "1"
    assert registration is not None and len(registration.boxes) == 3


def test_boxes_land_where_they_are_on_real_crops(page_crop, real_lines):
    """The sample page is a template variant printed ~60 px lower than the published forms;
    after registration its box lines sit where the real crops have them."""
    lines = box_lines(page_crop[0])
    for key, real in real_lines.items():
        low, high = np.percentile(real, [5, 95])
        assert low - 3 <= lines[key] <= high + 3, (key, lines[key], low, high)
        assert abs(lines[key] - np.median(real)) <= 15, (key, lines[key], np.median(real))


def test_fixed_crop_without_registration_is_off(page):
    """Without registration the same page's boxes are far from the published position (the
    reason registration exists)."""
    crop, registration = crop_top_section(page, register=False)
    assert registration is None and crop.size == (2460, 350)
    assert abs(box_lines(crop)["top_rule"] - REFERENCE["top_rule"]) > 40


def test_name_box_is_blacked_out(page_crop):
    crop, registration = page_crop
    ink = ~np.asarray(crop)
    top, bottom = int(REFERENCE["top_rule"]), int(REFERENCE["bottom_rule"])
    name_left, name_right = sorted(registration.boxes)[0]
    x0 = name_left - registration.dx - 100 + 10
    assert ink[top + 10: bottom - 5, x0: x0 + 400].mean() > 0.95  # NAME box filled
    date_left, date_right = sorted(registration.boxes)[1]
    d0 = date_left - registration.dx - 100 + 20
    assert ink[top + 15: bottom - 10, d0: d0 + 250].mean() < 0.05  # DATE box still empty


@pytest.mark.parametrize("angle, dx, dy", [(1.5, 40, -30), (-2.0, -60, 70), (0.6, 0, 0), (0.0, 25, 45)])
def test_shifted_and_rotated_page_gives_the_same_crop(page, page_crop, angle, dx, dy):
    moved = page.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=255, translate=(dx, dy))
    crop, registration = crop_top_section(moved)
    reference_crop = page_crop[0]
    ref_lines, lines = box_lines(reference_crop), box_lines(crop)
    for key in REFERENCE:
        assert abs(lines[key] - ref_lines[key]) <= 3, (key, lines[key], ref_lines[key])
    differing = (np.asarray(crop) != np.asarray(reference_crop)).mean()
    assert differing < 0.05, differing
    assert abs(registration.angle - (page_crop[1].angle + angle)) < 0.3


def test_skew_estimate_on_a_rotated_page(page):
    band = np.asarray(page.rotate(1.2, fillcolor=255).convert("L").crop((0, 200, 2560, 900))) < 128
    base = np.asarray(page.convert("L").crop((0, 200, 2560, 900))) < 128
    assert abs(estimate_skew(band) - estimate_skew(base) - 1.2) < 0.15


def test_registration_fails_clearly_on_a_page_without_boxes():
    blank = Image.new("L", (2560, 3300), 255)
    with pytest.raises(RegistrationError, match="no long horizontal rules"):
        crop_top_section(blank)


def test_registration_fails_when_the_box_row_is_too_far(page):
    far = page.rotate(0, fillcolor=255, translate=(0, 400))
    with pytest.raises(RegistrationError):
        crop_top_section(far, max_shift=150)


def test_handwriting_touching_the_box_lines_does_not_break_registration(page, page_crop):
    """Strokes spanning the CITY box's height (like a tall '1' or 'l') are not box edges."""
    from PIL import ImageDraw

    marked = page.copy()
    draw = ImageDraw.Draw(marked)
    city_left, city_right = sorted(page_crop[1].boxes, key=lambda b: b[1] - b[0])[-1]
    top, bottom = page_crop[1].top_rule, page_crop[1].bottom_rule
    for x in (city_left + 300, city_left + 620):
        draw.rectangle((x, top - 5, x + 6, bottom + 8), fill=0)
    crop, registration = crop_top_section(marked)
    assert box_lines(crop)["city_left"] == pytest.approx(box_lines(page_crop[0])["city_left"], abs=2)
    assert abs(registration.dx - page_crop[1].dx) <= 1 and abs(registration.dy - page_crop[1].dy) <= 1


def _rotated_whole_page_crop(page: Image.Image, registration, box=(100, 300, 2560, 650), threshold=128):
    """How the crop was cut before registration rotated only the band: the whole page rotated with PIL, the NAME box
    blacked out, the shifted box cut and thresholded."""
    grey = page.convert("L")
    if abs(registration.angle) > 0.01:
        grey = grey.rotate(-registration.angle, resample=Image.Resampling.BILINEAR, fillcolor=255)
    boxes = sorted(registration.boxes)
    city = max(boxes, key=lambda b: b[1] - b[0])
    before = [b for b in boxes if b[1] < city[0]]
    if len(before) >= 2:
        grey = grey.copy()
        grey.paste(0, (before[-2][0], registration.top_rule, before[-2][1] + 1, registration.bottom_rule + 8))
    left, top = box[0] + registration.dx, box[1] + registration.dy
    right, bottom = box[2] + registration.dx, box[3] + registration.dy
    canvas = Image.new("L", (right - left, bottom - top), 255)  # white beyond the page's edges
    canvas.paste(grey.crop((max(left, 0), max(top, 0), min(right, grey.width), min(bottom, grey.height))),
                 (max(-left, 0), max(-top, 0)))
    return np.asarray(canvas) < threshold


def test_only_the_band_is_rotated_and_the_crops_are_todays(page, synthetic_page_crop):
    """Registration rotates only the rows it needs (OpenCV); the shared page and skewed,
    shifted synthetic pages crop as the whole-page PIL rotation did (same shift, a handful of
    pixels differ at stroke edges)."""
    synthetic = Image.new("L", (2560, 3300), 255)
    synthetic.paste(synthetic_page_crop.convert("L"), (100, 300))
    pages = [page, synthetic, *(synthetic.rotate(angle, resample=Image.Resampling.BILINEAR, fillcolor=255,
                                                 translate=shift) for angle, shift in ((1.2, (20, -40)), (-2.1, (-35, 15))))]
    for candidate in pages:
        crop, registration = crop_top_section(candidate)
        ink = np.asarray(crop.convert("L")) < 128
        assert (ink != _rotated_whole_page_crop(candidate, registration)).mean() < 0.001
    assert abs(crop_top_section(pages[2])[1].angle - 1.2) < 0.1


@pytest.fixture(scope="module")
def synthetic_page_crop():
    from handwriting_pipeline.synthetic.generator import SyntheticFormGenerator

    return SyntheticFormGenerator(seed=3, blank_rate=0.0, empty_field_rate=0.0).sample(0)[0]
