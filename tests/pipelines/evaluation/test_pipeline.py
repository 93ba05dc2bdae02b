"""The evaluation pipeline: run end to end through Kedro on predictions from the recorded outputs."""

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from matplotlib.figure import Figure

from handwriting_pipeline.cost import form_costs
from handwriting_pipeline.datasets.forms import LabelledForms, read_donut_folder
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.metrics import METHODS, METRIC_COLUMNS
from handwriting_pipeline.pipelines.evaluation import create_pipeline
from handwriting_pipeline.pipelines.evaluation.nodes import (
    guarantee_checks,
    guarantee_report_lines,
    plot_accuracy,
    render_report,
    score_predictions,
    selected_methods,
    summarise_metrics,
)
from handwriting_pipeline.predictions import empty_predictions, predictions_from_records
from handwriting_pipeline.recorded_csv import read_predictions_csv
from handwriting_pipeline.score import score_tables

PROJECT = Path(__file__).resolve().parents[3]
OUTPUTS = ["evaluation_metrics", "evaluation_report", "evaluation_accuracy_plot", "evaluation_key_accuracy_plot",
           "evaluation_form_scores", "evaluation_form_errors", "evaluation_normalized_forms",
           "evaluation_normalized_metrics", "evaluation_failures", "evaluation_review_curves",
           "evaluation_review_curve_plot", "evaluation_guarantee"]
MURRAY = {"DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42171"}


class _KeptDataset(MemoryDataset):
    """A MemoryDataset the runner does not release, so the test can read intermediate outputs."""

    def _release(self) -> None:
        pass


@pytest.fixture(scope="module")
def params():
    conf = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")
    return conf["parameters"]["evaluation"]


@pytest.fixture(scope="module")
def ensemble_params():
    conf = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")
    return conf["parameters"]["ensemble"]


@pytest.fixture(scope="module")
def validation_forms(shared_validation):
    forms, problems = read_donut_folder(shared_validation, split="evaluation")
    assert not problems
    return forms


@pytest.fixture(scope="module")
def recorded(shared_ocr_outputs):
    """Predictions tables like the recorded engines output, made from the recorded CSVs."""
    textract = read_predictions_csv(shared_ocr_outputs / "textract.csv")
    textract["seconds"] = 0.02
    azure = read_predictions_csv(shared_ocr_outputs / "azure_form_recognizer.csv")
    return {"recorded_textract": textract, "recorded_azure_form_recognizer": azure}


def _run(forms, params, tables, ensemble=None):
    datasets = {"evaluation_forms": MemoryDataset(forms), "params:evaluation": MemoryDataset(params),
                "params:ensemble": MemoryDataset(ensemble or {"inputs": []}), "params:form": MemoryDataset("hsf_top"),
                "run_info": MemoryDataset({"run_id": "2026-11-30T00.00.00.000Z", "started_utc": "2026-11-30T00:00:00"})}
    for method in METHODS:
        datasets[f"predictions_{method}"] = MemoryDataset(tables.get(method, empty_predictions()))
    datasets["cascade_escalation"] = MemoryDataset(tables.get("cascade_escalation", {}))
    datasets["engine_choices"] = MemoryDataset(tables.get("engine_choices", {}))
    datasets["engine_calibrations"] = MemoryDataset(tables.get("engine_calibrations", {}))
    datasets["engine_guarantees"] = MemoryDataset(tables.get("engine_guarantees", {}))
    datasets["engine_recalibrations"] = MemoryDataset(tables.get("engine_recalibrations", {}))
    datasets.update({name: _KeptDataset() for name in OUTPUTS})
    catalog = DataCatalog(datasets=datasets)
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog[name].load() for name in OUTPUTS}


