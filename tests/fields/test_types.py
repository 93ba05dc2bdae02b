"""The field type registry: every registered type validates and normalizes a good and a bad
value, brings its characters, and the US types agree with the HSF pipeline's rules."""

from __future__ import annotations

import pytest

from handwriting_pipeline.fields.formspec import ChoiceOptions, DigitsOptions, hsf_form, load_form
from handwriting_pipeline.fields.normalize import normalize_record
from handwriting_pipeline.fields.schema import ALLOWED_CHARS, WRITTEN_CHARS
from handwriting_pipeline.fields.types import FIELD_TYPES, FieldType, field_type, form_context, type_of

#: type -> (options, good value, its normalized value, bad value)
CASES = {
    "date": (None, "Aug. 28, 1989", "1989-08-28", "Aug 8"),
    "us_state": (None, "Calif.", "CA", "Atlantis"),
    "us_zip": (None, "30134-1234", "30134", "3013"),
    "us_city": (None, "DouglasVILLE", "Douglasville", "<b>"),
    "digits": (DigitsOptions(length=8), "1234 5678", "12345678", "1234567"),
    "amount": (None, "$1,234.5", "1234.50", "12 dollars"),
    "phone": (None, "(404) 555-0123", "+14045550123", "555-0123"),
    "text": (None, "  12  Main St. ", "12 Main St.", ""),
    "choice": (ChoiceOptions(options=("Small", "Large")), "large", "Large", "medium"),
    "checkbox": (None, "X", "true", "maybe"),
}


def test_every_registered_type_has_a_case():
    assert set(CASES) == set(FIELD_TYPES)


@pytest.mark.parametrize("name", list(FIELD_TYPES))
def test_type_validates_and_normalizes(name):
    options, good, normalized, bad = CASES[name]
    kind = field_type(name, options)
    assert isinstance(kind, FieldType) and kind.name == name
    assert kind.validate(good), good
    assert kind.normalize(good) == normalized
    assert not kind.validate(bad), bad
    assert kind.normalize(bad) is None


@pytest.mark.parametrize("name", list(FIELD_TYPES))
def test_type_characters(name):
    kind = field_type(name, CASES[name][0])
    assert kind.allowed_chars and set(kind.allowed_chars) <= set(kind.written_chars)
    assert not any(c in kind.written_chars for c in "<>\n\t\x00")


@pytest.mark.parametrize("name", ["date", "us_city", "us_state", "us_zip", "digits", "amount", "phone", "text", "choice"])
def test_missing_is_not_a_value(name):
    kind = field_type(name, CASES[name][0])
    for missing in (None, "", "None", float("nan")):
        assert not kind.validate(missing)
        assert kind.normalize(missing) is None


def test_an_empty_checkbox_is_unchecked():
    assert field_type("checkbox").validate("") and field_type("checkbox").normalize(None) == "false"


def test_unknown_type_and_wrong_options():
    with pytest.raises(KeyError, match="Unknown field type 'zip'. Known field types: date, us_state"):
        field_type("zip")
    with pytest.raises(TypeError, match="takes DigitsOptions"):
        field_type("digits", ChoiceOptions(options=("a",)))


def test_hsf_field_characters_are_the_types():
    spec = hsf_form()
    for f in spec.fields:
        assert type_of(f).allowed_chars == ALLOWED_CHARS[f.name]
        assert type_of(f).written_chars == WRITTEN_CHARS[f.name]


def test_us_types_agree_with_normalize_record():
    record = {"DATE": "8/28/89", "CITY": "DouglasVILLE", "STATE": "Ga.", "ZIP": "30134"}
    expected = normalize_record(record)
    spec = hsf_form()
    context = form_context(spec, record)
    got = {f.name: type_of(f).normalize(record[f.name], context) for f in spec.fields}
    assert got == {"DATE": expected["DATE_iso"], "CITY": expected["CITY_name"], "STATE": expected["STATE_code"],
                   "ZIP": expected["ZIP5"]}
    assert type_of(spec.field("CITY")).normalize("douglasvile", {"us_state": "GA", "us_zip": "30134"}) == "Douglasville"
    assert type_of(spec.field("CITY")).normalize("douglasvile") == "Douglasvile"  # no ZIP: title-cased only


def test_candidates():
    assert "GA" in field_type("us_state").candidates() and len(field_type("us_state").candidates()) == 52
    assert "30134" in field_type("us_zip").candidates({"us_city": "Douglasville", "us_state": "GA"})
    assert len(field_type("us_zip").candidates()) > 40_000
    assert field_type("us_city").candidates({"us_zip": "30134", "us_state": "GA"}) == ["Douglasville"]
    assert field_type("choice", CASES["choice"][0]).candidates() == ["Small", "Large"]
    for name in ("date", "digits", "amount", "phone", "text", "checkbox"):
        assert field_type(name, CASES[name][0]).candidates() is None


def test_order_card_types():
    spec = load_form("order_card")
    order = type_of(spec.field("ORDER_NO"))
    assert order.validate("12345678") and not order.validate("123456789")
    assert type_of(spec.field("PHONE")).normalize("+1 404 555 0123") == "+14045550123"
    assert type_of(spec.field("AMOUNT")).normalize("12") == "12.00"
