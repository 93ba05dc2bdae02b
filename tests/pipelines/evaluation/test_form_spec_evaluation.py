"""The evaluation reads the active form (issue #27): a tiny order-card set (conf/base/forms/order_card.yml,
seven fields) scored and reported through the evaluation pipeline, with the field reader as its only
engine; the HSF-only parts of the report degrade to "not measured on this form"; select_forms checks
the images against the form's own size."""

from pathlib import Path

import pandas as pd
import pytest
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure
from PIL import Image, ImageDraw

from handwriting_pipeline.datasets.forms import LabelledForms
from handwriting_pipeline.evaluation import EvaluationSettings, InputChecksSettings
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.fields.formspec import load_form
from handwriting_pipeline.metrics import (
    METHODS,
    METRIC_COLUMNS,
    form_errors,
    metric_columns,
    metrics_markdown,
    metrics_row,
    metrics_table,
    score_forms,
    score_forms_typed,
    typed_metric_columns,
    typed_metrics_row,
    typed_metrics_table,
)
from handwriting_pipeline.pipelines.evaluation import create_pipeline
from handwriting_pipeline.pipelines.evaluation.nodes import (
    calibration_report_lines,
    form_score_columns,
    guarantee_checks,
    plot_key_accuracy,
    render_report,
    review_curves,
    score_normalized,
    score_predictions,
    summarise_metrics,
)
from handwriting_pipeline.pipelines.evaluation.provenance import collect_failures
from handwriting_pipeline.pipelines.select_forms.nodes import expected_size, select_evaluation_forms
from handwriting_pipeline.predictions import empty_predictions, predictions_from_records

PROJECT = Path(__file__).resolve().parents[3]
ORDER = load_form("order_card")
KEYS7 = ORDER.keys
GOLD = {
    "c1.png": {"ORDER_NO": "12345678", "DATE": "3/14/24", "AMOUNT": "12.50", "PHONE": "(404) 555-0123",
               "CITY": "Atlanta", "STATE": "GA", "ZIP": "30301"},
    "c2.png": {"ORDER_NO": "87654321", "DATE": "1/2/23", "AMOUNT": "100.00", "PHONE": "212-555-0199",
               "CITY": "New York", "STATE": "NY", "ZIP": "10001"},
    "c3.png": {"ORDER_NO": "11112222", "DATE": "12/31/22", "AMOUNT": "7.25", "PHONE": "617 555 0100",
               "CITY": "Boston", "STATE": "MA", "ZIP": "02134"},
}
# c1 exact; c2 the amount written with its dollar sign (right once normalized); c3 one digit wrong
READ = {"c1.png": GOLD["c1.png"], "c2.png": {**GOLD["c2.png"], "AMOUNT": "$100.00"},
        "c3.png": {**GOLD["c3.png"], "ORDER_NO": "11112223"}}
OUTPUTS = ["evaluation_metrics", "evaluation_report", "evaluation_accuracy_plot", "evaluation_key_accuracy_plot",
           "evaluation_form_scores", "evaluation_form_errors", "evaluation_normalized_forms",
           "evaluation_normalized_metrics", "evaluation_failures", "evaluation_review_curves",
           "evaluation_review_curve_plot", "evaluation_guarantee"]


class _Kept(MemoryDataset):
    def _release(self) -> None:
        pass


@pytest.fixture(scope="module")
def parameters():
    """The evaluation and ensemble blocks of conf/base (read as YAML: no other block is resolved)."""
    return {block: yaml.safe_load((PROJECT / f"conf/base/parameters_{block}.yml").read_text(encoding="utf-8"))[block]
            for block in ("evaluation", "ensemble")}


@pytest.fixture(scope="module")
def params(parameters):
    return parameters["evaluation"]


def _cards() -> LabelledForms:
    labels = pd.DataFrame([{"file_name": n, **fields} for n, fields in GOLD.items()])
    return LabelledForms(labels, keys=KEYS7)


def _read(records=READ, **extra) -> pd.DataFrame:
    return predictions_from_records([{"file_name": n, **fields, **{f"{k}_conf": 0.9 for k in KEYS7}, "seconds": 0.5,
                                      **extra} for n, fields in records.items()], KEYS7)