def test_pipeline_end_to_end_on_recorded_outputs(validation_forms, params, recorded, shared_ocr_outputs, caplog):
    caplog.set_level(logging.INFO)
    out = _run(validation_forms, params, recorded)
    metrics = out["evaluation_metrics"]
    assert list(metrics.columns) == METRIC_COLUMNS
    # only the methods that produced rows, in METHODS order
    assert metrics["method"].tolist() == ["recorded_textract", "recorded_azure_form_recognizer"]
    assert (metrics["n"] == len(validation_forms)).all()

    # the same numbers as the score command on the CSVs (shared code)
    labels = validation_forms.labels[["file_name", *KEYS]]
    cli, _ = score_tables(labels, {
        "recorded_textract": read_predictions_csv(shared_ocr_outputs / "textract.csv"),
        "recorded_azure_form_recognizer": read_predictions_csv(shared_ocr_outputs / "azure_form_recognizer.csv")})
    score_cols = METRIC_COLUMNS[:9]
    pd.testing.assert_frame_equal(metrics[score_cols], cli[score_cols])

    # cost: one page per predicted validation form at the configured page prices
    scores = out["evaluation_form_scores"]
    cost = params["cost"]
    for method, key in [("recorded_textract", "textract_analyze_document_forms"),
                        ("recorded_azure_form_recognizer", "azure_prebuilt_document")]:
        matched = int(scores.loc[scores["method"] == method, "has_prediction"].sum())
        assert 0 < matched < len(validation_forms)
        row = metrics.set_index("method").loc[method]
        assert row["cost_usd"] == pytest.approx(matched * cost["page_price_usd"][key])
    assert metrics.set_index("method").loc["recorded_textract", "seconds_per_form"] == pytest.approx(0.02)
    assert np.isnan(metrics.set_index("method").loc["recorded_azure_form_recognizer", "seconds_per_form"])

    # per-form scores and errors
    assert len(scores) == 2 * len(validation_forms)
    errors = out["evaluation_form_errors"]
    assert list(errors.columns[:5]) == ["method", "file_name", "field", "gold", "predicted"]
    row = errors[(errors["method"] == "recorded_textract") & (errors["file_name"] == "f1598_49.png")]
    assert row.set_index("field")["predicted"].to_dict() == {"DATE": "Sept.16'89", "CITY": "Dallas , Tx.",
                                                              "STATE": "None", "ZIP": "None"}
    wrong_forms = errors.groupby("method")["file_name"].nunique()
    exact = scores.groupby("method")["exact"].sum()
    for method in metrics["method"]:
        assert wrong_forms[method] + exact[method] == len(validation_forms)

    # report, plots, and the unknown names were logged rather than dropped silently
    report = out["evaluation_report"]
    assert f"{len(validation_forms)} labelled forms from {validation_forms.source}" in report
    assert "| recorded_textract " in report and "Not run (empty predictions): rapidocr" in report
    assert isinstance(out["evaluation_accuracy_plot"], Figure)
    assert isinstance(out["evaluation_key_accuracy_plot"], Figure)
    # the review curve of both (they carry confidences): FLA only rises, at 0 % it is the metric
    curves = out["evaluation_review_curves"]
    assert list(curves) == ["recorded_textract", "recorded_azure_form_recognizer"]
    for method, item in curves.items():
        fla = [row["FLA"] for row in item["curve"]]
        assert fla == sorted(fla) and fla[0] == pytest.approx(metrics.set_index("method").loc[method, "FLA"], abs=0.01)
    assert curves["recorded_textract"]["threshold"] is None  # its confidences are 0-100: no threshold at 0.6
    assert curves["recorded_azure_form_recognizer"]["threshold"]["threshold"] == params["review_threshold"]
    assert "## Review curve" in report and "| recorded_textract | " in report.split("## Review curve")[1]
    assert isinstance(out["evaluation_review_curve_plot"], Figure)
    assert "predictions for forms not in the labels were ignored" in caplog.text


def test_methods_parameter_picks_and_orders_rows(validation_forms, params, recorded):
    chosen = {**params, "methods": "recorded_azure_form_recognizer,recorded_textract"}
    out = _run(validation_forms, chosen, recorded)
    assert out["evaluation_metrics"]["method"].tolist() == ["recorded_textract", "recorded_azure_form_recognizer"]
    only = _run(validation_forms, {**params, "methods": ["recorded_azure_form_recognizer"]}, recorded)
    assert only["evaluation_metrics"]["method"].tolist() == ["recorded_azure_form_recognizer"]


