"""The review page says why a field is doubtful and offers its normalized value."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.testclient import TestClient

from handwriting_pipeline.review.app import create_app
from handwriting_pipeline.review.run import ReviewItem, ReviewRun


def _item(**changes) -> ReviewItem:
    base = {"index": 0, "form": "a.png#0", "field": "STATE", "chosen": "Mi", "confidence": 0.5,
            "candidates": {"a": "Mi", "b": "MI."}, "crop": None, "top": None, "source": "a.png", "page": 0}
    return ReviewItem(**{**base, **changes})


def test_the_normalized_value_is_offered_when_new_and_valid():
    item = _item(normalized="MI", why=("low confidence (writing 0.5 < 0.6)",))
    assert item.options()[-1] == {"value": "MI", "engines": ["normalized"]}
    assert _item(normalized="MI", candidates={"a": "Mi", "b": "MI"}).normalized_option() is None  # already read
    assert _item(normalized="").options() == [{"value": "Mi", "engines": ["a"]}, {"value": "MI.", "engines": ["b"]}]
    assert _item(field="CITY", chosen="MILFORD", candidates={"a": "MILFORD"}, normalized="Milford").normalized_option() is None
    many = _item(candidates={str(i): f"S{i}" for i in range(12)}, normalized="MI").options()
    assert len(many) == 9 and many[-1]["engines"] == ["normalized"]


def test_reasons_come_from_the_record_or_from_the_confidence_and_candidates():
    assert _item(why=("validator failed (not a valid STATE)",)).reasons() == ["validator failed (not a valid STATE)"]
    assert _item(candidates={"a": "Mi", "b": "OH"}).reasons() == ["low confidence (0.50)", "engines disagree (2 readings)"]


def test_the_page_shows_why_and_the_normalized_candidate_as_text(run_copy: Path):
    forms = run_copy / "forms.jsonl"
    records = [json.loads(line) for line in forms.read_text().splitlines()]
    item = records[0]["review"][0]
    assert item["why"] and item["why"][0].startswith("low confidence (writing")  # digitize wrote them
    item["why"] = ["<b>gazetteer contradiction</b>", *item["why"]]
    item["normalized"] = "1989-08-02" if item["field"] == "DATE" else "MI" if item["field"] == "STATE" else "48381"
    forms.write_text("".join(json.dumps(r) + "\n" for r in records))
    run = ReviewRun.open(run_copy)
    page = TestClient(create_app(run, run.store(), "tester")).get("/item/0")
    assert 'id="why"' in page.text and "&lt;b&gt;gazetteer contradiction&lt;/b&gt;" in page.text
    assert "<b>gazetteer" not in page.text
    assert ">normalized</span>" in page.text and item["normalized"] in page.text
