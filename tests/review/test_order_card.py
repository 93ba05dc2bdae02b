"""The review page, the export and Label Studio on any form: the example order card
(``conf/base/forms/order_card.yml``, seven fields) and a form with a choice and a checkbox, read
from the run folder's summary.json; the HSF form stays as it was."""

from __future__ import annotations

import json
import shutil
import xml.etree.ElementTree as ET
from pathlib import Path

import pandas as pd
import pytest
from starlette.testclient import TestClient

from handwriting_pipeline.fields.formspec import load_form
from handwriting_pipeline.review.__main__ import main
from handwriting_pipeline.review.app import create_app
from handwriting_pipeline.review.curve import field_table, method_curves
from handwriting_pipeline.review.export import (
    LABEL_CONFIG,
    export_reviewed,
    import_labelstudio,
    label_studio_config,
    labelstudio_tasks,
    reviewed_records,
)
from handwriting_pipeline.review.run import ReviewRun, RunFolderError, run_form
from handwriting_pipeline.review.store import InvalidDecision, check_value
from handwriting_pipeline.review.training import write_training_folder
from tests.review.order_card_run import CARDS, make_order_card_run

ORDER_CARD = ("ORDER_NO", "DATE", "AMOUNT", "PHONE", "CITY", "STATE", "ZIP")
HSF = ("DATE", "CITY", "STATE", "ZIP")
#: the HSF labelling config as the export wrote it before the config was generated from the spec
OLD_HSF_CONFIG = "<View>\n" + """  <Header value="Check the fields: $needs_review"/>
  <Image name="image" value="$image" zoom="true"/>
""" + "".join(f"""  <TextArea name="{k}" toName="image" editable="true" maxSubmissions="1" rows="1" showSubmitButton="false"
            placeholder="{k} as written (None when empty)"/>
""" for k in HSF) + "</View>\n"
SURVEY = """name: survey
title: A survey card with a choice and a tick box
page: {size: [800, 400]}
lines:
  - {name: L1, box: [10, 10, 790, 100], fields: [NAME, SIZE, GIFT]}
fields:
  - {name: NAME, type: text, title: 'Name & "nickname"'}
  - {name: SIZE, type: choice, choice: {options: [Small, Medium, Large]}}
  - {name: GIFT, type: checkbox, title: Gift wrap}
"""


@pytest.fixture
def order_run(tmp_path: Path) -> Path:
    return make_order_card_run(tmp_path / "order_run")


def _controls(config: str) -> list[tuple[str, str]]:
    """(tag, name) of the config's controls, in order."""
    return [(tag.tag, tag.get("name")) for tag in ET.fromstring(config) if tag.get("toName")]


def _headers(config: str) -> list[str]:
    return [tag.get("value") for tag in ET.fromstring(config) if tag.tag == "Header"][1:]


# --------------------------------------------------------------------------- the labelling config
def test_the_label_studio_config_is_generated_from_the_form_spec():
    order = label_studio_config(load_form("order_card"))
    assert _controls(order) == [("TextArea", k) for k in ORDER_CARD]
    assert _headers(order) == ["Order number (8 digits)", *ORDER_CARD[1:]]   # the title, else the name
    assert all(tag.get("toName") == "image" for tag in ET.fromstring(order) if tag.get("toName"))
    hsf = label_studio_config(load_form("hsf_top"))
    assert hsf == LABEL_CONFIG and _controls(hsf) == [("TextArea", k) for k in HSF] and _headers(hsf) == list(HSF)
    # the HSF config is the old one plus a header naming each field: the controls are unchanged
    without_titles = "".join(line for line in hsf.splitlines(keepends=True)
                             if not line.startswith('  <Header value="') or "$needs_review" in line)
    assert without_titles == OLD_HSF_CONFIG


def test_choice_and_checkbox_fields_are_choices(tmp_path: Path):
    (tmp_path / "survey.yml").write_text(SURVEY)
    config = label_studio_config(load_form(tmp_path / "survey.yml"))
    root = ET.fromstring(config)   # titles with & and " are escaped
    assert _controls(config) == [("TextArea", "NAME"), ("Choices", "SIZE"), ("Choices", "GIFT")]
    assert _headers(config) == ['Name & "nickname"', "SIZE", "Gift wrap"]
    choices = {c.get("name"): [o.get("value") for o in c] for c in root if c.tag == "Choices"}
    assert choices == {"SIZE": ["Small", "Medium", "Large"], "GIFT": ["yes", "no"]}
    (tmp_path / "bad.yml").write_text(SURVEY.replace("NAME", "image").replace("name: survey", "name: bad"))
    with pytest.raises(ValueError, match="clashes with the image"):
        label_studio_config(load_form(tmp_path / "bad.yml"))


