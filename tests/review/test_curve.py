"""The review curve on a hand-checked example and on real labels."""

from __future__ import annotations

import pandas as pd
import pytest

from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.metrics import aggregate, score_forms
from handwriting_pipeline.review.curve import (
    curves_markdown,
    field_table,
    method_curves,
    review_curve,
    review_load,
    share_to_reach,
    threshold_review,
)

GOLD = {"a": ("1/2/89", "Murray", "KY", "42071"), "b": ("3/4/89", "Troy", "NY", "12180"),
        "c": ("5/6/89", "Reno", "NV", "89501"), "d": ("7/8/89", "Waco", "TX", "76701")}


def _tables():
    labels = pd.DataFrame([{"file_name": f, **dict(zip(KEYS, v))} for f, v in GOLD.items()])
    rows = []
    for f, values in GOLD.items():
        row = {"file_name": f, **dict(zip(KEYS, values)), **{f"{k}_conf": 0.9 for k in KEYS}}
        rows.append(row)
    pred = pd.DataFrame(rows)
    pred.loc[pred.file_name == "b", ["CITY", "CITY_conf"]] = ["Tray", 0.1]     # wrong, least sure
    pred.loc[pred.file_name == "c", ["ZIP", "ZIP_conf"]] = ["89601", 0.2]      # wrong, unsure
    pred.loc[pred.file_name == "c", ["DATE", "DATE_conf"]] = ["5/8/89", 0.95]  # wrong, but sure
    pred.loc[pred.file_name == "d", "STATE_conf"] = 0.5                        # right, unsure
    return labels, pred


def test_curve_fixes_least_confident_fields_first():
    labels, pred = _tables()
    fields = field_table(labels, pred)
    assert len(fields) == 16
    curve = review_curve(fields, shares=[0, 6.25, 12.5, 18.75, 100]).set_index("review_pct")
    before = aggregate(score_forms(labels, pred))
    assert curve.loc[0, "FLA"] == pytest.approx(before["FLA"]) == 50.0
    assert curve.loc[0, "CBA"] == pytest.approx(before["CBA"], abs=0.01)
    assert curve.loc[6.25, "FLA"] == 75.0           # b's CITY fixed
    assert curve.loc[12.5, "FLA"] == 75.0           # c's ZIP fixed, c's DATE still wrong
    assert curve.loc[12.5, "errors_left"] == 1
    assert curve.loc[18.75, "FLA"] == 75.0          # d's right STATE looked at: nothing changes
    assert curve.loc[100, "FLA"] == 100.0 and curve.loc[100, "CBA"] == 100.0
    assert list(curve["FLA"]) == sorted(curve["FLA"])  # never goes down


def test_share_to_reach_and_threshold():
    labels, pred = _tables()
    fields = field_table(labels, pred)
    # the sure-but-wrong DATE is the very last field: FLA 90 needs every field looked at
    assert share_to_reach(fields, [75, 90]) == {"FLA_75": 6.25, "FLA_90": 100.0}
    result = threshold_review(fields, 0.6)
    assert result["fields_to_review"] == 3 and result["errors"] == 3
    assert result["errors_caught"] == 2 and result["errors_missed"] == 1
    assert result["FLA_before"] == 50.0 and result["FLA_after"] == 75.0
    assert review_load([0.1, 0.7, None, 0.95], 0.6) == {"review_threshold": 0.6, "fields": 4, "fields_to_review": 2,
                                                        "fields_to_review_pct": 50.0}


def test_method_curves_skip_methods_without_confidences_and_render(shared_validation):
    from handwriting_pipeline.datasets.forms import read_donut_folder

    forms, _ = read_donut_folder(str(shared_validation), split="validation")
    labels = forms.labels.head(40)
    # a reading that is the truth with every ZIP's last digit changed, sure of the DATEs only
    pred = labels.copy()
    pred["ZIP"] = [z[:-1] + str((int(z[-1]) + 1) % 10) if z[-1:].isdigit() else z for z in pred["ZIP"]]
    for key in KEYS:
        pred[f"{key}_conf"] = 0.99 if key == "DATE" else 0.5
    no_conf = labels[["file_name", *KEYS]].copy()
    curves = method_curves(labels, {"zip_slip": pred, "plain": no_conf}, threshold=0.6)
    assert list(curves) == ["zip_slip"]
    item = curves["zip_slip"]
    changed = int((pred["ZIP"] != labels["ZIP"]).sum())
    assert item["threshold"]["errors"] == changed == item["threshold"]["errors_caught"]
    assert item["threshold"]["FLA_after"] == 100.0
    text = curves_markdown(curves)
    assert "| zip_slip |" in text and "FLA ≥ 95" in text
