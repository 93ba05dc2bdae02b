"""Synthetic form generator: determinism, streaming, labels that match the ink, real places."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from handwriting_pipeline.fields import (
    KEYS,
    NONE,
    is_plausible_date,
    is_valid_zip,
    state_code,
    zip_consistent,
    zip_places,
)
from handwriting_pipeline.synthetic import SyntheticFormGenerator
from handwriting_pipeline.synthetic.values import sample_date, sample_place

# interior of a box: its outer rectangle (after the page skew) minus lines and skew drift
INSET = 20
# a few scanner specks may fall in a box; handwriting of even one short field is far more ink
MAX_NOISE_PIXELS = 60
MIN_FIELD_PIXELS = 250


@pytest.fixture(scope="module")
def gen() -> SyntheticFormGenerator:
    return SyntheticFormGenerator(seed=0)


@pytest.fixture(scope="module")
def gappy() -> SyntheticFormGenerator:
    """Many blank forms and empty fields, to check the "None" side of the labels."""
    return SyntheticFormGenerator(seed=7, blank_rate=0.25, empty_field_rate=0.3)


def _ink(image: Image.Image) -> np.ndarray:
    return ~np.asarray(image.convert("1"), dtype=bool)


def _interior_ink(ink: np.ndarray, box: tuple[int, int, int, int]) -> int:
    x0, y0, x1, y1 = box
    return int(ink[max(0, y0 + INSET) : y1 - INSET, max(0, x0 + INSET) : x1 - INSET].sum())


def test_image_size_mode_and_fields(gen):
    image, fields = gen.sample(0)
    assert image.mode == "1"
    assert image.size == (2460, 350)
    assert list(fields) == list(KEYS)
    assert all(isinstance(v, str) and v for v in fields.values())


def test_same_seed_same_images_and_labels_in_any_order(gen):
    other = SyntheticFormGenerator(seed=0)
    later = [other.sample(i) for i in (3, 1, 2)]
    for i, (image, fields) in zip((3, 1, 2), later):
        ref_image, ref_fields = gen.sample(i)
        assert fields == ref_fields
        assert image.tobytes() == ref_image.tobytes()


def test_different_seeds_differ(gen):
    other = SyntheticFormGenerator(seed=1)
    pairs = [(gen.sample(i), other.sample(i)) for i in range(3)]
    assert all(a[0].tobytes() != b[0].tobytes() for a, b in pairs)
    assert any(a[1] != b[1] for a, b in pairs)


def test_generate_streams_the_same_forms_as_sample_in_order(gen):
    expected = [(gen.file_name(i), *gen.sample(i)) for i in range(5, 11)]
    for workers in (1, 2):
        got = list(gen.generate(6, start=5, workers=workers))
        assert [g[0] for g in got] == [e[0] for e in expected]
        assert [g[2] for g in got] == [e[2] for e in expected]
        assert [g[1].tobytes() for g in got] == [e[1].tobytes() for e in expected]
    assert len({g[0] for g in got}) == 6 and got[0][0].endswith("_0000005.png")


def test_labels_match_the_ink_in_the_boxes(gappy):
    seen = {"blank": 0, "empty_date": 0, "filled": 0}
    for i in range(36):
        form = gappy.render(i)
        ink = _ink(form.image)
        date_ink = _interior_ink(ink, form.boxes["DATE"])
        csz_ink = _interior_ink(ink, form.boxes["CITY_STATE_ZIP"])
        has_date = form.fields["DATE"] != NONE
        has_csz = any(form.fields[k] != NONE for k in ("CITY", "STATE", "ZIP"))
        msg = f"form {i} {form.fields}: date ink {date_ink}, city/state/zip ink {csz_ink}"
        assert (date_ink >= MIN_FIELD_PIXELS) if has_date else (date_ink <= MAX_NOISE_PIXELS), msg
        assert (csz_ink >= MIN_FIELD_PIXELS) if has_csz else (csz_ink <= MAX_NOISE_PIXELS), msg
        if all(v == NONE for v in form.fields.values()):
            seen["blank"] += 1
        elif not has_date:
            seen["empty_date"] += 1
        else:
            seen["filled"] += 1
    assert all(seen.values()), f"expected blank, empty-date and filled forms among 36: {seen}"


def test_blank_forms_have_no_handwriting():
    blank = SyntheticFormGenerator(seed=3, blank_rate=1.0, salt_noise=0)
    form = blank.render(0)
    assert form.fields == {k: NONE for k in KEYS}
    ink = _ink(form.image)
    assert _interior_ink(ink, form.boxes["DATE"]) == 0
    assert _interior_ink(ink, form.boxes["CITY_STATE_ZIP"]) == 0
    # the printed form itself is there: header, labels, box lines, black NAME box, sentence
    assert ink.mean() > 0.05


def test_generated_places_exist_together_in_the_gazetteer(gen):
    rng = np.random.default_rng(0)
    styles = set()
    for _ in range(300):
        city, state, zip_code, (zip5, _, code) = sample_place(rng)
        fields = {"DATE": NONE, "CITY": city, "STATE": state, "ZIP": zip_code}
        assert is_valid_zip(zip_code) and zip_code.startswith(zip5)
        assert state_code(state) == code, state
        assert zip_consistent(fields) is True, fields
        styles.add("name" if len(state.replace(".", "")) > 2 and state.isalpha() else state.strip(".")[:2].isupper())
    assert len(styles) >= 2  # codes and names, upper and mixed case
    for i in range(4):
        form = gen.render(i)
        if form.fields["ZIP"] != NONE:
            assert zip_places(form.fields["ZIP"]), form.fields
            assert zip_consistent(form.fields) is not False, form.fields


def _plausible(date_text: str) -> bool:
    """fields.is_plausible_date, also for styles it does not parse: "8 28 89", "8/28/'89", "28 Aug 1989"."""
    text = date_text.replace("'", "")
    m = re.fullmatch(r"(\d{1,2}) ([A-Za-z]+\.?) (\d{2,4})", text)
    if m:
        text = f"{m.group(2)} {m.group(1)}, {m.group(3)}"
    text = re.sub(r"^(\d{1,2}) (\d{1,2}) (\d{2,4})$", r"\1/\2/\3", text)
    return is_plausible_date(text)


def test_dates_are_plausible_and_varied():
    rng = np.random.default_rng(1)
    dates = [sample_date(rng) for _ in range(400)]
    assert all(_plausible(d) for d in dates), [d for d in dates if not _plausible(d)]
    assert any("/" in d for d in dates) and any("-" in d for d in dates)
    assert any(any(c.isalpha() for c in d) for d in dates)
    assert sum(d.endswith("89") for d in dates) > 300


def test_unknown_option_is_rejected():
    with pytest.raises(ValueError, match="blank_rat"):
        SyntheticFormGenerator(seed=0, blank_rat=0.1)


def _date_box_top(ink: np.ndarray) -> int | None:
    """Row of the DATE box's top line: first row below the labels with a long run of ink."""
    rows = ink[120:260, 790:1060].sum(axis=1)
    hits = np.nonzero(rows > 0.8 * ink[:, 790:1060].shape[1])[0]
    return int(hits[0]) + 120 if len(hits) else None