# --------------------------------------------------------------------------- the run's form
def test_the_run_reads_its_form_from_its_summary(order_run: Path, tmp_path: Path):
    run = ReviewRun.open(order_run)
    assert run.spec.name == "order_card" and run.keys == ORDER_CARD
    assert [(i.form.split("/")[-1], i.field) for i in run.items] == [
        (f"{card}.png#1", key) for card, (_, doubtful) in CARDS.items() for key in doubtful]
    assert run.store().spec.name == "order_card"

    old = Path(shutil.copytree(order_run, tmp_path / "old"))
    (old / "summary.json").unlink()                       # a run from before summary.json named its form
    assert run_form(old).name == "hsf_top" and [i.field for i in ReviewRun.open(old).items] == ["STATE", "CITY"]

    summary = json.loads((order_run / "summary.json").read_text())
    (old / "summary.json").write_text(json.dumps({**summary, "fields": list(HSF)}))
    with pytest.raises(RunFolderError, match="are not the fields of the form 'order_card'"):
        ReviewRun.open(old)
    (old / "summary.json").write_text(json.dumps({**summary, "form": "survey", "fields": ["NAME", "SIZE", "GIFT"]}))
    with pytest.raises(RunFolderError, match="--form path/to/form.yml"):
        ReviewRun.open(old)
    (tmp_path / "survey.yml").write_text(SURVEY)
    assert ReviewRun.open(old, tmp_path / "survey.yml").keys == ("NAME", "SIZE", "GIFT")
    with pytest.raises(RunFolderError, match="not 'order_card'"):
        ReviewRun.open(old, "order_card")
    (old / "summary.json").write_text("{")
    with pytest.raises(RunFolderError, match="not JSON"):
        ReviewRun.open(old)


def test_a_correction_is_checked_with_the_field_type():
    spec = load_form("order_card")
    assert check_value("ORDER_NO", " 1234 5678 ", spec) == "1234 5678"
    assert check_value("AMOUNT", "$1,234.50", spec) == "$1,234.50"
    assert check_value("PHONE", "+1 (404) 555-0123", spec) == "+1 (404) 555-0123"
    with pytest.raises(InvalidDecision, match=r"ORDER_NO: characters not allowed: 'a'"):
        check_value("ORDER_NO", "1234567a", spec)
    with pytest.raises(InvalidDecision, match=r"AMOUNT: characters not allowed: '€'"):
        check_value("AMOUNT", "€12", spec)
    with pytest.raises(InvalidDecision, match="unknown field 'ORDER_NO'; fields are DATE, CITY, STATE, ZIP"):
        check_value("ORDER_NO", "12345678")                 # the HSF form by default, as before
    with pytest.raises(InvalidDecision, match="fields are ORDER_NO, DATE, AMOUNT"):
        check_value("NAME", "x", spec)


def test_the_normalized_candidate_comes_from_the_field_type(order_run: Path):
    items = {(i.form.split("/")[-1], i.field): i for i in ReviewRun.open(order_run).items}
    amount, state = items[("card_001.png#1", "AMOUNT")], items[("card_001.png#1", "STATE")]
    assert amount.options()[-1] == {"value": "1234.50", "engines": ["normalized"]}
    assert state.options()[-1] == {"value": "GA", "engines": ["normalized"]}
    assert items[("card_001.png#1", "ORDER_NO")].normalized_option() is None   # 7 digits: not an order number
    city = items[("card_002.png#1", "CITY")]
    assert city.normalized == "Milford" and city.normalized_option() is None     # a city only re-cased
    assert items[("card_001.png#1", "ORDER_NO")].title == "Order number (8 digits)" and state.title is None


