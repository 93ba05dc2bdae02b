"""Fault matrix, end to end: `kedro run` in throw-away project copies on a few real crops.

Concurrent runs on two folders; an engine failing on every form / on some forms; missing
credentials; Ctrl-C and SIGKILL mid-extraction, then a rerun; a disk that fills up while the
report is written. Needs ../shared/data (skipped without it)."""

from __future__ import annotations

import json
import os
import resource
import signal
import time
from pathlib import Path

import pandas as pd
import pytest

from .conftest import finish, forms_folder, latest, make_project, run, start, versions
from .fake_textract import FakeTextract

SCORE_COLUMNS = ["method", "n", "FLA", "CBA", "CBA_DATE", "CBA_CITY", "CBA_STATE", "CBA_ZIP", "coverage"]
RAPIDOCR = "extract.engines=rapidocr,extract.workers=1,extract.progress=false"
FAKE_AWS = {"AWS_ACCESS_KEY_ID": "AKIAFAKE", "AWS_SECRET_ACCESS_KEY": "fake", "AWS_DEFAULT_REGION": "us-east-1"}
TEXTRACT = "extract.engines=textract,extract.workers=1,extract.progress=false,extract.textract.max_attempts=1"


def _report_for(project: Path, folder: Path) -> tuple[str, str]:
    """(report text, version) of the run that evaluated ``folder``."""
    for path in versions(project, "data/08_reporting/metrics.md"):
        text = path.read_text()
        if f"the folder {folder.resolve()}." in text:
            return text, path.parent.name
    raise AssertionError(f"no report names {folder}")


def _cache_entries(project: Path) -> list[Path]:
    return sorted((project / "data/02_intermediate/extract_cache").glob("*/*.json"))


def _wait_for_entries(project: Path, n: int, process, timeout: float = 240) -> None:
    deadline = time.monotonic() + timeout
    while len(_cache_entries(project)) < n:
        assert process.poll() is None, "the run ended before it was interrupted"
        assert time.monotonic() < deadline, "no cache entry appeared"
        time.sleep(0.05)


@pytest.fixture(scope="module")
def concurrent(tmp_path_factory, shared_validation, validation_names):
    """Two evaluate runs at once in one project, on two folders (3 and 2 forms)."""
    root = tmp_path_factory.mktemp("concurrent")
    project = make_project(root / "project")
    a = forms_folder(root / "A", shared_validation, validation_names[:3])
    b = forms_folder(root / "B", shared_validation, validation_names[3:5])
    started = time.monotonic()
    pa = start(project, f"evaluation.data_dir={a},{RAPIDOCR}")
    pb = start(project, f"evaluation.data_dir={b},{RAPIDOCR}")
    return project, a, b, finish(pa, started), finish(pb, started)


def test_concurrent_runs_each_score_their_own_forms(concurrent):
    project, a, b, run_a, run_b = concurrent
    assert run_a.returncode == 0, run_a.output[-3000:]
    assert run_b.returncode == 0, run_b.output[-3000:]
    for folder, n in ((a, 3), (b, 2)):
        report, version = _report_for(project, folder)
        names = sorted(json.loads(line)["file_name"] for line in (folder / "metadata.jsonl").read_text().splitlines())
        scores = pd.read_parquet(project / f"data/08_reporting/form_scores.parquet/{version}/form_scores.parquet")
        assert sorted(scores.loc[scores["method"] == "rapidocr", "file_name"]) == names
        metrics = pd.read_csv(project / f"data/08_reporting/metrics.csv/{version}/metrics.csv")
        assert metrics.set_index("method").loc["rapidocr", "n"] == n
        preds = pd.read_parquet(project / f"data/07_model_output/predictions_rapidocr.parquet/{version}/"
                                "predictions_rapidocr.parquet")
        assert sorted(preds["file_name"]) == names and preds["error"].isna().all()
        assert "## Failures" in report and "accuracy.png" in report and "rapidocr: engine v" in report
    # no copy of the images anywhere in the project
    assert not list((project / "data/05_model_input").rglob("*.png"))


