"""Fault matrix, in-process part: bad evaluation inputs, broken metadata, a truncated cache
entry, a full disk while writing, a throttled paid engine (real botocore retries, fake server)."""

from __future__ import annotations

import errno
import json
import os
import shutil

import pandas as pd
import pytest
from PIL import Image

from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.forms import LabelledForms, LabelledFormsDataset
from handwriting_pipeline.engines.base import Engine, EngineResult, image_sha256
from handwriting_pipeline.engines.runner import run_engine
from handwriting_pipeline.hooks.reports import failure_message
from handwriting_pipeline.hooks.versions import _is_half_written
from handwriting_pipeline.pipelines.evaluation.nodes import render_report
from handwriting_pipeline.pipelines.evaluation.provenance import collect_failures
from handwriting_pipeline.pipelines.select_forms.nodes import select_evaluation_forms
from handwriting_pipeline.predictions import predictions_from_records

from .fake_textract import FakeTextract

PARAMS = {"max_failure_share": 0, "input_checks": {"image_size": [2460, 350], "min_ink_share": 0.01,
                                                   "max_ink_share": 0.6}}
LABEL = {"DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"}


def _line(name: str) -> str:
    return json.dumps({"file_name": name, "ground_truth": json.dumps({"gt_parse": LABEL})})


@pytest.fixture()
def bad_folder(tmp_path, shared_validation, shared_page, validation_names):
    """Two good crops and one of every kind of bad input, plus broken metadata lines."""
    folder = tmp_path / "bad"
    folder.mkdir()
    good = validation_names[:2]
    for name in good:
        shutil.copy(shared_validation / name, folder / name)
    (folder / "corrupt.png").write_bytes((shared_validation / good[0]).read_bytes()[:300])
    (folder / "zero.png").write_bytes(b"")
    (folder / "text.png").write_text("this is not an image\n")
    rng = __import__("numpy").random.default_rng(0)
    Image.fromarray((rng.random((600, 800)) * 255).astype("uint8")).save(folder / "noise.png")
    Image.new("1", (2460, 350), 1).save(folder / "white.png")
    shutil.copy(shared_page, folder / "page.png")
    names = [*good, "corrupt.png", "zero.png", "text.png", "noise.png", "white.png", "page.png"]
    lines = [_line(n) for n in names] + [
        "{not json", json.dumps({"file_name": "nolabel.png"}),
        json.dumps({"file_name": "partial.png", "ground_truth": json.dumps({"gt_parse": {"DATE": "1/1/89"}})}),
        _line("missing.png")]
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    return folder, good


def test_bad_inputs_are_rejected_with_reasons_and_reported(bad_folder):
    folder, good = bad_folder
    external = LabelledFormsDataset(folder=str(folder), optional=True).load()
    forms = select_evaluation_forms(LabelledForms.empty("no test split"), external, PARAMS)
    assert forms.labels["file_name"].tolist() == good
    reasons = {p["file_name"]: p["problem"] for p in forms.problems}
    assert "unreadable image" in reasons["corrupt.png"]
    assert "unreadable image" in reasons["zero.png"] and "unreadable image" in reasons["text.png"]
    assert "800x600, expected 2460x350" in reasons["noise.png"]
    assert "blank" in reasons["white.png"]
    assert "full page" in reasons["page.png"]
    assert "missing" in reasons["missing.png"]
    broken = [p["problem"] for p in forms.problems if p["file_name"].startswith(str(folder / "metadata.jsonl"))]
    assert len(broken) == 3 and any("not JSON" in b for b in broken) and any("lacks keys" in b for b in broken)

    preds = predictions_from_records([{"file_name": n, **LABEL} for n in good])
    failures = collect_failures(forms, PARAMS, rapidocr=preds)
    assert failures["inputs"]["rejected"] == 10 and failures["inputs"]["exceeds"]
    assert "10 of 12 input files rejected" in failure_message(failures)
    metrics = pd.DataFrame({"method": ["rapidocr"]})
    from handwriting_pipeline.metrics import metrics_table
    report = render_report(metrics_table([]), forms, PARAMS, failures, {"run_id": "R1"})
    for name in ("corrupt.png", "zero.png", "text.png", "noise.png", "white.png", "page.png", "missing.png"):
        assert name in report
    assert str(folder) in report  # the user's folder, not a copy
    assert metrics is not None


