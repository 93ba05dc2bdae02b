"""The digitize pipeline with a toy engine: outputs, reasons, resume without a second read,
the Kedro pipeline and its files, the exit status."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.runner import SequentialRunner

from handwriting_pipeline import registry
from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.digitize import ImageInputsDataset, RunFileDataset, list_images
from handwriting_pipeline.digitize.core import COLUMNS, digitize_records, make_plan
from handwriting_pipeline.pipeline_registry import register_pipelines
from handwriting_pipeline.pipelines.digitize.nodes import check_digitized

from .toy import Killed, ToyEngine, calls

PROJECT = Path(__file__).resolve().parents[3]


class NoModel:
    available, reason = False, "no model in this test"


def _params():
    return OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")["parameters"]


def _plan(tmp_path, log, partition_size=3, workers=None, **toy):
    params = _params()
    digitize = {**params["digitize"], "engines": ["toy"], "progress": False, "partition_size": partition_size,
                "workers": workers}
    extract = {**params["extract"], "toy": toy}
    return make_plan(digitize, extract, params["ensemble"], {}, ResponseCache(tmp_path / "cache"),
                     datasets={}) if log is None else make_plan(
        digitize, {**extract, "toy": {**toy, "log": str(log)}}, params["ensemble"], {},
        ResponseCache(tmp_path / "cache"), datasets={})


def _key(record, root) -> str:
    rel = record["source"].removeprefix(str(root) + "/")
    return rel if record["page"] == 1 and "two_pages" not in rel else f"{rel}#{record['page']}"


@pytest.fixture
def toy(monkeypatch):
    monkeypatch.setitem(registry.ENGINES, "toy", ToyEngine)


def test_records_have_fields_confidence_review_and_reasons(toy, tmp_path, mixed_folder):
    folder, expected = mixed_folder
    records = list(digitize_records(_plan(tmp_path, tmp_path / "calls.log"), list_images(folder)))
    by_key = {_key(r, folder.resolve()): r for r in records}
    assert {k: r["error"] for k, r in by_key.items()} == expected
    good = by_key["page_b.png"]
    assert set(COLUMNS) <= set(good)
    assert (good["CITY"], good["STATE"], good["ZIP"]) == ("Murray", "KY", "42071")
    assert good["STATE_code"] == "KY" and good["ZIP5"] == "42071" and good["CITY_verified"] is True
    assert good["method"] == _params()["digitize"]["method"] and good["engines"] == "toy" and good["kind"] == "page"
    assert good["needs_review"] == ["DATE"]  # the toy's DATE is no date, at confidence 0.3
    [item] = good["review"]
    assert item["field"] == "DATE" and item["candidates"] == {"toy": good["DATE"]}
    assert item["crop"].startswith("review/") and item["crop"] in good["_files"]
    bad = by_key["notes.png"]
    assert bad["DATE"] == "None" and bad["needs_review"] == [] and "_files" not in bad


def test_a_killed_run_resumes_without_reading_a_form_twice(toy, tmp_path, mixed_folder):
    folder, expected = mixed_folder
    log = tmp_path / "calls.log"
    inputs = list_images(folder)
    with pytest.raises(Killed):  # one process, so "killed after 3 reads" counts every read of the run
        list(digitize_records(_plan(tmp_path, log, partition_size=2, workers=1, stop_after=3), inputs))
    first = calls(log)
    assert len(first) == 3
    records = list(digitize_records(_plan(tmp_path, log, partition_size=2), inputs))
    second = calls(log)[3:]
    readable = sum(1 for e in expected.values() if e is None)
    assert len(first) + len(second) == readable and not set(first) & set(second)
    assert sum(1 for r in records if not r["error"]) == readable
    # a third run reads nothing at all
    list(digitize_records(_plan(tmp_path, log), inputs))
    assert len(calls(log)) == readable


def test_the_kedro_pipeline_writes_the_run_files(toy, tmp_path, mixed_folder):
    folder, expected = mixed_folder
    params = _params()
    params["digitize"].update(engines=["toy"], progress=False)
    out = tmp_path / "digitize"
    files = {"digitized_forms": "forms.jsonl", "digitized_forms_csv": "forms.csv",
             "digitize_review_queue": "review_queue.csv", "digitize_summary": "summary.json"}
    catalog = DataCatalog(datasets={
        "digitize_inputs": ImageInputsDataset(input_dir=str(folder)),
        **{f"params:{k}": MemoryDataset(params[k]) for k in ("digitize", "extract", "ensemble")},
        "params:form": MemoryDataset("hsf_top"),
        "extract_cache": MemoryDataset(ResponseCache(tmp_path / "cache"), copy_mode="assign"),
        "ensemble_cache": MemoryDataset(ResponseCache(tmp_path / "llm"), copy_mode="assign"),
        "extract_credentials": MemoryDataset({}), "ensemble_credentials": MemoryDataset({}),
        **{name: MemoryDataset(NoModel(), copy_mode="assign") for method in registry.engine_methods()
           for name in registry.engine_class(method).catalog_inputs.values()},
        # one save version for the run, as a Kedro session gives every versioned dataset
        **{name: RunFileDataset(str(out), file, version=Version(None, "2026-11-30T00.00.00.000Z"))
           for name, file in files.items()},
    })
    SequentialRunner().run(register_pipelines()["digitize"], catalog)
    latest = out / "latest"
    assert latest.is_symlink() and (latest / "forms.jsonl").is_file()
    assert len(list((out / "runs").iterdir())) == 1
    lines = [json.loads(line) for line in (latest / "forms.jsonl").read_text().splitlines()]
    assert len(lines) == len(expected) and all("_files" not in r for r in lines)
    rows = list(csv.DictReader((latest / "forms.csv").open()))
    assert list(rows[0])[: len(COLUMNS)] == COLUMNS and len(rows) == len(expected)
    queue = list(csv.DictReader((latest / "review_queue.csv").open()))
    readable = sum(1 for e in expected.values() if e is None)
    assert len(queue) == readable and {q["field"] for q in queue} == {"DATE"}
    assert all((latest / q["crop"]).is_file() for q in queue)
    assert json.loads(queue[0]["candidates"]) == {"toy": queue[0]["chosen"]}
    summary = json.loads((latest / "summary.json").read_text())
    assert summary["read"] == readable and summary["rejected"] == len(expected) - readable
    assert summary["form"] == "hsf_top" and summary["fields"] == ["DATE", "CITY", "STATE", "ZIP"]
    assert summary["needs_review"] == readable and summary["rejected_by_reason"]["blank form"] == 1


def test_the_run_fails_only_when_nothing_could_be_read():
    check_digitized({"forms": 3, "read": 1, "rejected_by_reason": {"not an image": 2}})
    with pytest.raises(RuntimeError, match="none of the 2 input images could be read"):
        check_digitized({"forms": 2, "read": 0, "rejected_by_reason": {"not an image": 2}})


def test_unknown_or_unready_engines_stop_before_any_read(toy, tmp_path):
    params = _params()
    with pytest.raises(RuntimeError, match="Unknown engine 'nope'"):
        make_plan({**params["digitize"], "engines": ["nope"]}, params["extract"], params["ensemble"])
    with pytest.raises(RuntimeError, match="fieldreader: no trained model"):
        make_plan({**params["digitize"], "method": "fieldreader"}, params["extract"], params["ensemble"],
                  datasets={"fieldreader_model": NoModel()})
    # the default: engines with default = True that read images; untrained ones skipped
    models = {d: NoModel() for d in ("fieldreader_model", "donut_model")}
    plan = make_plan({**params["digitize"], "engines": "default"}, {**params["extract"], "toy": {}},
                     params["ensemble"], datasets=models)
    # an engine without a calibration stays out of the default vote (as in the ensemble pipeline)
    assert "rapidocr" in plan.methods and "toy" not in plan.methods
    ensemble = {**params["ensemble"], "vote": {**params["ensemble"]["vote"], "calibration": {
        **params["ensemble"]["vote"]["calibration"], "toy": params["ensemble"]["vote"]["calibration"]["rapidocr"]}}}
    plan = make_plan({**params["digitize"], "engines": "default"}, {**params["extract"], "toy": {}}, ensemble,
                     datasets=models)
    assert "toy" in plan.methods and "recorded_textract" not in plan.methods and "donut" not in plan.methods


@pytest.mark.parametrize("threshold, slow_reads", [(0.0, 0), (1.01, None)])
def test_the_cascade_sends_only_doubtful_forms_to_the_slower_engine(monkeypatch, tmp_path, mixed_folder, threshold,
                                                                    slow_reads):
    """digitize.method=cascade: the fast reader reads every form; the other engine only those the
    fast reader is unsure of (none at threshold 0, every one above 1); records name who read them."""
    from .toy import FastToyEngine

    monkeypatch.setitem(registry.ENGINES, "toy", ToyEngine)
    monkeypatch.setitem(registry.ENGINES, "fasttoy", FastToyEngine)
    folder, expected = mixed_folder
    params = _params()
    fast_log, slow_log = tmp_path / "fast.log", tmp_path / "slow.log"
    digitize = {**params["digitize"], "method": "cascade", "engines": ["toy", "fasttoy"], "progress": False,
                "workers": 1}
    ensemble = {**params["ensemble"], "cascade": {"threshold": threshold, "escalate_invalid": False}}
    extract = {**params["extract"], "toy": {"log": str(slow_log)}, "fasttoy": {"log": str(fast_log)}}
    plan = make_plan(digitize, extract, ensemble, {}, ResponseCache(tmp_path / "cache"), datasets={})
    records = list(digitize_records(plan, list_images(folder)))
    readable = sum(1 for e in expected.values() if e is None)
    assert len(calls(fast_log)) == readable
    assert len(calls(slow_log)) == (readable if slow_reads is None else slow_reads)
    read = [r for r in records if not r["error"]]
    assert len(read) == readable
    assert {frozenset(r["engines"].split(";")) for r in read} == \
        ({frozenset({"fasttoy"})} if slow_reads == 0 else {frozenset({"fasttoy", "toy"})})
