"""The form spec: the shipped specs load, the HSF constants derived from its spec keep today's
values, and a bad spec stops with the file and the key named."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from PIL import Image

from handwriting_pipeline.fields.charsets import CHARS, TYPE_NAMES
from handwriting_pipeline.fields.formspec import (
    FORMS_DIR,
    HSF_FORM,
    FormSpecError,
    hsf_form,
    load_form,
    shipped_forms,
)

#: today's literal values, before they were derived from conf/base/forms/hsf_top.yml
LETTERS = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
HSF_KEYS = ("DATE", "CITY", "STATE", "ZIP")
HSF_ALLOWED = {
    "DATE": "0123456789/-.,' " + LETTERS,
    "CITY": " .-'" + LETTERS,
    "STATE": " ." + LETTERS,
    "ZIP": "0123456789-",
}
HSF_WRITTEN = {
    "DATE": HSF_ALLOWED["DATE"],
    "CITY": HSF_ALLOWED["CITY"] + ",0123456789",
    "STATE": HSF_ALLOWED["STATE"] + ",",
    "ZIP": HSF_ALLOWED["ZIP"] + " ",
}


# --------------------------------------------------------------------------- shipped forms
def test_shipped_forms_load_and_are_named_after_their_file():
    forms = shipped_forms()
    assert {"hsf_top", "order_card"} <= set(forms)
    for name in forms:
        assert load_form(name).name == name


def test_a_spec_loads_by_path_too_and_is_read_once():
    path = FORMS_DIR / "order_card.yml"
    assert load_form(path) is load_form(str(path)) is load_form("order_card")


def test_order_card_layout():
    spec = load_form("order_card")
    assert spec.keys == ("ORDER_NO", "DATE", "AMOUNT", "PHONE", "CITY", "STATE", "ZIP")
    assert [line.fields for line in spec.lines] == [("ORDER_NO", "DATE"), ("AMOUNT", "PHONE"), ("CITY", "STATE", "ZIP")]
    assert spec.field("ORDER_NO").options.length == 8
    assert spec.line_of("PHONE").name == "PAYMENT"
    assert spec.page.crop is None and spec.page.area == (1700, 1100)


def test_hsf_spec_is_todays_layout():
    spec = hsf_form()
    assert spec.name == HSF_FORM == "hsf_top"
    assert spec.page.size == (2560, 3300) and spec.page.crop == (100, 300, 2560, 650)
    assert spec.page.area == (2460, 350) and spec.page.registration.method == "box_lines"
    assert [(line.name, line.fields) for line in spec.lines] == [("DATE", ("DATE",)), ("CSZ", ("CITY", "STATE", "ZIP"))]
    assert [f.type for f in spec.fields] == ["date", "us_city", "us_state", "us_zip"]


def test_derived_constants_equal_todays_literal_values():
    """fields.KEYS, ALLOWED_CHARS, WRITTEN_CHARS, the lines, the field reader's CITY/STATE/ZIP
    line and the template geometry come from the HSF spec: any drift shows here."""
    from handwriting_pipeline import fields
    from handwriting_pipeline.fieldreader.text import CSZ_KEYS
    from handwriting_pipeline.fields.schema import ALLOWED_CHARS, KEYS, WRITTEN_CHARS
    from handwriting_pipeline.forms.boxes import TEMPLATE_CSZ_BOX, TEMPLATE_DATE_BOX, TEMPLATE_SIZE
    from handwriting_pipeline.forms.lines import LINES
    from handwriting_pipeline.forms.registration import CROP_BOX

    assert KEYS == fields.KEYS == HSF_KEYS and isinstance(KEYS, tuple)
    assert ALLOWED_CHARS == fields.ALLOWED_CHARS == HSF_ALLOWED
    assert WRITTEN_CHARS == HSF_WRITTEN
    assert list(ALLOWED_CHARS) == list(WRITTEN_CHARS) == list(HSF_KEYS)
    assert LINES == ("DATE", "CSZ")
    assert CSZ_KEYS == ("CITY", "STATE", "ZIP")
    assert TEMPLATE_SIZE == (2460, 350)
    assert TEMPLATE_DATE_BOX == (770, 188, 1135, 295)
    assert TEMPLATE_CSZ_BOX == (1185, 188, 2143, 295)
    assert CROP_BOX == (100, 300, 2560, 650)


def test_every_type_name_has_its_characters():
    from handwriting_pipeline.fields.types import FIELD_TYPES

    assert set(TYPE_NAMES) == set(CHARS) == set(FIELD_TYPES)


# --------------------------------------------------------------------------- bad specs
def _hsf_data() -> dict:
    return yaml.safe_load((FORMS_DIR / "hsf_top.yml").read_text())


def _write(tmp_path: Path, data: dict, name: str = "my_form.yml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _error(tmp_path: Path, data: dict) -> str:
    path = _write(tmp_path, data)
    with pytest.raises(FormSpecError) as err:
        load_form(path)
    message = str(err.value)
    assert str(path) in message, message  # the file is named
    return message


def test_a_valid_copy_loads(tmp_path):
    assert load_form(_write(tmp_path, _hsf_data())).keys == HSF_KEYS


def test_unknown_field_type_names_file_and_key(tmp_path):
    data = _hsf_data()
    data["fields"][3]["type"] = "postcode"
    message = _error(tmp_path, data)
    assert "fields[3] (ZIP).type: unknown field type 'postcode'" in message
    assert "us_zip" in message  # the known types are listed


def test_line_box_outside_the_page_names_file_and_key(tmp_path):
    data = _hsf_data()
    data["lines"][1]["box"] = [1185, 188, 2600, 295]  # wider than the 2460 px crop
    assert "lines[1] (CSZ).box: [1185, 188, 2600, 295] lies outside the crop (2460x350)" in _error(tmp_path, data)
    data = _hsf_data()
    data["page"]["crop"] = [100, 300, 2700, 650]
    assert "page.crop: [100, 300, 2700, 650] lies outside the page (2560x3300)" in _error(tmp_path, data)


def test_duplicate_field_name_names_file_and_key(tmp_path):
    data = _hsf_data()
    data["fields"].append({"name": "CITY", "type": "text"})
    assert "fields[4] (CITY).name: two fields named 'CITY' (fields[1] and fields[4])" in _error(tmp_path, data)


def test_line_naming_an_undeclared_field(tmp_path):
    data = _hsf_data()
    data["lines"][0]["fields"] = ["DATE", "SIGNATURE"]
    assert "lines[0] (DATE).fields: 'SIGNATURE' is not a declared field" in _error(tmp_path, data)


def test_field_on_no_line(tmp_path):
    data = _hsf_data()
    data["fields"].append({"name": "PHONE", "type": "phone"})
    assert "fields[4] (PHONE): on no line" in _error(tmp_path, data)


def test_field_on_two_lines(tmp_path):
    data = _hsf_data()
    data["lines"][0]["fields"] = ["DATE", "ZIP"]
    assert "lines[1] (CSZ).fields: 'ZIP' is on two lines (DATE and CSZ)" in _error(tmp_path, data)


def test_unknown_key_is_named(tmp_path):
    data = _hsf_data()
    data["lines"][1]["bx"] = [0, 0, 1, 1]
    assert "lines[1] (CSZ).bx: Extra inputs are not permitted" in _error(tmp_path, data)
    data = _hsf_data()
    data["page"]["registration"] = {"method": "magic"}
    assert "page.registration: Input tag 'magic'" in _error(tmp_path, data)
    data["page"]["registration"] = {"method": "features"}
    assert "page.registration.template: Field required" in _error(tmp_path, data)


def test_bad_box_and_options_are_named(tmp_path):
    data = _hsf_data()
    data["lines"][0]["box"] = [770, 295, 1135, 188]
    assert "lines[0] (DATE).box" in _error(tmp_path, data)
    data = _hsf_data()
    data["fields"][0]["digits"] = {"length": 8}
    assert "fields[0] (DATE).digits: options of type 'digits' on a field of type 'date'" in _error(tmp_path, data)
    data = _hsf_data()
    data["fields"].append({"name": "SIZE", "type": "choice"})
    data["lines"][0]["fields"] = ["DATE", "SIZE"]
    assert "fields[4] (SIZE).choice: a 'choice' field needs its options" in _error(tmp_path, data)
    data["fields"][4]["choice"] = {"options": ["S", "M"], "multiple": True}
    assert "fields[4] (SIZE).choice.multiple: Extra inputs are not permitted" in _error(tmp_path, data)


def test_unknown_form_name_lists_the_shipped_forms():
    with pytest.raises(FormSpecError, match="unknown form 'nist_full'; shipped forms .*hsf_top, order_card"):
        load_form("nist_full")
    with pytest.raises(FormSpecError, match="no such form spec file"):
        load_form("/nowhere/form.yml")


def test_a_features_template_is_found_next_to_its_spec_and_a_missing_one_is_named(tmp_path):
    from handwriting_pipeline.forms.spec import register

    data = _hsf_data()
    data["page"]["registration"] = {"method": "features", "template": "blank_hsf.png"}
    spec = load_form(_write(tmp_path, data))
    assert spec.page.registration.template == "blank_hsf.png"
    assert spec.template_path() == tmp_path / "blank_hsf.png"  # relative to the spec file
    with pytest.raises(FileNotFoundError, match="blank_hsf.png: the form spec's registration template"):
        register(Image.new("L", (2560, 3300), 255), spec)


def test_a_run_reads_any_valid_form_and_stops_on_a_bad_one_with_a_reason(tmp_path):
    from handwriting_pipeline.fields.formspec import active_form

    assert active_form(None).name == active_form("hsf_top").name == "hsf_top"
    assert active_form("order_card").keys == ("ORDER_NO", "DATE", "AMOUNT", "PHONE", "CITY", "STATE", "ZIP")
    with pytest.raises(FormSpecError, match="unknown form 'nope'"):
        active_form("nope")
    data = yaml.safe_load((FORMS_DIR / "order_card.yml").read_text())
    data["fields"][0]["type"] = "postcode"
    with pytest.raises(FormSpecError, match=r"fields\[0\] \(ORDER_NO\)\.type: unknown field type 'postcode'"):
        active_form(_write(tmp_path, data))


def test_the_hsf_layout_is_asked_by_layout_never_by_name(tmp_path):
    """Shared code asks ``is_hsf_layout``: a copy of the HSF spec under another name has its
    layout; the order card, or a field's type changed, has not."""
    from handwriting_pipeline.fields.formspec import is_hsf_layout

    assert is_hsf_layout(None) and is_hsf_layout(load_form("hsf_top"))
    assert not is_hsf_layout(load_form("order_card"))
    data = _hsf_data()
    data["name"] = "our_copy_of_hsf"
    assert is_hsf_layout(load_form(_write(tmp_path, data, "copy.yml")))
    data["fields"][0]["type"] = "text"
    assert not is_hsf_layout(load_form(_write(tmp_path, data, "changed.yml")))
