"""Synthetic forms of any form spec: every registered field type is sampled and rendered, the
labels are valid values of their types, the shipped order card renders deterministically with
its writing inside its line boxes, and the HSF spec renders through the same generator."""

from __future__ import annotations

import pickle

import numpy as np
import pytest
from PIL import Image

from handwriting_pipeline.fields import NONE, state_code
from handwriting_pipeline.fields.formspec import (
    AmountOptions,
    ChoiceOptions,
    DigitsOptions,
    PhoneOptions,
    TextOptions,
    load_form,
    parse_form,
)
from handwriting_pipeline.fields.types import FIELD_TYPES, field_type, form_context, type_of
from handwriting_pipeline.synthetic import SpecFormGenerator
from handwriting_pipeline.synthetic.glyphs import font_glyphs, handwriting_font_paths
from handwriting_pipeline.synthetic.values import VALUE_SAMPLERS, sample_value

#: options a one-field spec gives each type (a choice needs its options)
OPTIONS = {
    "digits": {"digits": {"length": 6}},
    "choice": {"choice": {"options": ["Small", "Medium", "Extra large"]}},
}
#: option variants the samplers must honour
VARIANTS = [
    ("digits", DigitsOptions(length=8)), ("digits", DigitsOptions(min_length=3, max_length=12)),
    ("digits", DigitsOptions(max_length=2)), ("amount", AmountOptions(decimals=0)),
    ("amount", AmountOptions(decimals=3)), ("phone", PhoneOptions(country_code="44", national_digits=7)),
    ("text", TextOptions(max_length=6)), ("choice", ChoiceOptions(options=("Yes", "No"))),
] + [(name, None) for name in FIELD_TYPES if name != "choice"]
# a part's interior: its outer box (after the page skew) minus the box line and the skew's drift
INSET = 26
MIN_FIELD_PIXELS = 150
QUIET = {"salt_noise": 0}  # no scanner specks, so any ink inside a box is writing


def _ink(image: Image.Image) -> np.ndarray:
    return ~np.asarray(image.convert("1"), dtype=bool)


def _interior_ink(ink: np.ndarray, box: tuple[int, int, int, int]) -> int:
    x0, y0, x1, y1 = box
    return int(ink[y0 + INSET : y1 - INSET, x0 + INSET : x1 - INSET].sum())


def _one_field_spec(type_name: str):
    return parse_form({
        "name": f"one_{type_name}", "title": f"One {type_name} field",
        "page": {"size": [900, 260]},
        "lines": [{"name": "LINE", "box": [40, 110, 860, 230], "fields": ["F"]}],
        "fields": [{"name": "F", "type": type_name, "title": type_name, **OPTIONS.get(type_name, {})}],
    })


@pytest.fixture(scope="module")
def card():
    return SpecFormGenerator(load_form("order_card"), seed=0, **QUIET)


def test_every_registered_type_has_a_sampler():
    assert set(VALUE_SAMPLERS) == set(FIELD_TYPES)


@pytest.mark.parametrize(("name", "options"), VARIANTS, ids=lambda v: str(v) if isinstance(v, str) else repr(v))
def test_sampled_values_are_values_of_their_type_and_writable(name, options):
    kind = field_type(name, options)
    fonts = [font_glyphs(p) for p in handwriting_font_paths()]
    rng = np.random.default_rng(3)
    values = [sample_value(rng, kind, {}) for _ in range(150)]
    written = [v for v in values if v != NONE]
    assert written, name
    bad = [v for v in written if not (kind.validate(v) or kind.normalize(v) is not None)]
    assert not bad, bad[:5]
    chars = {c for v in written for c in v} - {" "}
    assert all(any(f.has(c) for f in fonts) for c in chars), sorted(c for c in chars if not any(f.has(c) for f in fonts))


@pytest.mark.parametrize("name", list(FIELD_TYPES))
def test_a_one_field_form_of_every_type_renders_its_value(name):
    spec = _one_field_spec(name)
    gen = SpecFormGenerator(spec, seed=1, blank_rate=0.0, empty_field_rate=0.0, **QUIET)
    kind = type_of(spec.field("F"))
    for i in range(3):
        form = gen.render(i)
        assert form.image.size == spec.page.area and form.image.mode == "1"
        assert list(form.fields) == ["F"]
        value = form.fields["F"]
        assert value != NONE or name == "checkbox"  # only a tick box is left blank by its sampler
        assert kind.validate(value) or kind.normalize(value, form_context(spec, form.fields)) is not None
        ink = _interior_ink(_ink(form.image), form.parts["F"])
        assert (ink >= MIN_FIELD_PIXELS) if value != NONE else (ink == 0), (value, ink)


