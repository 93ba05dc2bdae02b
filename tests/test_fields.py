"""Shared field logic: key normalisation, validators and Donut token conversion."""

import pytest

from handwriting_pipeline.donut.grammar import json2token, token2json
from handwriting_pipeline.fields import (
    KEYS,
    NONE,
    clean_fields,
    is_plausible_date,
    is_valid_state,
    is_valid_zip,
    move_state_digits_to_zip,
    normalize_key,
    state_code,
    zip_consistent,
)


@pytest.mark.parametrize(
    "raw, key",
    [
        ("DATE", "DATE"), (".DATE", "DATE"), ("DATE.", "DATE"), ("·DATE", "DATE"), ("-DATE", "DATE"),
        ("DATE®", "DATE"), ("_ZIP", "ZIP"), (".ZIP", "ZIP"), ("E ZIP", "ZIP"), ("STATE\nZIP", "ZIP"),
        ("CITY", "CITY"), ("city:", "CITY"), ("STATE", "STATE"), ("NAME", None), ("NAME.", None),
        ("", None), ("This sample of handwriting", None),
    ],
)
def test_normalize_key_maps_the_noisy_keys_ocr_services_return(raw, key):
    assert normalize_key(raw) == key


def test_clean_fields_keeps_text_as_written_and_fills_none():
    out = clean_fields({"date": " 8/28/89 ", "CITY": "DouglasVILLE", "STATE": "", "extra": 1})
    assert out == {"DATE": "8/28/89", "CITY": "DouglasVILLE", "STATE": NONE, "ZIP": NONE}
    assert list(out) == list(KEYS)


@pytest.mark.parametrize("value", ["KY", "Ky.", "ky", "Kentucky", "K.Y.", "Calif.", "new york", "N.y"])
def test_valid_states_in_any_case_and_punctuation(value):
    assert is_valid_state(value)


@pytest.mark.parametrize("value", ["XX", "None", "", "Murray", "42171"])
def test_invalid_states(value):
    assert not is_valid_state(value)


def test_state_code_and_zip_date_validators():
    assert state_code("Wi") == "WI" and state_code("Wisconsin") == "WI"
    assert is_valid_zip("42171") and is_valid_zip("42171-1234")
    assert not is_valid_zip("4217") and not is_valid_zip("None")
    for ok in ["8/28/89", "08-28-1989", "Aug. 28, 1989", "8.28.89", "June 30, 1989", "8 28 89",
               "Sept 9, '89", "28 Aug 89", "AUGUST 28,1989"]:
        assert is_plausible_date(ok), ok
    for bad in ["13/45/89", "None", "hello", "Murray 42071"]:
        assert not is_plausible_date(bad), bad


def test_gazetteer_consistency_from_offline_zipcodes():
    assert zip_consistent({"CITY": "Murray", "STATE": "KY", "ZIP": "42071"}) is True
    assert zip_consistent({"CITY": "Murray", "STATE": "CA", "ZIP": "42071"}) is False
    assert zip_consistent({"CITY": "Murray", "STATE": "KY", "ZIP": "None"}) is None


def test_digits_move_from_state_to_empty_zip_and_case_is_kept():
    out = move_state_digits_to_zip({"DATE": "8/3/89", "CITY": "Charlotte", "STATE": "Mi 48813", "ZIP": ""})
    assert out["STATE"] == "Mi" and out["ZIP"] == "48813"


def test_json_token_round_trip_without_and_with_processor_grammar():
    fields = {"DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "None"}
    seq = json2token(fields)
    assert seq == "<s_DATE>8/28/89</s_DATE><s_CITY>Murray</s_CITY><s_STATE>KY</s_STATE><s_ZIP>None</s_ZIP>"
    assert token2json("<s_hsf>" + seq + "</s>") == fields
    # truncated / malformed generations give "None" for what is missing
    assert token2json("<s_DATE>8/28/89</s_DATE><s_CITY>Mur") == {**{k: NONE for k in KEYS}, "DATE": "8/28/89"}