def _run(parameters, tables, cascade=None, form="order_card", forms=None):
    keys = load_form(form).keys
    datasets = {"evaluation_forms": MemoryDataset(forms or _cards(), copy_mode="assign"),
                "params:evaluation": MemoryDataset(parameters["evaluation"]),
                "params:ensemble": MemoryDataset(parameters["ensemble"]), "params:form": MemoryDataset(form),
                "run_info": MemoryDataset({"run_id": "R1", "started_utc": "2026-12-01T00:00:00"}),
                "cascade_escalation": MemoryDataset(cascade or {}), "engine_choices": MemoryDataset({}),
                "engine_calibrations": MemoryDataset({}), "engine_guarantees": MemoryDataset({}),
                "engine_recalibrations": MemoryDataset({})}
    for method in METHODS:
        datasets[f"predictions_{method}"] = MemoryDataset(tables.get(method, empty_predictions(keys)))
    datasets.update({name: _Kept() for name in OUTPUTS})
    catalog = DataCatalog(datasets=datasets)
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog[name].load() for name in OUTPUTS}


# --------------------------------------------------------------------------- the pipeline on the order card
def test_the_order_card_is_scored_over_its_seven_fields(parameters):
    out = _run(parameters, {"fieldreader": _read()})
    metrics = out["evaluation_metrics"]
    assert list(metrics.columns) == ["method", "n", "FLA", "CBA", *(f"CBA_{k}" for k in KEYS7), "coverage",
                                     "cost_usd", "seconds_per_form"]
    assert list(metrics.columns) == metric_columns(KEYS7)
    row = metrics.set_index("method").loc["fieldreader"]
    assert metrics["method"].tolist() == ["fieldreader"] and row["n"] == 3
    assert row["FLA"] == pytest.approx(33.33) and row["coverage"] == 100.0
    assert row["CBA_ORDER_NO"] == pytest.approx(round((100 + 100 + 87.5) / 3, 2))
    assert row["CBA_AMOUNT"] == pytest.approx(round((100 + 100 * 6 / 7 + 100) / 3, 2))
    assert row["CBA_PHONE"] == row["CBA_CITY"] == row["CBA_ZIP"] == 100.0
    assert row["seconds_per_form"] == 0.5 and row["cost_usd"] == 0.0

    scores = out["evaluation_form_scores"]
    assert list(scores.columns) == form_score_columns(KEYS7) and len(scores) == 3
    errors = out["evaluation_form_errors"]
    assert errors[["file_name", "field", "gold", "predicted"]].values.tolist() == [
        ["c2.png", "AMOUNT", "100.00", "$100.00"], ["c3.png", "ORDER_NO", "11112222", "11112223"]]
    assert isinstance(out["evaluation_accuracy_plot"], Figure)
    key_plot = out["evaluation_key_accuracy_plot"]
    assert [t.get_text() for t in key_plot.axes[0].get_legend().get_texts()] == list(KEYS7)


def test_the_order_card_is_normalized_per_field_type(parameters):
    out = _run(parameters, {"fieldreader": _read()})
    normalized = out["evaluation_normalized_metrics"]
    assert list(normalized.columns) == typed_metric_columns(KEYS7)
    row = normalized.set_index("method").loc["fieldreader"]
    assert row["FLA"] == pytest.approx(33.33)
    assert row["AMOUNT_norm"] == 100.0  # "$100.00" is 100.00
    assert row["ORDER_NO_norm"] == pytest.approx(66.67)
    assert row["FLA_normalized"] == pytest.approx(66.67)
    forms = out["evaluation_normalized_forms"].set_index("file_name")
    assert forms.loc["c2.png", "AMOUNT_norm"] == "100.00" and forms.loc["c1.png", "PHONE_norm"] == "+14045550123"
    assert forms.loc["c1.png", "DATE_norm"] == "1924-03-14"  # the spec: two_digit_year_from 1900
    assert forms.loc["c3.png", "gold_ZIP_norm"] == "02134"


