"""Digitize's two levels of trust: ``<FIELD>_written_conf`` / ``<FIELD>_value_conf`` beside
``<FIELD>_conf``, why a field is doubtful, its normalized value, and ``digitize.review.on``."""

from __future__ import annotations

import pytest

from handwriting_pipeline import registry
from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.digitize.core import COLUMNS, DigitizeSettings, csv_row, make_plan, read_partition, review_rows
from handwriting_pipeline.fields import KEYS

from .test_digitize import _params
from .toy import ToyEngine


class CaseToyEngine(ToyEngine):
    """The toy, but it writes STATE as ``Ky``: the same state as the toy's ``KY``, another case."""

    name = "casetoy"

    def read(self, image, file_name=""):
        result = super().read(image, file_name)
        result.fields["STATE"] = "Ky"
        return result


@pytest.fixture
def crop(tmp_path, synthetic_crops) -> str:
    path = tmp_path / "crop.png"
    synthetic_crops[0].save(path)
    return str(path)


@pytest.fixture
def two_toys(monkeypatch):
    monkeypatch.setitem(registry.ENGINES, "toy", ToyEngine)
    monkeypatch.setitem(registry.ENGINES, "casetoy", CaseToyEngine)


def _plan(tmp_path, on=None, guarantees=None):
    params = _params()
    digitize = {**params["digitize"], "method": "vote", "engines": ["toy", "casetoy"], "progress": False,
                "workers": 1, "review_threshold": 0.6}
    if on is not None or guarantees is not None:
        digitize["review"] = {"on": on or "writing", "guarantees": guarantees or {}}
    extract = {**params["extract"], "toy": {"confidence": 0.9}, "casetoy": {"confidence": 0.9}}
    return make_plan(digitize, extract, params["ensemble"], {}, ResponseCache(tmp_path / "cache"), datasets={})


def _record(tmp_path, crop, on=None, guarantees=None):
    [record] = read_partition(_plan(tmp_path, on, guarantees), [crop], review_crops=False)
    return record


def test_value_sure_writing_doubtful_and_the_setting_chooses(two_toys, tmp_path, crop):
    record = _record(tmp_path, crop)  # the default: review on writing
    assert set(COLUMNS) <= set(record)
    assert all(record[f"{k}_written_conf"] == record[f"{k}_conf"] for k in KEYS)
    assert all(record[f"{k}_value_conf"] >= record[f"{k}_written_conf"] for k in KEYS)
    assert record["STATE_written_conf"] < 0.6 <= record["STATE_value_conf"]  # Ky or KY? Kentucky.
    assert record["needs_review"] == ["DATE", "STATE"]
    state = next(item for item in record["review"] if item["field"] == "STATE")
    assert state["confidence"] == state["written_conf"] == record["STATE_conf"]
    assert state["value_conf"] == record["STATE_value_conf"] and state["normalized"] == "KY"
    assert state["why"][0].startswith("low confidence (writing") and "written differently: KY / Ky" in state["why"]
    [row] = [r for r in review_rows(record) if r["field"] == "STATE"]
    assert row["normalized"] == "KY" and "written differently" in row["why"] and row["value_conf"] >= 0.6
    assert csv_row(record)["STATE_value_conf"] == record["STATE_value_conf"]

    on_value = _record(tmp_path, crop, on="value")
    assert on_value["needs_review"] == ["DATE"]  # the value is sure; the toy's DATE is still no date
    assert [k for k in KEYS if on_value[f"{k}_conf"] != record[f"{k}_conf"]] == []
    assert on_value["review"][0]["why"][0].startswith("low confidence (value")


def test_review_on_is_typed():
    assert DigitizeSettings().review.on == "writing"
    assert DigitizeSettings.from_params({"review": {"on": "value"}}).review.on == "value"
    with pytest.raises(ValueError, match="digitize.review.on"):
        DigitizeSettings.from_params({"review": {"on": "case"}})
    with pytest.raises(ValueError, match="unknown key 'of'"):
        DigitizeSettings.from_params({"review": {"of": "value"}})