def test_layout_matches_real_crops(gen, shared_validation: Path):
    """The DATE box sits where it sits on real crops (same detector on both)."""
    lines = (shared_validation / "metadata.jsonl").read_text().splitlines()[:25]
    real = [_date_box_top(_ink(Image.open(shared_validation / json.loads(l)["file_name"]))) for l in lines]
    real = [r for r in real if r is not None]
    synthetic = [_date_box_top(_ink(gen.sample(i)[0])) for i in range(12)]
    synthetic = [s for s in synthetic if s is not None]
    assert len(real) >= 10 and len(synthetic) >= 8
    assert min(real) - 5 <= np.median(synthetic) <= max(real) + 5, (real, synthetic)


def test_pickles_as_seed_and_options_for_dataloader_workers(gen):
    import pickle

    copy = pickle.loads(pickle.dumps(gen))
    assert copy.seed == gen.seed and copy.options == gen.options
    assert copy.sample(4)[0].tobytes() == gen.sample(4)[0].tobytes()


def test_works_with_the_pypi_fonts_only():
    """Debian fonts-* are optional: without them the fontpkg-* wheels are enough."""
    only_wheels = SyntheticFormGenerator(seed=0, use_system_fonts=False)
    assert only_wheels.font_paths and all("fontpkg_" in p for p in only_wheels.font_paths)
    image, fields = only_wheels.sample(0)
    assert image.size == (2460, 350) and set(fields) == set(KEYS)