def test_selected_methods():
    assert selected_methods({}) == list(METHODS)
    assert selected_methods({"methods": "all"}) == list(METHODS)
    assert selected_methods({"methods": " donut, llm "}) == ["donut", "llm"]
    with pytest.raises(ValueError, match="unknown methods \\['gpt'\\]"):
        selected_methods({"methods": ["donut", "gpt"]})


def test_no_method_run_gives_an_empty_report(params):
    forms = LabelledForms(pd.DataFrame([{"file_name": "a.png", **MURRAY}]))
    scores, errors = score_predictions(forms, params, **{m: empty_predictions() for m in METHODS})
    metrics = summarise_metrics(scores, params)
    assert list(metrics.columns) == METRIC_COLUMNS and metrics.empty and errors.empty
    assert "1 labelled forms from" in render_report(metrics, forms, params)
    assert "No method produced predictions" in render_report(metrics, forms, params)
    assert isinstance(plot_accuracy(metrics), Figure)


def test_missing_forms_count_as_none_and_unknown_are_ignored(params):
    forms = LabelledForms(pd.DataFrame([{"file_name": "a.png", **MURRAY}, {"file_name": "b.png", **MURRAY}]))
    preds = predictions_from_records([{"file_name": "a.png", **MURRAY, "seconds": 2.0},
                                      {"file_name": "zz.png", **MURRAY, "seconds": 100.0}])
    scores, _ = score_predictions(forms, {**params, "methods": ["rapidocr"]}, rapidocr=preds)
    metrics = summarise_metrics(scores, params).iloc[0]
    assert metrics["n"] == 2 and metrics["FLA"] == 50.0 and metrics["CBA"] == 50.0
    # time and cost of the unknown form are not counted
    assert metrics["seconds_per_form"] == 2.0
    assert metrics["cost_usd"] == pytest.approx(round(2.0 * params["cost"]["compute_usd_per_hour"]["cpu"] / 3600, 4))


def test_form_costs_pages_tokens_and_compute():
    cost = {"page_price_usd": {"forms": 0.05}, "method_page_price": {"api": "forms"}, "default_pages_per_form": 1,
            "token_price_usd_per_1m": {"m": {"input": 1.0, "output": 4.0}}, "method_llm_model": {"llm": "m"},
            "compute_usd_per_hour": {"cpu": 3.6}, "method_compute": {"local": "cpu"}}
    table = predictions_from_records([
        {"file_name": "a", "pages": 2}, {"file_name": "b", "pages": 0}, {"file_name": "c", "error": "timeout"}])
    assert form_costs(table, "api", cost).tolist() == pytest.approx([0.10, 0.05, 0.0])
    tokens = predictions_from_records([{"file_name": "a", "input_tokens": 1000, "output_tokens": 500}])
    assert form_costs(tokens, "llm", cost).tolist() == pytest.approx([(1000 * 1.0 + 500 * 4.0) / 1e6])
    timed = predictions_from_records([{"file_name": "a", "seconds": 10.0}, {"file_name": "b"}])
    assert form_costs(timed, "local", cost).tolist() == pytest.approx([0.01, 0.0])
    assert form_costs(timed, "other", cost).tolist() == [0.0, 0.0]
    unpriced = {**cost, "method_llm_model": {"llm": "unknown-model"}}
    assert form_costs(tokens, "llm", unpriced).isna().all()


def test_include_cost_of_adds_merged_methods(params):
    forms = LabelledForms(pd.DataFrame([{"file_name": "a.png", **MURRAY}]))
    preds = predictions_from_records([{"file_name": "a.png", **MURRAY, "input_tokens": 1_000_000}])
    cost = {**params["cost"], "include_cost_of": {"llm": ["textract"]}}
    run = {**params, "cost": cost, "methods": ["textract", "llm"]}
    scores, _ = score_predictions(forms, run, textract=preds, llm=preds)
    metrics = summarise_metrics(scores, run).set_index("method")["cost_usd"]
    page = cost["page_price_usd"][cost["method_page_price"]["textract"]]
    token = cost["token_price_usd_per_1m"][cost["method_llm_model"]["llm"]]["input"]
    assert metrics["textract"] == pytest.approx(page)
    assert metrics["llm"] == pytest.approx(page + token)


