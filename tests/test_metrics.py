"""The article's metrics (FLA, CBA, coverage) and the shared evaluation helpers."""

import math

import pandas as pd
import pytest

from handwriting_pipeline.fields import KEYS, NONE
from handwriting_pipeline.metrics import (
    METRIC_COLUMNS,
    aggregate,
    cba,
    covered,
    evaluate_method,
    exact,
    form_errors,
    match_predictions,
    metrics_markdown,
    metrics_row,
    metrics_table,
    score_form,
    score_forms,
)
from handwriting_pipeline.predictions import predictions_from_records

MURRAY = {"DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42171"}
ALL_NONE = {k: NONE for k in KEYS}

# Real validation forms (../shared/data/hsf_top/validation) with the recorded Textract output
# (ocr_outputs/textract.csv) and their CBA worked out by hand below.
REAL = {
    # DATE "June 30, 1989" (13) vs "June 30,1989": 1 edit. Lengths 13+10+2+5 = 30.
    "f0639_24.png": ({"DATE": "June 30, 1989", "CITY": "South Gate", "STATE": "CA", "ZIP": "90280"},
                     {"DATE": "June 30,1989", "CITY": "South Gate", "STATE": "CA", "ZIP": "90280"}),
    # DATE 1/10, CITY "Dallas" vs "Dallas , Tx." 6/12, STATE "Tx." vs "None" 4/4, ZIP 5/5 -> 16/31
    "f1598_49.png": ({"DATE": "Sept.16/89", "CITY": "Dallas", "STATE": "Tx.", "ZIP": "75217"},
                     {"DATE": "Sept.16'89", "CITY": "Dallas , Tx.", "STATE": "None", "ZIP": "None"}),
    # STATE "NC" vs "None": keep N, C->o, +n, +e = 3/4; ZIP 5/5; lengths 8+7+4+5 = 24 -> 8/24
    "f1276_10.png": ({"DATE": "08-25-89", "CITY": "Spencer", "STATE": "NC", "ZIP": "28159"},
                     {"DATE": "08-25-89", "CITY": "Spencer", "STATE": "None", "ZIP": "None"}),
    # CITY "ELK" vs "EIK" 1/17, STATE "Il." vs "II." 1/3; lengths 8+17+3+5 = 33 -> 2/33
    "f1251_10.png": ({"DATE": "08-26-89", "CITY": "ELK Grove Village", "STATE": "Il.", "ZIP": "60007"},
                     {"DATE": "08-26-89", "CITY": "EIK Grove Village", "STATE": "II.", "ZIP": "60007"}),
}
REAL_CBA = {
    "f0639_24.png": {"CBA": 100 - 100 * 1 / 30, "CBA_DATE": 100 - 100 / 13, "CBA_CITY": 100, "CBA_STATE": 100,
                     "CBA_ZIP": 100, "covered": 1.0},
    "f1598_49.png": {"CBA": 100 - 100 * 16 / 31, "CBA_DATE": 90, "CBA_CITY": 50, "CBA_STATE": 0, "CBA_ZIP": 0,
                     "covered": 0.0},
    "f1276_10.png": {"CBA": 100 - 100 * 8 / 24, "CBA_DATE": 100, "CBA_CITY": 100, "CBA_STATE": 25, "CBA_ZIP": 0,
                     "covered": 0.0},
    "f1251_10.png": {"CBA": 100 - 100 * 2 / 33, "CBA_DATE": 100, "CBA_CITY": 100 - 100 / 17,
                     "CBA_STATE": 100 - 100 / 3, "CBA_ZIP": 100, "covered": 1.0},
}


# --------------------------------------------------------------------------- the article's examples
def test_article_example_identical_form_scores_100():
    assert cba(MURRAY, MURRAY) == 100.0
    assert exact(MURRAY, MURRAY)


def test_article_example_all_none_scores_0():
    assert cba(MURRAY, ALL_NONE) == 0.0
    assert not exact(MURRAY, ALL_NONE)