def test_accepting_partial_input_failure(bad_folder):
    folder, good = bad_folder
    external = LabelledFormsDataset(folder=str(folder), optional=True).load()
    forms = select_evaluation_forms(LabelledForms.empty(), external, PARAMS)
    failures = collect_failures(forms, {**PARAMS, "max_failure_share": 0.9},
                                rapidocr=predictions_from_records([{"file_name": n, **LABEL} for n in good]))
    assert failure_message(failures) == ""


def test_only_bad_inputs_stop_with_a_reason(tmp_path):
    folder = tmp_path / "white"
    folder.mkdir()
    Image.new("1", (2460, 350), 1).save(folder / "w.png")
    (folder / "metadata.jsonl").write_text(_line("w.png") + "\n")
    external = LabelledFormsDataset(folder=str(folder), optional=True).load()
    with pytest.raises(ValueError, match="all 1 forms were rejected.*blank"):
        select_evaluation_forms(LabelledForms.empty(), external, PARAMS)


class _CountingEngine(Engine):
    name = "counting"
    version = "1"
    parallel = "serial"

    def __init__(self) -> None:
        super().__init__()
        self.calls = 0

    def read(self, image, file_name=""):
        self.calls += 1
        return EngineResult(fields=LABEL)


def test_truncated_cache_entry_is_ignored_and_recomputed(tmp_path, caplog):
    cache = ResponseCache(tmp_path / "cache")
    images = {"a.png": Image.new("L", (40, 10), 0), "b.png": Image.new("L", (40, 10), 255)}
    engine = _CountingEngine()
    run_engine(engine, list(images), images, cache=cache, progress=False)
    assert engine.calls == 2
    key_a = engine.cache_key(image_sha256(images["a.png"]))
    path_a = cache._path(key_a)
    path_a.write_text(path_a.read_text()[:17])                      # truncated by a crash
    cache._path(engine.cache_key(image_sha256(images["b.png"]))).write_text('["not", "a result"]')
    again = _CountingEngine()
    table = run_engine(again, list(images), images, cache=cache, progress=False)
    assert again.calls == 2 and table["error"].isna().all() and (table["CITY"] == "Murray").all()
    assert "unreadable" in caplog.text
    assert json.loads(path_a.read_text())["fields"]["CITY"] == "Murray"  # repaired


def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


def test_full_disk_leaves_nothing_half_written(tmp_path, monkeypatch, validation_names, shared_validation):
    cache = ResponseCache(tmp_path / "cache")
    cache.put("k1", {"x": 1})
    forms = LabelledFormsDataset(folder=str(shared_validation), optional=True).load().subset(validation_names[:2])
    monkeypatch.setattr(os, "fsync", _enospc)
    with pytest.raises(OSError, match="No space"):
        cache.put("k2", {"x": 2})
    dataset = LabelledFormsDataset(path=str(tmp_path / "evaluation_runs"), copy_images=False)
    with pytest.raises(Exception, match="No space"):
        dataset.save(forms)
    monkeypatch.undo()
    assert cache.get("k2") is None and cache.get("k1") == {"x": 1}
    assert not list((tmp_path / "cache").rglob("*.tmp"))
    assert not list((tmp_path / "evaluation_runs").rglob("metadata.jsonl"))  # never loads as valid
    with pytest.raises(Exception, match="metadata.jsonl"):
        LabelledFormsDataset(path=str(tmp_path / "evaluation_runs")).load()
    # the hook's check of files a failed run left behind
    png = tmp_path / "plot.png"
    Image.new("L", (50, 50)).save(png)
    assert not _is_half_written(png)
    png.write_bytes(png.read_bytes()[:60])
    assert _is_half_written(png)