def test_the_cascade_costs_its_fast_engines_for_every_form_and_the_others_for_the_escalated_share(params):
    names = ("a.png", "b.png")
    forms = LabelledForms(pd.DataFrame([{"file_name": n, **MURRAY} for n in names]))
    preds = predictions_from_records([{"file_name": n, **MURRAY, "pages": 1} for n in names])
    run = {**params, "methods": ["recorded_textract", "recorded_azure_form_recognizer", "cascade"]}
    scores, _ = score_predictions(forms, run, recorded_textract=preds, recorded_azure_form_recognizer=preds,
                                  cascade=preds)
    escalation = {"method": "cascade", "fast": ["recorded_azure_form_recognizer"], "slow": ["recorded_textract"], "forms": 2,
                  "escalated": 1, "escalated_share": 0.5, "threshold": 0.3, "escalate_invalid": True}
    cost = summarise_metrics(scores, run, cascade=escalation).set_index("method")["cost_usd"]
    assert cost["cascade"] > 0
    assert cost["cascade"] == pytest.approx(cost["recorded_azure_form_recognizer"] + 0.5 * cost["recorded_textract"],
                                            abs=1e-4)
    assert summarise_metrics(scores, run).set_index("method").loc["cascade", "cost_usd"] == 0.0  # no report: own cost
    metrics = summarise_metrics(scores, run, cascade=escalation)
    report = render_report(metrics, forms, run, cascade=escalation)
    assert "| cascade " in report and "## Cascade" in report
    assert "1 of 2 forms (50.0 %) went on to the slower engines (recorded_textract)" in report
    assert "## Cascade" not in render_report(metrics[metrics["method"] != "cascade"], forms, run, cascade=escalation)


def test_pipeline_reads_every_method_and_writes_the_report():
    pipeline = create_pipeline()
    assert pipeline.inputs() == {"evaluation_forms", "params:evaluation", "params:ensemble", "params:form", "run_info",
                                 "cascade_escalation", "engine_choices", "engine_calibrations", "engine_guarantees",
                                 "engine_recalibrations",
                                 *(f"predictions_{m}" for m in METHODS)}
    assert pipeline.all_outputs() == set(OUTPUTS)


def test_catalog_entries_save_the_report(tmp_path, params):
    """The catalog_evaluation.yml entries (real dataset types, versioned) save what the nodes return."""
    conf = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")
    entries = {name: dict(conf["catalog"][name]) for name in OUTPUTS}
    assert entries["evaluation_metrics"]["filepath"] == "data/08_reporting/metrics.csv"
    assert entries["evaluation_report"]["filepath"] == "data/08_reporting/metrics.md"
    for entry in entries.values():
        entry["filepath"] = str(tmp_path / entry["filepath"])
    catalog = DataCatalog.from_config(entries)
    forms = LabelledForms(pd.DataFrame([{"file_name": "a.png", **MURRAY}]))
    preds = predictions_from_records([{"file_name": "a.png", **MURRAY, "ZIP": "01234"}])
    scores, errors = score_predictions(forms, {**params, "methods": ["rapidocr"]}, rapidocr=preds)
    metrics = summarise_metrics(scores, params)
    catalog.save("evaluation_form_scores", scores)
    catalog.save("evaluation_form_errors", errors)
    catalog.save("evaluation_metrics", metrics)
    catalog.save("evaluation_report", render_report(metrics, forms, params))
    catalog.save("evaluation_accuracy_plot", plot_accuracy(metrics))
    assert catalog.load("evaluation_form_errors")["predicted"].tolist() == ["01234"]
    loaded = catalog.load("evaluation_metrics")
    assert list(loaded.columns) == METRIC_COLUMNS and loaded["method"].tolist() == ["rapidocr"]
    assert list((tmp_path / "data/08_reporting/metrics.csv").glob("*/metrics.csv"))
    assert list((tmp_path / "data/08_reporting/accuracy.png").glob("*/accuracy.png"))


