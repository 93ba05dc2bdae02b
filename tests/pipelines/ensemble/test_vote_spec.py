"""The vote, the cascade and the trust levels read the form spec, per field type (issue #27): on the
order card (conf/base/forms/order_card.yml) two toy readings are voted with the validators of the
fields' types, the us_state / us_zip fields (found by type, whatever their names) chosen jointly
with the gazetteer, and normalized per type for trust. The HSF form's own results are guarded by
the other tests of this folder and tests/pipelines/digitize/test_same_vote.py."""

from __future__ import annotations

import pandas as pd
import pytest

from handwriting_pipeline.ensemble.cascade import cascade_vote
from handwriting_pipeline.ensemble.spec import vote_spec
from handwriting_pipeline.ensemble.trust import field_trust, normalized_value, trust_rows
from handwriting_pipeline.ensemble.vote import vote, vote_form, vote_params
from handwriting_pipeline.fields.formspec import hsf_form, load_form, parse_form
from handwriting_pipeline.pipelines.ensemble.nodes import cascade_predictions, llm_predictions, vote_predictions
from handwriting_pipeline.predictions import predictions_from_records

CARD = load_form("order_card")
#: a card read right (the gazetteer knows Douglasville, GA 30134)
RIGHT = {"ORDER_NO": "12345678", "DATE": "8/28/89", "AMOUNT": "$1,234.50", "PHONE": "(404) 555-0123",
         "CITY": "Douglasville", "STATE": "GA", "ZIP": "30134"}
PARAMS = vote_params({})  # the YAML's factors, no calibration: p = confidence


def _reading(values=None, conf=0.8, **changed):
    values = {**(values or RIGHT), **changed}
    return values, {k: conf for k in values}


def _renamed(spec, names):
    """``spec`` with its fields renamed (``{old: new}``), lines included."""
    data = spec.model_dump(mode="json", exclude_none=True)
    for f in data["fields"]:
        f["name"] = names.get(f["name"], f["name"])
    for line in data["lines"]:
        line["fields"] = [names.get(n, n) for n in line["fields"]]
    return parse_form(data, "renamed.yml")


def _without(spec, field):
    data = spec.model_dump(mode="json", exclude_none=True)
    data["fields"] = [f for f in data["fields"] if f["name"] != field]
    data["lines"] = [{**line, "fields": [n for n in line["fields"] if n != field]} for line in data["lines"]]
    return parse_form(data, "without.yml")


def test_the_vote_reads_the_cards_fields_and_groups_them_by_type():
    spec = vote_spec(CARD)
    assert spec.keys == CARD.keys and spec.aligned == "CITY"
    assert spec.groups == [("ORDER_NO",), ("DATE",), ("AMOUNT",), ("PHONE",), ("CITY", "STATE", "ZIP")]
    assert vote_spec().groups == [("DATE",), ("CITY", "STATE", "ZIP")] and vote_spec("order_card") is spec
    renamed = vote_spec(_renamed(CARD, {"STATE": "PROVINCE", "ZIP": "POSTCODE", "CITY": "TOWN"}))
    assert renamed.group.keys == ("TOWN", "PROVINCE", "POSTCODE")
    assert vote_spec(_without(CARD, "CITY")).group.keys == ("STATE", "ZIP")
    assert vote_spec(_without(CARD, "ZIP")).group is None


@pytest.mark.parametrize(("key", "invalid", "valid"), [
    ("PHONE", "(404) 555-01", "(404) 555-0123"),   # too few digits for a phone number
    ("AMOUNT", "12.5O", "12.50"),                  # a letter O in an amount
    ("ORDER_NO", "1234567", "12345678"),           # 7 digits where the card's type says 8
    ("DATE", "13/45/89", "8/28/89"),               # no such date
])
def test_an_invalid_reading_loses_to_a_valid_one_by_its_fields_type(key, invalid, valid):
    readings = {"sure": _reading(conf=0.9, **{key: invalid}), "other": _reading(conf=0.8, **{key: valid})}
    chosen, conf, cands = vote_form(readings, PARAMS, CARD)
    assert chosen[key] == valid and cands[key] == {"sure": invalid, "other": valid}
    assert set(chosen) == set(CARD.keys) and all(0 <= c <= 1 for c in conf.values())
    # without the validator's penalty (by the field's name, or its type) the surer engine would win
    field_type = CARD.field(key).type
    for factors in ({key: 1.0}, {field_type: 1.0, key: 1.0} if key == "DATE" else {field_type: 1.0}):
        lenient = vote_params({"validator_factor": factors})
        assert vote_form(readings, lenient, CARD)[0][key] == invalid


@pytest.mark.parametrize(("spec", "state"), [
    (CARD, "GA"),                                                            # ZIP 30134 lies in Georgia
    (_renamed(CARD, {"STATE": "PROVINCE", "ZIP": "POSTCODE"}), "GA"),       # found by type, not by name
    (_without(CARD, "CITY"), "GA"),                                          # state + ZIP without a city
    (_without(CARD, "ZIP"), "TX"),                                           # no ZIP: the state is voted alone
])
def test_state_and_zip_are_chosen_jointly_with_the_gazetteer_on_any_spec(spec, state):
    by_type = {f.type: RIGHT[f.name] for f in CARD.fields}
    values = {f.name: by_type[f.type] for f in spec.fields}
    state_field = next(f.name for f in spec.fields if f.type == "us_state")
    # engine b is surer, but reads TX: alone, its TX would win; the ZIP 30134 lies in Georgia
    readings = {"a": _reading(values, conf=0.6), "b": _reading(values, conf=0.7, **{state_field: "TX"})}
    chosen, _, _ = vote_form(readings, PARAMS, spec)
    assert chosen[state_field] == state