def test_interrupt_then_kill_then_rerun_recomputes_nothing(tmp_path, concurrent, shared_validation, validation_names):
    """Ctrl-C ends a run within 2 s; SIGKILL mid-extraction; the rerun reads only unfinished forms
    and its scores equal those of an uninterrupted run (the concurrent test's run on A)."""
    ref_project, ref_a = concurrent[0], concurrent[1]
    project = make_project(tmp_path / "project")
    folder = forms_folder(tmp_path / "A", shared_validation, validation_names[:3])
    params = f"evaluation.data_dir={folder},extract.engines=rapidocr,extract.workers=2,extract.progress=false"

    first = start(project, params)
    _wait_for_entries(project, 1, first)
    sent = time.monotonic()
    os.killpg(first.pid, signal.SIGINT)  # what a terminal's Ctrl-C does
    interrupted = finish(first, sent, timeout=60)
    assert interrupted.returncode != 0
    assert interrupted.seconds < 2.0, f"Ctrl-C took {interrupted.seconds:.1f} s"
    for entry in _cache_entries(project):
        json.loads(entry.read_text())  # the cache is consistent
    assert not list((project / "data/02_intermediate/extract_cache").rglob("*.tmp"))

    done = len(_cache_entries(project))
    if done < 3:
        second = start(project, params.replace("workers=2", "workers=1"))
        _wait_for_entries(project, done + 1, second)
        os.killpg(second.pid, signal.SIGKILL)
        second.communicate()
    done = len(_cache_entries(project))
    for entry in _cache_entries(project):
        json.loads(entry.read_text())

    rerun = run(project, params)
    assert rerun.returncode == 0, rerun.output[-3000:]
    assert f"({3 - done} read, {done} from cache)" in rerun.output
    ref = pd.read_csv(latest_for(ref_project, ref_a))[SCORE_COLUMNS]
    got = pd.read_csv(latest(project, "data/08_reporting/metrics.csv"))[SCORE_COLUMNS]
    pd.testing.assert_frame_equal(got, ref)


def latest_for(project: Path, folder: Path) -> Path:
    _, version = _report_for(project, folder)
    return project / f"data/08_reporting/metrics.csv/{version}/metrics.csv"


def test_engine_failing_on_every_form_fails_the_run(tmp_path, shared_validation, validation_names):
    project = make_project(tmp_path / "project")
    folder = forms_folder(tmp_path / "C", shared_validation, validation_names[:3])
    (folder / "corrupt.png").write_bytes(b"\x89PNG\r\n\x1a\n broken")
    with (folder / "metadata.jsonl").open("a") as handle:
        handle.write('{"file_name": "corrupt.png", "ground_truth": "{\\"gt_parse\\": {\\"DATE\\": \\"None\\", '
                     '\\"CITY\\": \\"None\\", \\"STATE\\": \\"None\\", \\"ZIP\\": \\"None\\"}}"}\n{broken line\n')
    with FakeTextract(["bad"]) as fake:
        result = run(project, f"evaluation.data_dir={folder},{TEXTRACT}", AWS_ENDPOINT_URL_TEXTRACT=fake.url,
                     **FAKE_AWS)
    assert result.returncode != 0
    assert "ERROR: textract failed on 3 of 3 forms (first: UnsupportedDocumentException" in result.stderr
    assert "evaluation.max_failure_share" in result.stderr
    assert "Traceback" not in result.output and "╭" not in result.output
    report = latest(project, "data/08_reporting/metrics.md").read_text()
    assert "textract ⚠ 3/3 failed" in report and "## Failures" in report and "UnsupportedDocumentException" in report
    assert "corrupt.png" in report and "not JSON" in report  # unreadable inputs are listed
    failures = json.loads(latest(project, "data/08_reporting/failures.json").read_text())
    assert failures["methods"][0]["failed"] == 3 and failures["inputs"]["rejected"] == 2
    preds = pd.read_parquet(latest(project, "data/07_model_output/predictions_textract.parquet"))
    assert preds["error"].notna().all()  # everything it finished was written