def test_the_report_names_the_form_and_its_fields_and_what_is_not_measured(parameters):
    out = _run(parameters, {"fieldreader": _read()})
    report = out["evaluation_report"]
    head = report.split("| method")[0]
    assert "- **Form**: `order_card` (fields ORDER_NO, DATE, AMOUNT, PHONE, CITY, STATE, ZIP)" in head
    assert "whose ORDER_NO, DATE, AMOUNT, PHONE, CITY, STATE and ZIP all equal the labels exactly" in report
    assert "over the seven fields" in report and "in all seven fields" in report
    assert all(f"CBA_{k}" in report.split("- **FLA**")[0] for k in KEYS7)
    assert "## What a database gets: normalized fields" in report and "ORDER_NO_norm" in report
    assert "address_verified |" not in report
    # the HSF-only parts: said, not crashed, not shown empty
    assert "## Not measured on this form" in report and "address check" in report
    assert "## Guarantee" not in report and out["evaluation_guarantee"] == {}
    # the review curve reads the form's seven fields: its two wrong fields (ORDER_NO, AMOUNT) are counted
    start = out["evaluation_review_curves"]["fieldreader"]["curve"][0]
    assert start["errors_left"] == 2 and start["FLA"] == pytest.approx(33.33, abs=0.01)
    assert isinstance(out["evaluation_review_curve_plot"], Figure)
    assert out["evaluation_failures"]["methods"] == []


def test_a_cascade_and_failures_on_the_order_card_do_not_crash(parameters):
    failed = _read({"c3.png": {}}, error="reader crashed")
    tables = {"fieldreader": _read(), "fieldreader_ensemble": failed, "cascade": _read()}
    escalation = {"method": "cascade", "fast": ["fieldreader"], "slow": ["fieldreader_ensemble"], "forms": 3,
                  "escalated": 1, "escalated_share": 1 / 3, "threshold": 0.5, "escalate_invalid": True}
    parameters = {**parameters, "evaluation": {**parameters["evaluation"], "max_failure_share": 1}}
    out = _run(parameters, tables, cascade=escalation)
    metrics = out["evaluation_metrics"].set_index("method")
    assert list(metrics.index) == ["fieldreader", "fieldreader_ensemble", "cascade"]
    assert metrics.loc["fieldreader_ensemble", "n"] == 3 and metrics.loc["fieldreader_ensemble", "coverage"] == 0.0
    report = out["evaluation_report"]
    assert "## Cascade" in report and "## Failures" in report and "reader crashed" in report
    assert "the guarantee of the cascade's sure fields" in report and "## Guarantee" not in report
    assert out["evaluation_guarantee"] == {}


def test_the_report_says_where_each_engine_of_the_vote_was_calibrated():
    """On the card the shipped (HSF-fitted) calibration of RapidOCR gives way to the one its
    trained reader carries; on the HSF form the shipped one is used; an uncalibrated engine says so."""
    shipped = {"vote": {"calibration": {"rapidocr": {"DATE": {"a": 1.0, "b": 1.0, "n": 1400}}}}}
    carried = {"rapidocr": {"ORDER_NO": {"a": 0.5, "b": 2.0, "n": 20}}, "fieldreader": {"DATE": {"a": 1.0, "b": 2.0}}}
    card = "\n".join(calibration_report_lines(carried, shipped, load_form("order_card"), {"rapidocr", "donut", "vote"}))
    assert "| rapidocr | saved with a trained model: fitted on held-out forms of this form | 20 |" in card
    assert "| donut | none: its raw confidence | – |" in card and "fieldreader" not in card  # not evaluated
    hsf = "\n".join(calibration_report_lines({}, shipped, load_form("hsf_top"), {"rapidocr", "cascade"}))
    assert "| rapidocr | `ensemble.vote.calibration` (fitted on HSF train forms) | 1400 |" in hsf
    assert calibration_report_lines(carried, shipped, load_form("order_card"), {"rapidocr"}) == []  # no vote


def test_only_empty_predictions_give_an_empty_report_on_the_order_card(parameters):
    out = _run(parameters, {})
    assert out["evaluation_metrics"].empty and list(out["evaluation_metrics"].columns) == metric_columns(KEYS7)
    assert list(out["evaluation_normalized_metrics"].columns) == typed_metric_columns(KEYS7)
    assert "No method produced predictions" in out["evaluation_report"]
    assert "`order_card`" in out["evaluation_report"]


def test_forms_of_another_form_are_refused_with_their_fields(params):
    hsf = LabelledForms(pd.DataFrame([{"file_name": "a.png", "DATE": "8/28/89", "CITY": "Murray", "STATE": "KY",
                                       "ZIP": "42071"}]))
    with pytest.raises(ValueError, match="labelled with the fields DATE, CITY, STATE, ZIP, but form 'order_card'"):
        score_predictions(hsf, params, form="order_card", fieldreader=_read())