# --------------------------------------------------------------------------- the page
def test_the_review_page_serves_the_order_card(order_run: Path):
    run = ReviewRun.open(order_run)
    client = TestClient(create_app(run, run.store(), "tester"))
    assert client.get("/", follow_redirects=False).headers["location"] == "/item/0"
    page = client.get("/item/0")
    item = run.items[0]
    assert page.status_code == 200 and item.field == "ORDER_NO"
    assert 'id="field-name">ORDER_NO<' in page.text and "Order number (8 digits)" in page.text
    assert "This form as read: " + " · ".join(
        f"{k} <span>{v}</span>" for k, v in CARDS["card_001"][0].items()).replace("&", "&amp;") in page.text
    assert client.get(f"/files/{item.crop}").headers["content-type"] == "image/png"
    refused = client.post("/api/decide", json={"index": 0, "field": "ORDER_NO", "value": "1234567a",
                                               "action": "correct"})
    assert refused.status_code == 422 and refused.json()["detail"] == "ORDER_NO: characters not allowed: 'a'"
    assert run.store().decisions() == []
    saved = client.post("/api/decide", json={"index": 0, "field": "ORDER_NO", "value": "12345678",
                                             "action": "correct"})
    assert saved.status_code == 200 and saved.json()["next"] == 1
    [decision] = run.store().decisions()
    assert (decision.field, decision.value, decision.status) == ("ORDER_NO", "12345678", "corrected")
    picked = client.post("/api/decide", json={"index": 1, "field": "AMOUNT", "value": "1234.50", "action": "pick",
                                              "candidate": "normalized"})
    assert picked.status_code == 200 and run.store().latest()[(item.form, "AMOUNT")].value == "1234.50"


# --------------------------------------------------------------------------- export and Label Studio
def test_export_and_label_studio_of_the_order_card(order_run: Path, tmp_path: Path):
    run = ReviewRun.open(order_run)
    store = run.store()
    first = run.items[0].form
    for item in run.items:
        if item.form == first:
            store.record(item.form, item.field, "12345678" if item.field == "ORDER_NO" else item.chosen,
                         item.chosen, "ann")
    result = export_reviewed(run, store)
    rows = {r["source"].split("/")[-1]: r for r in map(json.loads, Path(result["jsonl"]).read_text().splitlines())}
    card = rows["card_001.png"]
    assert [card[f"{k}_status"] for k in ORDER_CARD] == [
        "corrected", "machine", "confirmed", "machine", "machine", "confirmed", "machine"]
    assert card["ORDER_NO"] == "12345678" and card["reviewed"] and rows["card_002.png"]["reviewed"] is False
    assert (card["ORDER_NO_normalized"], card["AMOUNT_normalized"], card["PHONE_normalized"],
            card["STATE_normalized"], card["DATE_normalized"]) == ("12345678", "1234.50", "+14045550123", "GA",
                                                                   "2024-03-14")
    assert "ORDER_NO_normalized" not in rows["card_004.png"]     # not readable: nothing to normalize
    header = Path(result["csv"]).read_text().splitlines()[0].split(",")
    assert header[3:10] == list(ORDER_CARD) and [f"{k}_status" for k in ORDER_CARD] == header[-10:-3]
    assert result["fields"] == {"machine": 4 * 7 - 3, "confirmed": 2, "corrected": 1}

    assert main(["labelstudio-export", str(order_run)]) == 0
    config = (order_run / "labelstudio" / "label_config.xml").read_text()
    assert _controls(config) == [("TextArea", k) for k in ORDER_CARD]
    tasks = json.loads((order_run / "labelstudio" / "tasks.json").read_text())
    assert len(tasks) == 2 and tasks == labelstudio_tasks(run)
    for task in tasks:
        [prediction] = task["predictions"]
        assert [r["from_name"] for r in prediction["result"]] == list(ORDER_CARD)
        assert {r["type"] for r in prediction["result"]} == {"textarea"}
        assert set(task["data"]) >= {f"{k}_conf" for k in ORDER_CARD}
    assert tasks[0]["predictions"][0]["result"][2]["value"] == {"text": ["$1,234.5"]}

    exported = []
    for number, task in enumerate(tasks, 1):
        result = [dict(r) for r in task["predictions"][0]["result"]]
        result[0] = {**result[0], "value": {"text": ["87654321"]}}
        result[1] = {**result[1], "value": {"text": ["12/1/23<"]}}       # refused: '<' is not written in a date
        exported.append({"id": number, "data": task["data"], "annotations": [{"completed_by": 3, "result": result}]})
    (tmp_path / "export.json").write_text(json.dumps(exported))
    assert main(["labelstudio-import", str(order_run), str(tmp_path / "export.json")]) == 0
    imported = [d for d in store.decisions() if d.origin == "labelstudio"]
    assert len(imported) == 2 * 6 and {d.field for d in imported} == set(ORDER_CARD) - {"DATE"}
    assert {d.value for d in imported if d.field == "ORDER_NO"} == {"87654321"}
    summary = import_labelstudio(run, store, exported)
    assert summary["already_stored"] == 12 and len(summary["problems"]) == 2
    assert all("DATE: characters not allowed: '<'" in p for p in summary["problems"])


