"""benchmarks/review/guarantee_benchmark.py on a handful of shared forms: the table's structure,
and every threshold fitted on the train rows only (validation labels never move it)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from handwriting_pipeline.score import read_labels
from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "review" / "guarantee_benchmark.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT, "guarantee_benchmark")


@pytest.fixture(scope="module")
def inputs(bench, shared_hsf_top: Path, shared_ocr_outputs: Path):
    from handwriting_pipeline.recorded_csv import read_predictions_csv

    tables = {"recorded_textract": read_predictions_csv(shared_ocr_outputs / "textract.csv", 100.0),
              "recorded_azure_form_recognizer": read_predictions_csv(shared_ocr_outputs / "azure_form_recognizer.csv")}
    params, options = bench.settings()
    labels = {"train": read_labels(shared_hsf_top / "train").head(120),
              "validation": read_labels(shared_hsf_top / "validation").head(20)}
    return tables, params, options, labels


def _thresholds(table: dict) -> list:
    return [(level, e["alpha"], e["thresholds"]) for level, entries in table["levels"].items() for e in entries]


def test_table_structure(bench, inputs):
    tables, params, options, labels = inputs
    rows = {s: bench.field_rows(labels[s], tables, params, options) for s in labels}
    n = len(rows["validation"])  # forms without any recorded output have no rows
    assert 4 * 15 <= n <= 4 * 20 and n % 4 == 0
    assert {"pred", "gold", "value_conf", "written_right"} <= set(rows["train"])
    table = bench.guarantee(rows["train"], rows["validation"], (0.01, 0.05), 0.1)
    assert set(table["levels"]) == {"value", "writing"} and set(table["targets"]) == {"value", "writing"}
    for entries in table["levels"].values():
        assert [e["alpha"] for e in entries] == [0.01, 0.05]
        for e in entries:
            assert set(e["thresholds"]["per_field"]) == set(bench.KEYS)
            for split in ("train", "validation"):
                assert set(e[split]) == {*bench.KEYS, "all", "all_one_threshold"}
                for v in e[split].values():
                    assert v["sure"] + round(v["n"] * v["review_pct"] / 100) == v["n"]
                    assert v["errors"] <= v["sure"] and sum(v["errors_by_kind"].values()) == v["errors"]
                    if v["sure"]:
                        lo, hi = v["ci95"]
                        assert lo <= v["realized"] <= hi
            assert e["validation"]["all"]["n"] == n
    result = {"date": "today", "machine": {"cpu_count": 2}, "command": "python x", "engines": list(tables),
              "forms": {"train": 120, "validation": 20}, "calibration_set": "train", "table": table}
    text = bench.markdown(result)
    assert "## Value level" in text and "## Writing level" in text and "## Targets" in text


def test_thresholds_are_fitted_on_train_rows_only(bench, inputs):
    """Validation labels all wrong: the same thresholds, every sure validation field an error."""
    tables, params, options, labels = inputs
    train = bench.field_rows(labels["train"], tables, params, options)
    right = bench.field_rows(labels["validation"], tables, params, options)
    garbled = labels["validation"].copy()
    for key in bench.KEYS:
        garbled[key] = "QQ" + garbled[key].astype(str) + "9"
    wrong = bench.field_rows(garbled, tables, params, options)
    assert not wrong["value_right"].any() and not wrong["written_right"].any()
    a = bench.guarantee(train, right, (0.01, 0.05), 0.1)
    b = bench.guarantee(train, wrong, (0.01, 0.05), 0.1)
    assert _thresholds(a) == _thresholds(b)
    for level, entries in b["levels"].items():
        for e, same in zip(entries, a["levels"][level]):
            assert e["validation"]["all"]["errors"] == e["validation"]["all"]["sure"]
            assert e["train"] == same["train"]


def test_predictions_spec(bench, tmp_path: Path):
    path = tmp_path / "oof.csv"
    pd.DataFrame([{"file_name": "f0001_01.png", "DATE": "8/2/89", "DATE_CONFIDENCE": 80, "CITY": "Milford",
                   "CITY_CONFIDENCE": 90, "STATE": "MI", "STATE_CONFIDENCE": 70, "ZIP": "48381",
                   "ZIP_CONFIDENCE": 60}]).to_csv(path, index=False)
    name, table = bench.predictions_table(f"fieldreader={path}:100")
    assert name == "fieldreader" and table.loc[0, "DATE_conf"] == pytest.approx(0.8)
    with pytest.raises(SystemExit):
        bench.predictions_table("nopath")