# --------------------------------------------------------------------------- the nodes directly
def test_nodes_called_directly_take_the_form(params):
    cards = _cards()
    tables = {"fieldreader": _read()}
    run = {**params, "methods": ["fieldreader"]}
    scores, errors = score_predictions(cards, run, form="order_card", **tables)
    metrics = summarise_metrics(scores, run, form="order_card")
    assert list(metrics.columns) == metric_columns(KEYS7) and set(errors["field"]) == {"AMOUNT", "ORDER_NO"}
    per_form, summary = score_normalized(cards, run, form="order_card", **tables)
    assert list(summary.columns) == typed_metric_columns(KEYS7)
    assert set(review_curves(cards, run, form="order_card", **tables)) == {"fieldreader"}
    cascade = {"method": "cascade", "fast": ["fieldreader"], "slow": []}
    assert guarantee_checks(cards, run, {}, {}, {}, cascade, form="order_card", **tables) == {}
    assert collect_failures(cards, run, form="order_card", **tables)["methods"] == []
    report = render_report(metrics, cards, run, normalized=summary, review={}, form=load_form("order_card"))
    assert "`order_card`" in report and "AMOUNT_norm" in report
    assert [t.get_text() for t in plot_key_accuracy(metrics, "order_card").axes[0].get_legend().get_texts()] == list(KEYS7)


def test_the_hsf_form_named_or_not_gives_the_same_report(params):
    murray = {"DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"}
    forms = LabelledForms(pd.DataFrame([{"file_name": "a.png", **murray}]))
    tables = {"rapidocr": predictions_from_records([{"file_name": "a.png", **murray, "ZIP": "42171"}])}
    run = {**params, "methods": ["rapidocr"]}
    scores, errors = score_predictions(forms, run, **tables)
    named, named_errors = score_predictions(forms, run, form="hsf_top", **tables)
    pd.testing.assert_frame_equal(scores, named)
    pd.testing.assert_frame_equal(errors, named_errors)
    metrics = summarise_metrics(scores, run)
    assert list(metrics.columns) == METRIC_COLUMNS
    pd.testing.assert_frame_equal(metrics, summarise_metrics(scores, run, form="hsf_top"))
    normalized = score_normalized(forms, run, **tables)[1]
    pd.testing.assert_frame_equal(normalized, score_normalized(forms, run, form="hsf_top", **tables)[1])
    info = {"run_id": "R1", "started_utc": "2026-12-01T00:00:00", "form": "hsf_top", "fields": list(KEYS)}
    plain = render_report(metrics, forms, run, run_info=info, normalized=normalized, review={})
    assert render_report(metrics, forms, run, run_info=info, normalized=normalized, review={}, form="hsf_top") == plain
    assert "- **Form**: `hsf_top` (fields DATE, CITY, STATE, ZIP)" in plain
    assert "Not measured on this form" not in plain and "## Review curve" in plain and "address_verified" in plain
    # the report's Form line is the evaluated form's, whatever the run recorded
    assert "`order_card`" not in render_report(metrics, forms, run, run_info={**info, "form": "order_card"},
                                               form="hsf_top")


# --------------------------------------------------------------------------- metrics over a form's fields
def test_metrics_over_a_forms_fields():
    labels = pd.DataFrame([{"file_name": n, **f} for n, f in GOLD.items()])
    preds = _read()
    per_form = score_forms(labels, preds, KEYS7)
    table = metrics_table([metrics_row("fieldreader", per_form, keys=KEYS7)], KEYS7)
    assert list(table.columns) == metric_columns(KEYS7) and table.loc[0, "CBA_ORDER_NO"] == pytest.approx(95.83)
    assert "CBA_ORDER_NO" in metrics_markdown(table) and " 95.83 " in metrics_markdown(table)
    assert metric_columns() == METRIC_COLUMNS
    errors = form_errors(labels, preds, "fieldreader", keys=KEYS7)
    assert errors["field"].tolist() == ["AMOUNT", "ORDER_NO"]
    assert form_errors(labels, preds, "fieldreader").empty  # the HSF form's four fields only: all right