def test_article_example_state_and_zip_none_scores_59():
    pred = {**MURRAY, "STATE": NONE, "ZIP": NONE}
    # STATE "KY"->"None" 4 edits over 4, ZIP "42171"->"None" 5 over 5; 7+6+4+5 = 22 characters
    assert cba(MURRAY, pred) == pytest.approx(100 - 100 * 9 / 22)
    assert cba(MURRAY, pred) == pytest.approx(59.09, abs=0.01)


def test_article_dict_distance_formula_on_unstripped_values():
    """The article strips values before the edit distance; surrounding spaces cost nothing."""
    assert cba(MURRAY, {k: f"  {v} " for k, v in MURRAY.items()}) == 100.0


# --------------------------------------------------------------------------- real forms
@pytest.mark.parametrize("name", sorted(REAL))
def test_hand_computed_scores_of_real_forms(name):
    gold, pred = REAL[name]
    scores = score_form(gold, pred)
    for key, value in REAL_CBA[name].items():
        assert scores[key] == pytest.approx(value), key
    assert scores["exact"] == 0.0


def test_score_forms_averages_and_counts_missing_forms_as_none():
    labels = pd.DataFrame([{"file_name": n, **g} for n, (g, _) in REAL.items()]
                          + [{"file_name": "f0067_25_22.png", **ALL_NONE}])
    preds = predictions_from_records([{"file_name": n, **p} for n, (_, p) in REAL.items()])
    per_form = score_forms(labels, preds)
    assert per_form["has_prediction"].tolist() == [True] * 4 + [False]
    agg = aggregate(per_form)
    assert agg["n"] == 5
    # the blank form without a prediction is all "None" = its label: exact, CBA 100, not covered
    assert agg["FLA"] == pytest.approx(100 * 1 / 5)
    expected_cba = (sum(v["CBA"] for v in REAL_CBA.values()) + 100) / 5
    assert agg["CBA"] == pytest.approx(expected_cba)
    assert agg["CBA_STATE"] == pytest.approx((100 + 0 + 25 + 100 - 100 / 3 + 100) / 5)
    assert agg["coverage"] == pytest.approx(100 * 2 / 5)


def test_confidence_columns_are_never_read_as_values():
    """``DATE_conf`` must not fill an empty DATE (clean_fields maps noisy key names)."""
    labels = pd.DataFrame([{"file_name": "a.png", **MURRAY}])
    preds = predictions_from_records([{"file_name": "a.png", **MURRAY, "DATE": NONE, "DATE_conf": 0.9}])
    per_form = score_forms(labels, preds)
    assert per_form.loc[0, "CBA_DATE"] == 0.0
    raw = pd.DataFrame([{"file_name": "a.png", **MURRAY, "DATE": "", "DATE__CONFIDENCE": "8/28/89"}])
    assert score_forms(labels, raw).loc[0, "CBA_DATE"] == 0.0


def test_zip_with_leading_zero_and_none_strings_compare_as_text():
    gold = {"DATE": "9/1/89", "CITY": "Boston", "STATE": "MA", "ZIP": "02134"}
    assert exact(gold, dict(gold))
    assert cba(gold, {**gold, "ZIP": "2134"}) == pytest.approx(100 - 100 / 19)
    assert covered(gold) and not covered({**gold, "CITY": "None"}) and not covered({**gold, "CITY": ""})


# --------------------------------------------------------------------------- matching and errors
def test_match_predictions_reports_missing_unknown_and_duplicates():
    labels = pd.DataFrame([{"file_name": n, **MURRAY} for n in ["a.png", "b.png", "c.png"]])
    preds = pd.DataFrame([{"file_name": n, **MURRAY} for n in ["a.png", "x.png", "x.png", "b.png"]])
    report = match_predictions(labels, preds)
    assert report.missing == ["c.png"] and report.unknown == ["x.png"] and report.duplicates == ["x.png"]
    assert report.matched == 2 and report.n_predictions == 4
    lines = report.summary("m")
    assert any("2 of 3 labelled forms" in line and "c.png" in line for line in lines)
    assert any("1 predictions for forms not in the labels" in line for line in lines)