def test_reviewed_order_cards_become_training_forms(order_run: Path, tmp_path: Path):
    run = ReviewRun.open(order_run)
    for item in run.items:
        if item.form == run.items[0].form:
            run.store().record(item.form, item.field, item.chosen, item.chosen, "ann")
    assert write_training_folder([order_run], tmp_path / "train_forms") == 1
    [line] = (tmp_path / "train_forms" / "train" / "metadata.jsonl").read_text().splitlines()
    labels = json.loads(json.loads(line)["ground_truth"])["gt_parse"]
    assert labels == CARDS["card_001"][0] and list(labels) == list(ORDER_CARD)
    old = Path(shutil.copytree(order_run, tmp_path / "old"))
    (old / "summary.json").unlink()
    with pytest.raises(RunFolderError, match="different forms"):
        write_training_folder([order_run, old], tmp_path / "mixed")


def test_choices_round_trip_through_label_studio(tmp_path: Path):
    """A choice field is pre-filled with the option its reading normalizes to and a checkbox with
    yes / no; an annotator keeping the option confirms the machine's reading, changing it stores
    the option (a checkbox: a mark or nothing)."""
    (tmp_path / "survey.yml").write_text(SURVEY)
    folder = tmp_path / "survey_run"
    (folder / "review").mkdir(parents=True)
    from PIL import Image

    Image.new("L", (800, 400), 255).save(folder / "review" / "s1_top.png")
    values = {"NAME": "Ann Lee", "SIZE": "medium", "GIFT": "X"}
    review = [{"field": k, "chosen": values[k], "confidence": 0.3, "candidates": {"fieldreader": values[k]},
               "crop": None, "top": "review/s1_top.png"} for k in ("SIZE", "GIFT")]
    record = {"source": "s1.png", "page": 1, "kind": "page", **values, **{f"{k}_conf": 0.3 for k in values},
              "needs_review": ["SIZE", "GIFT"], "error": None, "review": review}
    (folder / "forms.jsonl").write_text(json.dumps(record) + "\n")
    (folder / "summary.json").write_text(json.dumps({"form": "survey", "fields": list(values)}))
    run = ReviewRun.open(folder, tmp_path / "survey.yml")
    assert run.items[0].options()[-1] == {"value": "Medium", "engines": ["normalized"]}
    [task] = labelstudio_tasks(run)
    result = task["predictions"][0]["result"]
    assert [(r["from_name"], r["type"], r["value"]) for r in result] == [
        ("NAME", "textarea", {"text": ["Ann Lee"]}), ("SIZE", "choices", {"choices": ["Medium"]}),
        ("GIFT", "choices", {"choices": ["yes"]})]
    answer = [result[0], result[1], {**result[2], "value": {"choices": ["no"]}},
              {**result[1], "id": "x", "value": {"choices": ["Huge"]}}]
    summary = import_labelstudio(run, run.store(), [{"id": 1, "data": task["data"],
                                                     "annotations": [{"completed_by": 5, "result": answer}]}])
    assert summary["decisions"] == 3 and len(summary["problems"]) == 1 and "Huge" in summary["problems"][0]
    latest = run.store().latest()
    assert (latest[("s1.png#1", "SIZE")].value, latest[("s1.png#1", "SIZE")].status) == ("medium", "confirmed")
    assert (latest[("s1.png#1", "GIFT")].value, latest[("s1.png#1", "GIFT")].status) == ("None", "corrected")
    [final] = reviewed_records(run, run.store())
    assert (final["SIZE_normalized"], final["GIFT_normalized"], final["GIFT_status"]) == ("Medium", "false", "corrected")


def test_the_review_curve_over_another_form():
    labels = pd.DataFrame([{"file_name": "a.png", **dict.fromkeys(ORDER_CARD, "1")},
                           {"file_name": "b.png", **dict.fromkeys(ORDER_CARD, "2")}])
    predictions = pd.DataFrame([{"file_name": "a.png", **dict.fromkeys(ORDER_CARD, "1"),
                                 **{f"{k}_conf": 0.9 for k in ORDER_CARD}},
                                {"file_name": "b.png", **dict.fromkeys(ORDER_CARD, "2"), "ZIP": "3",
                                 **{f"{k}_conf": 0.9 for k in ORDER_CARD}, "ZIP_conf": 0.1}])
    table = field_table(labels, predictions, ORDER_CARD)
    assert len(table) == 14 and list(table["field"][:7]) == list(ORDER_CARD)
    [curve] = method_curves(labels, {"m": predictions}, shares=(0, 10), keys=ORDER_CARD).values()
    assert [(c["review_pct"], c["FLA"]) for c in curve["curve"]] == [(0, 50.0), (10, 100.0)]
    assert list(field_table(labels, predictions)["field"].unique()) == list(HSF)   # the HSF form by default