def test_the_vote_costs_what_the_paid_engines_it_votes_over_cost(params, validation_forms, shared_ocr_outputs):
    """A vote over recorded paid engines is not free (conf/base: include_cost_of vote: inputs)."""
    from handwriting_pipeline.ensemble.vote import vote

    names = set(validation_forms.labels["file_name"])
    tables = {m: read_predictions_csv(shared_ocr_outputs / f).pipe(lambda t: t[t["file_name"].isin(names)])
              for m, f in (("recorded_textract", "textract.csv"),
                           ("recorded_azure_form_recognizer", "azure_form_recognizer.csv"))}
    voted, _ = vote(tables, {})
    run = {**params, "methods": [*tables, "vote"]}
    scores, _ = score_predictions(validation_forms, run, vote=voted, **tables)
    metrics = summarise_metrics(scores, run).set_index("method")["cost_usd"]
    assert metrics["recorded_textract"] > 0 and metrics["recorded_azure_form_recognizer"] > 0
    assert metrics["vote"] == pytest.approx(metrics["recorded_textract"] + metrics["recorded_azure_form_recognizer"],
                                            abs=1e-3)


def test_an_ensemble_costs_its_inputs_not_every_engine_of_the_run(params, ensemble_params):
    """An offline vote over rapidocr + fieldreader, with recorded paid engines extracted beside it,
    costs what its two inputs cost (plus its own compute), not the paid engines' pages; the LLM
    over its own inputs carries those and its tokens."""
    forms = LabelledForms(pd.DataFrame([{"file_name": "a.png", **MURRAY}]))
    timed = predictions_from_records([{"file_name": "a.png", **MURRAY, "seconds": 3600.0}])
    paid = predictions_from_records([{"file_name": "a.png", **MURRAY, "pages": 1}])
    llm = predictions_from_records([{"file_name": "a.png", **MURRAY, "input_tokens": 1_000_000}])
    tables = {"rapidocr": timed, "fieldreader": timed, "recorded_textract": paid,
              "recorded_azure_form_recognizer": paid, "vote": timed, "llm": llm}
    run = {**params, "methods": list(tables)}
    scores, _ = score_predictions(forms, run, **tables)
    ensemble = {**ensemble_params, "inputs": "rapidocr;fieldreader",
                "llm": {**ensemble_params["llm"], "inputs": ["fieldreader", "recorded_textract"]}}
    metrics = summarise_metrics(scores, run, ensemble).set_index("method")["cost_usd"]
    cost = params["cost"]
    cpu = cost["compute_usd_per_hour"]["cpu"]
    textract = cost["page_price_usd"][cost["method_page_price"]["recorded_textract"]]
    tokens = cost["token_price_usd_per_1m"][cost["method_llm_model"]["llm"]]["input"]
    assert metrics["rapidocr"] == pytest.approx(cpu, abs=1e-4) and metrics["fieldreader"] == 0.0
    assert metrics["recorded_textract"] == pytest.approx(textract)
    assert metrics["vote"] == pytest.approx(2 * cpu, abs=1e-4)  # its own compute + rapidocr's; no pages
    assert metrics["llm"] == pytest.approx(tokens + 0.0 + textract, abs=1e-4)
    # without inputs named (the default: every engine that produced output) the vote carries all of them
    every = summarise_metrics(scores, run, {**ensemble_params, "inputs": []}).set_index("method")["cost_usd"]
    assert every["vote"] == pytest.approx(cpu + cpu + textract + metrics["recorded_azure_form_recognizer"], abs=1e-4)