def test_reference_instead_of_copy(tmp_path, shared_validation, validation_names):
    """evaluation_forms keeps labels and a reference to the user's folder, never image copies."""
    forms = LabelledFormsDataset(folder=str(shared_validation), optional=True).load().subset(validation_names[:3])
    dataset = LabelledFormsDataset(path=str(tmp_path / "evaluation_runs"), copy_images=False)
    dataset.save(forms)
    assert not list((tmp_path / "evaluation_runs").rglob("*.png"))
    loaded = LabelledFormsDataset(path=str(tmp_path / "evaluation_runs")).load()
    assert loaded.labels["file_name"].tolist() == validation_names[:3]
    assert loaded.images.path(validation_names[0]) == shared_validation.resolve() / validation_names[0]
    assert loaded.images[validation_names[0]].size == (2460, 350)


def test_throttled_paid_engine_succeeds_through_sdk_retries(monkeypatch):
    from handwriting_pipeline.engines.textract import TextractEngine

    image = Image.new("1", (246, 35), 1)
    creds = {"aws_access_key_id": "AKIAFAKE", "aws_secret_access_key": "fake", "region_name": "us-east-1"}
    with FakeTextract(["throttle", "throttle", "ok"]) as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_TEXTRACT", fake.url)
        engine = TextractEngine(max_attempts=4, retry_mode="standard", credentials=creds)
        engine.check_ready()
        result = engine.read(image, "a.png")
        assert result.error is None and result.fields["CITY"] == "Murray" and fake.requests == 3
    with FakeTextract(["throttle"]) as fake:
        monkeypatch.setenv("AWS_ENDPOINT_URL_TEXTRACT", fake.url)
        result = TextractEngine(max_attempts=2, retry_mode="standard", credentials=creds).read(image, "b.png")
        assert "ThrottlingException" in result.error and fake.requests == 3  # first call + 2 retries


def test_two_runs_started_in_the_same_millisecond_write_their_own_versions(tmp_path):
    """Kedro names a run's outputs by its start millisecond; a second run with the same one
    claims the next free millisecond instead of failing "Save path ... must not exist"."""
    from kedro.io import Version
    from kedro_datasets.pandas import CSVDataset

    from handwriting_pipeline.hooks.versions import claim_version, release

    same = "2026-11-30T06.31.18.775Z"
    path = str(tmp_path / "metrics.csv")
    first, made = claim_version(same, [CSVDataset(filepath=path, version=Version(None, same))])
    second, _ = claim_version(same, [CSVDataset(filepath=path, version=Version(None, same))])
    assert first == same and second == "2026-11-30T06.31.18.776Z"
    assert made == [tmp_path / "metrics.csv", tmp_path / "metrics.csv" / same]
    for version, n in ((first, 3), (second, 2)):
        CSVDataset(filepath=path, version=Version(version, version)).save(pd.DataFrame({"n": [n]}))
    for version, n in ((first, 3), (second, 2)):
        assert CSVDataset(filepath=path, version=Version(version, None)).load()["n"].tolist() == [n]
    release(made)  # written into: kept
    assert (tmp_path / "metrics.csv" / same / "metrics.csv").is_file()
    unused, made = claim_version("2026-11-30T23.59.59.999Z", [CSVDataset(filepath=str(tmp_path / "x.csv"),
                                                                         version=Version(None, "x"))])
    release(made)  # nothing written: no trace left
    assert unused == "2026-11-30T23.59.59.999Z" and not (tmp_path / "x.csv").exists()


def test_outputs_sharing_one_run_folder_claim_it_once(tmp_path):
    """digitize writes all its outputs into one folder per run (RunFileDataset)."""
    from kedro.io import Version

    from handwriting_pipeline.datasets import RunFileDataset
    from handwriting_pipeline.hooks.versions import claim_version

    same = "2026-11-30T06.48.18.039Z"
    outputs = [RunFileDataset(folder=str(tmp_path / "digitize"), file=name, version=Version(None, same))
               for name in ("forms.jsonl", "summary.json")]
    assert claim_version(same, outputs)[0] == same
    assert claim_version(same, outputs)[0] == "2026-11-30T06.48.18.040Z"  # a second run at the same time