def test_a_contradicted_zip_is_not_sure_on_the_card():
    right = {"a": _reading(conf=0.95), "b": _reading(conf=0.95)}
    contradicted = {"a": _reading(conf=0.95, STATE="TX"), "b": _reading(conf=0.95, STATE="TX")}
    chosen, conf, _ = vote_form(right, PARAMS, CARD)
    assert chosen == RIGHT and conf["ZIP"] > 0.9
    chosen, conf, _ = vote_form(contradicted, PARAMS, CARD)
    assert chosen["STATE"] == "TX" and conf["ZIP"] < 0.6 and conf["STATE"] < 0.6 and conf["PHONE"] > 0.9


def _table(rows: dict[str, dict[str, str]], conf: float) -> pd.DataFrame:
    return predictions_from_records([{"file_name": n, **v, **{f"{k}_conf": conf for k in v}} for n, v in rows.items()],
                                    CARD.keys)


def test_vote_and_cascade_tables_have_the_cards_fields():
    fast = _table({"c1.png": RIGHT, "c2.png": {**RIGHT, "PHONE": "555-01"}}, 0.95)
    slow = _table({"c1.png": RIGHT, "c2.png": RIGHT}, 0.9)
    table, queue = vote({"fast": fast, "slow": slow}, PARAMS, CARD)
    assert list(table["file_name"]) == ["c1.png", "c2.png"] and all(f"{k}_conf" in table for k in CARD.keys)
    assert table.set_index("file_name").loc["c2.png", "PHONE"] == "(404) 555-0123"
    assert set(queue["field"]) <= set(CARD.keys)
    merged, share = cascade_vote({"fast": fast, "slow": slow}, ["fast"], PARAMS, {"threshold": 0.3}, CARD)
    assert share == 0.5  # c2's phone fails its type: only c2 goes on to the slower engine
    assert merged.set_index("file_name").loc["c2.png", "PHONE"] == "(404) 555-0123"


def test_the_ensemble_nodes_vote_on_the_card_and_the_llm_merge_stays_hsf_only():
    fast = _table({"c1.png": RIGHT}, 0.95)
    slow = _table({"c1.png": {**RIGHT, "AMOUNT": "l2.5O"}}, 0.9)
    params = {"methods": ["vote", "cascade", "llm"], "inputs": []}
    table, _ = vote_predictions(params, {}, form="order_card", fieldreader=fast, rapidocr=slow)
    assert table.loc[0, "AMOUNT"] == "$1,234.50" and list(table.columns)[1:8] == list(CARD.keys)
    cascaded, escalation = cascade_predictions(params, {}, form="order_card", fieldreader=fast, rapidocr=slow)
    assert cascaded.loc[0, "AMOUNT"] == "$1,234.50" and escalation["fast"] == ["fieldreader"]
    merged, report = llm_predictions(None, None, params, form="order_card", fieldreader=fast)
    assert merged.empty and list(merged.columns)[1:8] == list(CARD.keys) and "not run" in report["status"]


@pytest.mark.parametrize(("key", "value", "normalized"), [
    ("ORDER_NO", "1234-5678", "12345678"),
    ("DATE", "8/28/89", "1989-08-28"),
    ("AMOUNT", "$1,234.5", "1234.50"),
    ("PHONE", "(404) 555-0123", "+14045550123"),
    ("CITY", "DouglasVILLE", "Douglasville"),
    ("STATE", "Ga.", "GA"),
    ("ZIP", "30134-1234", "30134-1234"),
    ("PHONE", "555-01", ""),       # not a phone number: no normalized value
    ("ORDER_NO", "1234567", ""),   # not the card's 8 digits
])
def test_trust_normalizes_each_card_field_by_its_type(key, value, normalized):
    assert normalized_value(key, value, "GA", "30134", form=CARD) == normalized


def test_trust_on_the_card_counts_readings_of_the_same_value_together():
    readings = {"a": _reading(conf=0.9, AMOUNT="$1,234.5", STATE="Ga."), "b": _reading(conf=0.6, AMOUNT="1234.50")}
    trust = field_trust(readings, PARAMS, form=CARD)
    assert set(trust) == set(CARD.keys)
    amount = trust["AMOUNT"]
    assert amount.normalized == "1234.50" and amount.value_conf > amount.written_conf
    assert "written differently: $1,234.5 / 1234.50" in amount.why
    assert trust["STATE"].normalized == "GA" and trust["CITY"].normalized == "Douglasville"
    labels = pd.DataFrame([{"file_name": "c1.png", **RIGHT}])
    rows = trust_rows(labels, {"a": _table({"c1.png": readings["a"][0]}, 0.9),
                               "b": _table({"c1.png": readings["b"][0]}, 0.6)}, PARAMS, form=CARD)
    assert rows["field"].tolist() == list(CARD.keys)
    assert rows.set_index("field").loc["AMOUNT", "value_right"]  # $1,234.5 is the label's $1,234.50


def test_the_hsf_spec_is_the_default():
    readings = {"a": ({"DATE": "8/28/89", "CITY": "Detroit", "STATE": "MI", "ZIP": "48201"}, {}),
                "b": ({"DATE": "8/28/89", "CITY": "Detroit", "STATE": "Ml", "ZIP": "48201"}, {})}
    assert vote_form(readings, PARAMS) == vote_form(readings, PARAMS, hsf_form()) == vote_form(readings, PARAMS,
                                                                                                "hsf_top")
