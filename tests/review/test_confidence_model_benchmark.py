"""benchmarks/review/confidence_model_benchmark.py: what a person's review fixes, and the report
rebuilt from the committed results file."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from tests.conftest import load_script

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "review" / "confidence_model_benchmark.py"


@pytest.fixture(scope="module")
def bench():
    return load_script(SCRIPT, "confidence_model_benchmark")


def test_review_fixes_the_least_sure_fields_first(bench):
    # two forms of four fields; the one wrong field is the least sure: 10 % of 8 fields = 1 reviewed
    rows = pd.DataFrame({"file_name": ["a"] * 4 + ["b"] * 4, "field": ["DATE", "CITY", "STATE", "ZIP"] * 2,
                         "written_right": [True, False, True, True] + [True] * 4, "value_right": [True] * 8})
    sure_of_the_error = np.array([0.9, 0.95, 0.9, 0.9, 0.5, 0.9, 0.9, 0.9])
    doubtful_of_the_error = np.array([0.9, 0.1, 0.9, 0.9, 0.5, 0.9, 0.9, 0.9])
    bench.SHARES["writing"] = 10  # one of eight fields
    try:
        assert bench.after_review(rows, sure_of_the_error, "writing").mean() == 0.5
        assert bench.after_review(rows, doubtful_of_the_error, "writing").mean() == 1.0
    finally:
        bench.SHARES["writing"] = 15


def test_the_report_is_rebuilt_from_the_results_file(bench):
    result = json.loads((ROOT / "benchmarks" / "results" / "confidence_model.json").read_text())
    report = bench.markdown(result)
    assert report == (ROOT / "benchmarks" / "results" / "confidence_model.md").read_text()
    assert "as digitize applies it" in report and "## The ambiguity model" in report
    choice = next(g["choice"] for g in result["guarantees"] if g["choice"])
    assert choice["on"] == (choice["low"] > 0)  # on only with the interval above 0, on the train forms