def test_order_card_labels_layout_and_ink(card):
    spec = card.spec
    for i in range(4):
        form = card.render(i)
        assert form.image.size == spec.page.area == (1700, 1100)
        assert tuple(form.fields) == spec.keys
        assert set(form.boxes) == set(spec.line_names) and set(form.parts) == set(spec.keys)
        ink = _ink(form.image)
        width, height = form.image.size
        for box in [*form.boxes.values(), *form.parts.values()]:
            assert 0 <= box[0] < box[2] <= width and 0 <= box[1] < box[3] <= height, box
        context = form_context(spec, form.fields)
        for key, value in form.fields.items():
            if value == NONE:
                continue
            kind = type_of(spec.field(key))
            assert kind.validate(value) or kind.normalize(value, context) is not None, (key, value)
            assert _interior_ink(ink, form.parts[key]) >= MIN_FIELD_PIXELS, (i, key, value)
            assert _interior_ink(ink, form.boxes[spec.line_of(key).name]) >= MIN_FIELD_PIXELS


def test_city_state_and_zip_of_a_form_come_from_one_place(card):
    for i in range(6):
        form = card.render(i)
        zip5, _, code = form.place
        if form.fields["STATE"] != NONE:
            assert state_code(form.fields["STATE"]) == code
        if form.fields["ZIP"] != NONE:
            assert form.fields["ZIP"][:5] == zip5


def test_same_seed_same_pixels_other_index_other_form(card):
    other = SpecFormGenerator(load_form("order_card"), seed=0, **QUIET)
    for i in (2, 0):
        image, fields = other.sample(i)
        ref_image, ref_fields = card.sample(i)
        assert fields == ref_fields and image.tobytes() == ref_image.tobytes()
    assert card.sample(0)[0].tobytes() != card.sample(1)[0].tobytes()
    copy = pickle.loads(pickle.dumps(card))  # what a worker process gets
    assert copy.sample(3)[0].tobytes() == card.sample(3)[0].tobytes()


def test_blank_forms_have_no_writing_in_their_boxes():
    gen = SpecFormGenerator("order_card", seed=2, blank_rate=1.0, **QUIET)
    form = gen.render(0)
    assert set(form.fields.values()) == {NONE}
    ink = _ink(form.image)
    assert all(_interior_ink(ink, box) == 0 for box in form.parts.values())
    assert ink.sum() > 5000  # the printed title, labels and box lines


def test_generate_streams_in_order(card):
    got = list(card.generate(4, start=5, workers=1))
    assert [name for name, _, _ in got] == [f"synthetic_order_card_0_{i:07d}.png" for i in range(5, 9)]
    assert got[1][2] == card.sample(6)[1]


def test_the_hsf_spec_renders_through_the_same_generator():
    spec = load_form("hsf_top")
    image, fields = SpecFormGenerator(spec, seed=0).sample(0)
    assert image.size == spec.page.area == (2460, 350)
    assert tuple(fields) == spec.keys


def test_lines_without_a_box_are_placed_below_the_others():
    spec = parse_form({
        "name": "boxless", "title": "No boxes", "page": {"size": [1000, 700]},
        "lines": [{"name": "A", "fields": ["NAME"]}, {"name": "B", "fields": ["SIZE", "PAID"]}],
        "fields": [{"name": "NAME", "type": "text"}, {"name": "SIZE", "type": "choice", "choice": {"options": ["S", "M"]}},
                   {"name": "PAID", "type": "checkbox"}],
    })
    form = SpecFormGenerator(spec, seed=0).render(0)
    a, b = form.boxes["A"], form.boxes["B"]
    assert a[3] < b[1] and b[3] <= 700
    assert form.parts["SIZE"][2] <= form.parts["PAID"][0] + 2


def test_unknown_options_are_refused():
    with pytest.raises(ValueError, match="unknown SpecFormGenerator options"):
        SpecFormGenerator("order_card", rotation=1.0)