def test_old_records_without_trust_keys_still_give_queue_rows():
    record = {"source": "a.png", "page": 0, **{k: "x" for k in KEYS},
              "review": [{"field": "DATE", "chosen": "x", "confidence": 0.1, "candidates": {"toy": "x"}, "crop": None}]}
    [row] = review_rows(record)
    assert row["written_conf"] is None and row["why"] == "" and row["normalized"] == ""


def test_a_measured_guarantee_replaces_the_plain_threshold_and_the_summary_states_it(two_toys, tmp_path, crop):
    from handwriting_pipeline.pipelines.digitize.nodes import digitize_summary

    plain = _record(tmp_path, crop, on="value")
    fields = {"DATE": {"threshold": 0.0, "n": 500, "sure": 500, "errors": 3, "bound": 0.0106},
              "CITY": {"threshold": None, "n": 500, "sure": 0, "errors": 0, "bound": 1.0},
              "STATE": {"threshold": 0.5, "n": 500, "sure": 400, "errors": 2, "bound": 0.012},
              "ZIP": {"threshold": 0.99, "n": 500, "sure": 300, "errors": 1, "bound": 0.009}}
    entry = {"alpha": 0.01, "delta": 0.1, "fitted_on": "out-of-fold train forms", "fields": fields}
    guarantees = {"vote:casetoy+toy": {"value": entry}}
    sure = _record(tmp_path, crop, on="value", guarantees=guarantees)
    value = {k: sure[f"{k}_value_conf"] for k in KEYS}
    expected = [k for k in KEYS if fields[k]["threshold"] is None or value[k] < fields[k]["threshold"]]
    assert sure["needs_review"] == expected and "CITY" in expected and "DATE" not in expected  # the guarantee decides
    assert plain["needs_review"] != expected  # not the plain threshold
    city = next(item for item in sure["review"] if item["field"] == "CITY")
    assert city["why"][0] == "no threshold meets the guarantee for CITY (value, alpha 0.01)"
    summary = digitize_summary([sure], "hsf_top", _plan(tmp_path, "value", guarantees))["guarantee"]
    assert summary["applies"] and summary["key"] == "vote:casetoy+toy" and summary["alpha"] == 0.01
    assert summary["delta"] == 0.1 and summary["fields"]["ZIP"]["bound"] == 0.009
    assert "<= 0.01 with probability 0.9" in summary["statement"]
    # another level (writing) or other engines: no guarantee applies, the summary says so
    other = digitize_summary([sure], "hsf_top", _plan(tmp_path, "writing", guarantees))["guarantee"]
    assert other["applies"] is False and other["review_threshold"] == 0.6
    assert "no measured guarantee for vote:casetoy+toy (writing)" in other["statement"]


def test_a_guarantee_fitted_for_other_weights_does_not_apply(two_toys, tmp_path):
    from types import SimpleNamespace

    from handwriting_pipeline.digitize.core import ReviewSettings, run_guarantee
    from handwriting_pipeline.methods import EngineSpec

    entry = {"alpha": 0.01, "delta": 0.1, "models": {"toy": "abc"}, "fields": {}}
    review = ReviewSettings.from_params({"on": "value", "guarantees": {"vote:casetoy+toy": {"value": entry}}})

    def specs(fingerprint):
        model = SimpleNamespace(fingerprint=fingerprint)
        return [EngineSpec("toy", ToyEngine, {}, {}, {"model": model}), EngineSpec("casetoy", CaseToyEngine, {}, {}, {})]

    assert run_guarantee(review, "vote", specs("abc"))["key"] == "vote:casetoy+toy"  # the weights it was fitted for
    assert run_guarantee(review, "vote", specs("retrained")) is None  # other weights: no guarantee
    assert run_guarantee(review, "cascade", specs("abc")) is None  # another method
