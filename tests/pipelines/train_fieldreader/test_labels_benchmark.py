"""benchmarks/fieldreader/labels_benchmark.py --readings: the plain row from two recorded
out-of-fold readings files (a form counts when all its fields read right; "None" is text)."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from tests.conftest import load_script

SCRIPT = Path(__file__).resolve().parents[3] / "benchmarks" / "fieldreader" / "labels_benchmark.py"


def _write(path: Path, rows: list[tuple[str, str, str, str]]) -> Path:
    frame = pd.DataFrame(rows, columns=["file_name", "field", "reading", "gold"]).assign(confidence=0.5, fold=0)
    frame.to_csv(path, index=False)
    return path


def test_recorded_rows_pair_forms_read_by_both(tmp_path: Path) -> None:
    bench = load_script(SCRIPT, "labels_benchmark")
    base = _write(tmp_path / "base.csv", [("a.png", "DATE", "None", "None"), ("a.png", "ZIP", "12345", "12345"),
                                          ("b.png", "DATE", "May 1", "May 1"), ("c.png", "DATE", "x", "x")])
    cand = _write(tmp_path / "cand.csv", [("a.png", "DATE", "None", "None"), ("a.png", "ZIP", "12346", "12345"),
                                          ("b.png", "DATE", "May 1", "May 1")])
    folds, first, candidate = bench._recorded_rows(base, cand)
    assert folds == [0]
    assert first.to_dict() == {"a.png": 1.0, "b.png": 1.0}
    assert candidate.to_dict() == {"a.png": 0.0, "b.png": 1.0}
    row = bench._row("plain", first, candidate)
    assert (row["FLA_first"], row["FLA_candidate"], row["gain"]) == (100.0, 50.0, -50.0)


def test_recorded_rows_join_the_candidates_folds_from_several_files(tmp_path: Path) -> None:
    bench = load_script(SCRIPT, "labels_benchmark")
    base = _write(tmp_path / "base.csv", [("a.png", "DATE", "x", "x"), ("b.png", "DATE", "y", "y")])
    fold_0 = _write(tmp_path / "fold_0.csv", [("a.png", "DATE", "x", "x")])
    fold_1 = _write(tmp_path / "fold_1.csv", [("b.png", "DATE", "z", "y")])
    pd.read_csv(fold_1).assign(fold=1).to_csv(fold_1, index=False)
    folds, first, candidate = bench._recorded_rows(base, fold_0, fold_1)
    assert folds == [0, 1] and first.to_dict() == {"a.png": 1.0, "b.png": 1.0}
    assert candidate.to_dict() == {"a.png": 1.0, "b.png": 0.0}
    with pytest.raises(SystemExit, match="twice"):  # a form read in two candidate files
        bench._recorded_rows(base, fold_0, fold_0)