def test_engine_failing_on_some_forms_within_max_failure_share(tmp_path, shared_validation, validation_names):
    project = make_project(tmp_path / "project")
    folder = forms_folder(tmp_path / "D", shared_validation, validation_names[:3])
    with FakeTextract(["ok", "bad", "ok"]) as fake:
        result = run(project, f"evaluation.data_dir={folder},{TEXTRACT},evaluation.max_failure_share=0.5",
                     AWS_ENDPOINT_URL_TEXTRACT=fake.url, **FAKE_AWS)
    assert result.returncode == 0, result.output[-3000:]
    report = latest(project, "data/08_reporting/metrics.md").read_text()
    assert "textract ⚠ 1/3 failed" in report and "| textract | 1 | 3 | 33.3 % | no |" in report


def test_missing_credentials_stop_before_any_form_with_one_line(tmp_path, shared_validation, validation_names):
    project = make_project(tmp_path / "project")
    folder = forms_folder(tmp_path / "E", shared_validation, validation_names[:2])
    result = run(project, f"evaluation.data_dir={folder},{TEXTRACT}")
    assert result.returncode != 0
    errors = [line for line in result.stderr.splitlines() if line.strip()]
    assert len(errors) <= 3 and errors[0].startswith("ERROR: RuntimeError: extract: enabled engines are not ready")
    assert "credentials.yml" in (project / "info.log").read_text()  # the full message and trace are logged
    assert not (project / "data/07_model_output/predictions_textract.parquet").exists()


def test_full_disk_while_writing_the_report(tmp_path, shared_validation, shared_ocr_outputs, validation_names):
    """Files may not grow past 16 kB (like a disk filling up): the plots fail half-written."""
    project = make_project(tmp_path / "project")
    folder = forms_folder(tmp_path / "F", shared_validation, validation_names[:3])

    def small_disk() -> None:
        signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
        resource.setrlimit(resource.RLIMIT_FSIZE, (16_000, 16_000))

    params = (f"evaluation.data_dir={folder},extract.engines=recorded_textract,"
              f"extract.recorded_textract.path={shared_ocr_outputs / 'textract.csv'}")
    result = run(project, params, preexec_fn=small_disk)
    assert result.returncode != 0
    assert "ERROR:" in result.stderr and "File too large" in result.stderr
    plots = list((project / "data/08_reporting").glob("*.png/*/*"))  # accuracy*.png, review_curve.png
    assert plots and all(p.name.endswith(".partial") for p in plots), plots  # never left as a valid plot
    metrics = pd.read_csv(latest(project, "data/08_reporting/metrics.csv"))  # what was finished is whole
    assert metrics["method"].tolist()[0] == "recorded_textract"


def test_two_digitize_runs_at_once_each_write_their_own_run_folder(tmp_path, shared_validation, validation_names):
    """`kedro run --pipeline digitize` through the project hooks (which claim each run's version):
    two runs started together on different scans both finish, each with its own run folder."""
    project = make_project(tmp_path / "project")
    scans = [forms_folder(tmp_path / name, shared_validation, names)
             for name, names in (("A", validation_names[:2]), ("B", validation_names[2:3]))]
    started = time.monotonic()
    runs = [start(project, f"digitize.input_dir={folder},digitize.engines=rapidocr,digitize.progress=false",
                  pipeline="digitize") for folder in scans]
    results = [finish(run, started) for run in runs]
    for result in results:
        assert result.returncode == 0, result.output[-3000:]
    folders = sorted((project / "data/08_reporting/digitize/runs").iterdir())
    assert len(folders) == 2
    lines = sorted(len((f / "forms.jsonl").read_text().splitlines()) for f in folders)
    assert lines == [1, 2]  # each run holds its own scans