def test_typed_normalization_compares_values_as_written_where_neither_normalizes():
    labels = pd.DataFrame([{"file_name": "a", **GOLD["c1.png"], "PHONE": "None"},
                           {"file_name": "b", **GOLD["c2.png"]}])
    preds = predictions_from_records([{"file_name": "a", **GOLD["c1.png"], "PHONE": "call me"},
                                      {"file_name": "b", **GOLD["c2.png"], "DATE": "Jan. 2, 23"}], KEYS7)
    per_form = score_forms_typed(labels, preds, ORDER).set_index("file_name")
    assert per_form.loc["a", "right_PHONE"] == 0.0  # blank label, unreadable reading: not the same
    assert per_form.loc["b", "right_DATE"] == 1.0 and per_form.loc["b", "exact"] == 0.0
    table = typed_metrics_table([typed_metrics_row("m", per_form.reset_index(), KEYS7)], KEYS7)
    assert table.loc[0, "PHONE_norm"] == 50.0 and table.loc[0, "DATE_norm"] == 100.0
    blank = predictions_from_records([{"file_name": "a", **GOLD["c1.png"], "PHONE": ""}], KEYS7)
    assert score_forms_typed(labels.iloc[:1], blank, ORDER).loc[0, "right_PHONE"] == 1.0


# --------------------------------------------------------------------------- select_forms: the form's size
def _image(size: tuple[int, int]) -> Image.Image:
    image = Image.new("L", size, 255)
    ImageDraw.Draw(image).rectangle([size[0] // 10, size[1] // 3, size[0] // 2, size[1] // 2], fill=0)
    return image


def _card_forms(size: tuple[int, int]) -> LabelledForms:
    labels = pd.DataFrame([{"file_name": n, **f} for n, f in GOLD.items()])
    return LabelledForms(labels, {n: _image(size) for n in GOLD}, source="cards", keys=KEYS7)


def test_image_size_null_is_the_forms_size():
    assert EvaluationSettings().input_checks.image_size is None == InputChecksSettings().image_size
    assert expected_size(None, load_form("hsf_top")) == (2460, 350)  # the HSF crop, as before
    assert expected_size(None, ORDER) == (1700, 1100)  # the card's page: it has no crop
    assert expected_size([10, 20], ORDER) == (10, 20) and expected_size("any", ORDER) is None
    with pytest.raises(ValueError, match="image_size"):
        expected_size("big", ORDER)

    params = {"input_checks": {"image_size": None}}
    cards = _card_forms((1700, 1100))
    chosen = select_evaluation_forms(LabelledForms.empty("no split"), cards, params, "order_card")
    assert len(chosen) == 3 and chosen.keys == KEYS7 and list(chosen.labels.columns) == ["file_name", "split", *KEYS7]
    assert chosen.labels.loc[2, "ZIP"] == "02134" and not chosen.problems
    small = select_evaluation_forms(LabelledForms.empty("no split"), _card_forms((1700, 1000)),
                                    {"input_checks": {"image_size": "any"}}, "order_card")
    assert len(small) == 3
    with pytest.raises(ValueError, match="all 3 forms were rejected"):
        select_evaluation_forms(LabelledForms.empty("no split"), _card_forms((2460, 350)), params, "order_card")
    with pytest.raises(ValueError, match="all 3 forms were rejected .*expected 2460x350"):  # cards are not HSF crops
        select_evaluation_forms(LabelledForms.empty("no split"), cards, params, "hsf_top")
    hsf = LabelledForms(pd.DataFrame([{"file_name": "a.png", "DATE": "8/28/89", "CITY": "Murray", "STATE": "KY",
                                       "ZIP": "42071"}]), {"a.png": _image((1700, 1100))}, source="hsf")
    with pytest.raises(ValueError, match="form 'order_card' has the fields ORDER_NO, DATE, .* missing"):
        select_evaluation_forms(LabelledForms.empty("no split"), hsf, params, "order_card")


def test_hsf_crops_pass_the_default_size_check():
    murray = {"DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"}
    forms = LabelledForms(pd.DataFrame([{"file_name": "a.png", **murray}]), {"a.png": _image((2460, 350))},
                          source="x")
    for form in (None, "hsf_top"):
        chosen = select_evaluation_forms(LabelledForms.empty("no split"), forms, {}, form)
        assert len(chosen) == 1 and chosen.keys == KEYS
    assert len(select_evaluation_forms(forms, LabelledForms.empty("none"), {"input_checks": {}})) == 1


def test_the_score_command_tables_take_the_forms_fields():
    from handwriting_pipeline.score import score_tables

    labels = pd.DataFrame([{"file_name": n, **f} for n, f in GOLD.items()])
    table, reports = score_tables(labels, {"fieldreader": _read()}, KEYS7)
    assert list(table.columns) == metric_columns(KEYS7) and table.loc[0, "FLA"] == pytest.approx(33.33)
    assert reports["fieldreader"].matched == 3