def test_the_report_names_the_components_chosen_on_out_of_fold_forms_and_their_intervals(params):
    names = ("a.png", "b.png")
    forms = LabelledForms(pd.DataFrame([{"file_name": n, **MURRAY} for n in names]))
    preds = predictions_from_records([{"file_name": n, **MURRAY, "pages": 1} for n in names])
    run = {**params, "methods": ["recorded_textract"]}
    metrics = summarise_metrics(score_predictions(forms, run, recorded_textract=preds)[0], run)
    choices = {"recorded_textract": [
        {"component": "lexicon", "on": True, "setting": "{'penalty': 4.0}", "forms": 1400, "fla_without": 46.0,
         "fla_with": 50.5, "gain": 4.5, "low": 3.1, "high": 5.9, "note": "interval above 0: on"},
        {"component": "style layer", "on": False, "setting": "", "forms": 1400, "fla_without": 50.5,
         "fla_with": 50.5, "gain": None, "low": None, "high": None, "note": "not measured: off"}],
        "not_evaluated": [{"component": "x"}]}
    report = render_report(metrics, forms, run, choices=choices)
    assert "## Components chosen on out-of-fold forms" in report
    assert "| recorded_textract | lexicon | on | 46.0 | 50.5 | +4.50 [+3.10, +5.90] | 1400 | interval above 0: on |" in report
    assert "| recorded_textract | style layer | off | 50.5 | 50.5 | – | 1400 | not measured: off |" in report
    assert "not_evaluated" not in report  # only engines in the table
    assert "Components chosen" not in render_report(metrics, forms, run, choices={})


def test_the_cascade_guarantee_is_checked_on_the_evaluated_forms_and_reported(params):
    names = [f"f{i}.png" for i in range(6)]
    forms = LabelledForms(pd.DataFrame([{"file_name": n, **MURRAY} for n in names]))
    wrong_zip = {**MURRAY, "ZIP": "42071"}
    fast = predictions_from_records([{"file_name": n, **(wrong_zip if i < 2 else MURRAY), "DATE_conf": 0.9,
                                      "CITY_conf": 0.9, "STATE_conf": 0.9, "ZIP_conf": 0.95} for i, n in enumerate(names)])
    slow = predictions_from_records([{"file_name": n, **MURRAY, "DATE_conf": 0.9, "CITY_conf": 0.9, "STATE_conf": 0.9,
                                      "ZIP_conf": 0.9} for n in names])
    engines = ["recorded_azure_form_recognizer", "recorded_textract"]
    cascade = {"method": "cascade", "fast": engines[:1], "slow": engines[1:], "forms": 6, "escalated": 0,
               "escalated_share": 0.0, "threshold": 0.0, "escalate_invalid": False}
    fields = {"DATE": {"threshold": 0.0}, "CITY": {"threshold": None}, "STATE": {"threshold": 0.0},
              "ZIP": {"threshold": 0.0}}
    entry = {"alpha": 0.05, "delta": 0.1, "fitted_on": "1400 out-of-fold train forms", "fields": fields}
    key = "cascade:" + "+".join(sorted(engines))
    ensemble = {"cascade": {"threshold": 0.0, "escalate_invalid": False}}
    tables = {engines[0]: fast, engines[1]: slow}
    checked = guarantee_checks(forms, params, ensemble, {}, {key: {"writing": entry}}, cascade, **tables)
    level = checked["levels"]["writing"]
    assert checked["applies"] and checked["key"] == key and level["alpha"] == 0.05
    assert level["fields"]["CITY"]["sure"] == 0 and level["fields"]["CITY"]["review_pct"] == 100.0  # no threshold
    zips = level["fields"]["ZIP"]
    assert zips["sure"] == 6 and zips["errors"] == 2 and zips["holds"] is False and zips["ci95"][0] < 1 / 3 < zips["ci95"][1]
    assert level["all"]["n"] == 24 and level["all"]["sure"] == 18
    report = "\n".join(guarantee_report_lines(checked))
    assert "## Guarantee of the cascade's sure fields" in report and "| ZIP | 0.0 | 6 / 6 | 2 | 33.33 [" in report
    curve = checked["value_curve"]
    assert [p["reviewed_pct"] for p in curve][:2] == [0, 5] and curve[0]["value_right_pct"] == round(100 * 22 / 24, 2)
    assert curve[-1]["value_right_pct"] >= curve[0]["value_right_pct"]  # fixing fields never makes it worse
    assert "## Review curve of values (cascade)" in report
    other = guarantee_checks(forms, params, ensemble, {}, {}, cascade, **tables)
    assert other["key"] == key and other["applies"] is False and "levels" not in other
    assert guarantee_checks(forms, params, ensemble, {}, {key: {"writing": entry}}, {}, **tables) == {}
    assert "No guarantee was fitted for" in "\n".join(guarantee_report_lines(other))