def test_repeated_name_uses_its_first_row():
    labels = pd.DataFrame([{"file_name": "a.png", **MURRAY}])
    preds = pd.DataFrame([{"file_name": "a.png", **MURRAY}, {"file_name": "a.png", **ALL_NONE}])
    per_form, report = evaluate_method(labels, preds)
    assert per_form.loc[0, "exact"] == 1.0 and report.duplicates == ["a.png"]


def test_form_errors_lists_each_wrong_field():
    name = "f1598_49.png"
    gold, pred = REAL[name]
    labels = pd.DataFrame([{"file_name": name, **gold}, {"file_name": "blank.png", **MURRAY}])
    preds = predictions_from_records([{"file_name": name, **pred, "error": None}])
    errors = form_errors(labels, preds, method="textract")
    assert list(errors.columns) == ["method", "file_name", "field", "gold", "predicted", "edit_distance", "error"]
    mine = errors[errors["file_name"] == name]
    assert mine["field"].tolist() == ["DATE", "CITY", "STATE", "ZIP"]
    assert mine["edit_distance"].tolist() == [1, 6, 4, 5]
    assert mine["error"].isna().all()
    blank = errors[errors["file_name"] == "blank.png"]
    assert len(blank) == 4 and set(blank["error"]) == {"no prediction"} and set(blank["predicted"]) == {NONE}


# --------------------------------------------------------------------------- table
def test_metrics_table_has_exactly_the_report_columns():
    per_form = score_forms(pd.DataFrame([{"file_name": "a.png", **MURRAY}]),
                           pd.DataFrame([{"file_name": "a.png", **MURRAY, "STATE": NONE, "ZIP": NONE}]))
    table = metrics_table([metrics_row("textract", per_form, cost_usd=0.05, seconds_per_form=1.23456)])
    assert list(table.columns) == METRIC_COLUMNS == [
        "method", "n", "FLA", "CBA", "CBA_DATE", "CBA_CITY", "CBA_STATE", "CBA_ZIP", "coverage", "cost_usd",
        "seconds_per_form"]
    row = table.iloc[0]
    assert row["n"] == 1 and row["FLA"] == 0 and row["CBA"] == 59.09 and row["seconds_per_form"] == 1.235
    assert list(metrics_table([]).columns) == METRIC_COLUMNS


def test_markdown_leaves_unknown_cost_and_time_blank():
    per_form = score_forms(pd.DataFrame([{"file_name": "a.png", **MURRAY}]), pd.DataFrame(columns=["file_name"]))
    text = metrics_markdown(metrics_table([metrics_row("mine", per_form)]))
    header, _, row = text.splitlines()
    assert [c.strip() for c in header.split("|")[1:-1]] == METRIC_COLUMNS
    cells = [c.strip() for c in row.split("|")[1:-1]]
    assert cells[0] == "mine" and cells[1] == "1" and cells[3] == "0.00"
    assert cells[-2:] == ["", ""] and "nan" not in text


def test_aggregate_of_nothing_is_nan():
    agg = aggregate(score_forms(pd.DataFrame(columns=["file_name", *KEYS]), pd.DataFrame(columns=["file_name"])))
    assert agg["n"] == 0 and math.isnan(agg["FLA"])


def test_method_lists_from_the_command_line_accept_every_separator():
    from handwriting_pipeline.metrics import method_list

    assert method_list("rapidocr;donut") == ["rapidocr", "donut"]
    assert method_list("vote+llm") == ["vote", "llm"]
    assert method_list("a, b c") == ["a", "b", "c"]
    assert method_list(["x", "y"]) == ["x", "y"] and method_list(None) == [] and method_list("") == []
