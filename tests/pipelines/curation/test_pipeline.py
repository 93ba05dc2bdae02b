"""The curation pipeline through the Kedro CLI (`kedro run --pipeline curation`) in a copy of
the project's configuration, on a small synthetic set."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pytest

from handwriting_pipeline.datasets.forms import LabelledFormsDataset
from handwriting_pipeline.fields import KEYS

PROJECT_ROOT = Path(__file__).resolve().parents[3]
KEDRO = Path(sys.executable).parent / "kedro"


@pytest.fixture()
def project_copy(tmp_path) -> Path:
    """pyproject + the curation configuration + empty data layers (the package is installed)."""
    shutil.copy(PROJECT_ROOT / "pyproject.toml", tmp_path)
    (tmp_path / "src").mkdir()
    conf = tmp_path / "conf" / "base"
    conf.mkdir(parents=True)
    (tmp_path / "conf" / "local").mkdir()
    for name in ("catalog.yml", "catalog_curation.yml", "parameters.yml", "parameters_curation.yml"):
        shutil.copy(PROJECT_ROOT / "conf" / "base" / name, conf)
    shutil.copy(PROJECT_ROOT / "conf" / "logging.yml", tmp_path / "conf")
    for layer in ("01_raw", "05_model_input", "08_reporting"):
        (tmp_path / "data" / layer).mkdir(parents=True)
    (tmp_path / ".telemetry").write_text("consent: false\n")
    return tmp_path


def _kedro_run(project: Path, params: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1", "KEDRO_DISABLE_TELEMETRY": "true"}
    result = subprocess.run([str(KEDRO), "run", "--pipeline", "curation", f"--params={params}"], cwd=project,
                            env=env, capture_output=True, text=True, timeout=600)
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    return result


def _newest(path: Path) -> Path:
    return sorted(path.iterdir())[-1] / path.name


def test_kedro_run_curation_on_synthetic_forms(project_copy):
    _kedro_run(project_copy, "curation.synthetic.n_forms=12,curation.synthetic.workers=1")
    data = project_copy / "data"
    report = json.loads(_newest(data / "08_reporting" / "curation_report.json").read_text())
    assert report["source"] == "synthetic"
    assert report["counts"] == {"train": 8, "validation": 1, "test": 3}  # 12 split like 1400/199/500
    labels = pd.read_csv(_newest(data / "05_model_input" / "curated_labels.csv"), dtype=str, keep_default_na=False)
    assert list(labels.columns) == ["file_name", "split", *KEYS]
    assert len(labels) == 12 and labels["file_name"].is_unique
    # the versioned split folders load back (as the train / evaluate pipelines will read them)
    for split, n in report["counts"].items():
        forms = LabelledFormsDataset(str(data / "05_model_input" / split)).load()
        assert len(forms) == n
        for name in forms.labels["file_name"]:
            assert forms.images[name].size == (2460, 350)
        merged = forms.labels.merge(labels[labels["split"] == split], on="file_name", suffixes=("", "_csv"))
        for key in KEYS:
            assert (merged[key] == merged[f"{key}_csv"]).all()
    assert not any((data / "01_raw").iterdir())  # nothing written to raw
