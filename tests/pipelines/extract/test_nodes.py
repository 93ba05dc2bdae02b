"""Extract nodes and the engine runner: cache/resume, faults, disabled engines, credentials, Donut contract."""

from __future__ import annotations

import logging
from pathlib import Path

import boto3
import pandas as pd
import pytest
import yaml
from botocore.stub import Stubber
from PIL import Image

from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.forms import metadata_line, read_donut_folder
from handwriting_pipeline.engines.base import Engine, EngineResult
from handwriting_pipeline.engines.runner import run_engine
from handwriting_pipeline.engines.textract import TextractEngine
from handwriting_pipeline.pipelines.extract import create_pipeline, nodes
from handwriting_pipeline.predictions import COLUMNS
from handwriting_pipeline.registry import engine_class, engine_methods
from tests.project_conf import resolved

from .test_textract import STATE_WITH_ZIP

PROJECT = Path(__file__).resolve().parents[3]


def make_forms(tmp_path: Path, n: int = 3, corrupt: str | None = None):
    folder = tmp_path / "forms"
    folder.mkdir()
    lines = []
    for i in range(n):
        name = f"f{i}.png"
        image = Image.new("L", (246, 35), 255)
        image.putpixel((i, i), 0)  # a different image (and SHA-256) per form
        image.save(folder / name)
        lines.append(metadata_line(name, {"DATE": f"{i}/1/89"}))
    if corrupt:
        (folder / corrupt).write_bytes(b"not a png")
        lines.append(metadata_line(corrupt, {}))
    (folder / "metadata.jsonl").write_text("\n".join(lines) + "\n")
    forms, _ = read_donut_folder(folder)
    return forms


class CountingEngine(Engine):
    name = "counting"
    parallel = "thread"

    def __init__(self, **config) -> None:
        super().__init__(**config)
        self.calls = 0

    def read(self, image, file_name=""):
        self.calls += 1
        if file_name == "f1.png":
            raise RuntimeError("boom")  # an engine bug: the form fails, the run goes on
        return EngineResult(fields={"DATE": file_name}, usage={"pages": 1})


def textract_with_stub() -> tuple[TextractEngine, Stubber]:
    engine = TextractEngine(region_name="us-east-1")
    client = boto3.client("textract", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    engine._client = client
    return engine, Stubber(client)


@pytest.mark.parametrize("method", engine_methods())
def test_every_registered_engine_declares_its_traits_and_takes_its_parameters(method) -> None:
    cls = engine_class(method)
    assert cls.parallel in ("process", "thread", "batch", "serial")
    assert cls.credentials is None or isinstance(cls.credentials, str)
    assert not cls.paid or cls.cacheable  # a paid answer is never asked twice
    params = yaml.safe_load((PROJECT / "conf/base/parameters_extract.yml").read_text())["extract"]
    assert method in params  # one parameter block per engine
    if not cls.requires_training():
        engine = nodes.build_engine(method, params, {})  # every engine accepts its parameters
        assert engine.name == method


def test_unknown_engine_is_a_clear_error() -> None:
    with pytest.raises(KeyError, match="Known engines"):
        engine_class("nope")
    with pytest.raises(RuntimeError, match="Unknown engine 'nope'"):
        nodes.check_engines({"engines": ["nope"]}, {})


def test_paid_answers_cached_second_run_makes_no_call(tmp_path) -> None:
    forms = make_forms(tmp_path, n=2)
    cache = ResponseCache(tmp_path / "cache")
    engine, stub = textract_with_stub()
    for _ in range(2):
        stub.add_response("analyze_document", STATE_WITH_ZIP)
    with stub:
        first = run_engine(engine, forms.labels.file_name.tolist(), forms.images, cache=cache, progress=False)
        stub.assert_no_pending_responses()
    assert len(cache) == 2
    engine2, stub2 = textract_with_stub()  # nothing queued: any call would fail the form
    with stub2:
        second = run_engine(engine2, forms.labels.file_name.tolist(), forms.images, cache=ResponseCache(tmp_path / "cache"),
                            progress=False)
    assert second["error"].isna().all()
    assert second[["DATE", "CITY", "STATE", "ZIP"]].equals(first[["DATE", "CITY", "STATE", "ZIP"]])
    assert list(second.columns) == COLUMNS and (second["pages"] == 1).all()


def test_failures_and_corrupt_images_recorded_run_goes_on(tmp_path, caplog) -> None:
    forms = make_forms(tmp_path, n=3, corrupt="bad.png")
    cache = ResponseCache(tmp_path / "cache")
    engine = CountingEngine()
    with caplog.at_level(logging.INFO):
        table = run_engine(engine, forms.labels.file_name.tolist(), forms.images, cache=cache, workers=2, progress=False)
    by_name = table.set_index("file_name")
    assert by_name.loc["f0.png", "DATE"] == "f0.png" and pd.isna(by_name.loc["f2.png", "error"])
    assert "boom" in by_name.loc["f1.png", "error"] and by_name.loc["f1.png", "DATE"] == "None"
    assert "unreadable image bad.png" in by_name.loc["bad.png", "error"]
    assert "2 of 4 forms failed" in caplog.text
    assert len(cache) == 2  # failures are not cached: a re-run tries them again
    again = CountingEngine()
    run_engine(again, forms.labels.file_name.tolist(), forms.images, cache=cache, progress=False)
    assert again.calls == 1  # only the failed form is read again


def test_disabled_engine_outputs_empty_predictions(tmp_path, caplog) -> None:
    forms = make_forms(tmp_path, n=1)
    with caplog.at_level(logging.INFO):
        out = nodes.extract_node("rapidocr")(forms=forms, params={"engines": ["donut"]}, status={},
                                             cache=ResponseCache(tmp_path / "c"))
    assert out.empty and list(out.columns) == COLUMNS
    assert "rapidocr: not in extract.engines" in caplog.text


def test_enabled_paid_engine_without_credentials_fails_before_any_work(monkeypatch, tmp_path) -> None:
    for var in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN", "AWS_PROFILE",
                "AZURE_FORM_RECOGNIZER_ENDPOINT", "AZURE_FORM_RECOGNIZER_KEY"):
        monkeypatch.delenv(var, raising=False)
    monkeypatch.setenv("AWS_CONFIG_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(tmp_path / "none"))
    monkeypatch.setenv("AWS_EC2_METADATA_DISABLED", "true")
    params = {"engines": ["rapidocr", "textract", "azure_form_recognizer"], "textract": {"region_name": "us-east-1"}}
    with pytest.raises(RuntimeError) as err:
        nodes.check_engines(params, {})
    text = str(err.value)
    assert "conf/local/credentials.yml" in text and "AWS_ACCESS_KEY_ID" in text and "AZURE_FORM_RECOGNIZER_KEY" in text
    ok = nodes.check_engines(params, {"aws": {"aws_access_key_id": "AKID", "aws_secret_access_key": "hunter2"},
                                      "azure_form_recognizer": {"endpoint": "https://x/", "key": "hunter3"}})
    assert ok == {"rapidocr": "ready", "textract": "ready", "azure_form_recognizer": "ready"}
    assert "hunter" not in repr(ok)


def test_optional_engines_are_skipped_not_fatal(tmp_path) -> None:
    params = {"engines": ["tesseract", "recorded_textract"], "tesseract": {"cmd": "/nonexistent/tesseract"},
              "recorded_textract": {"path": str(tmp_path / "none.csv")}}
    status = nodes.check_engines(params, {})
    assert status["tesseract"].startswith("skipped") and "apt-get install tesseract-ocr" in status["tesseract"]
    forms = make_forms(tmp_path, n=1)
    assert nodes.extract(forms, params, status, ResponseCache(tmp_path / "c"), method="tesseract").empty


class FakeDonutRef:
    def __init__(self, available: bool) -> None:
        self.available, self.reason, self.path = available, "" if available else "no saved Donut model", "x"


def test_donut_node_contract(tmp_path, monkeypatch, caplog) -> None:
    forms = make_forms(tmp_path, n=3)
    cache = ResponseCache(tmp_path / "c")
    # by default an untrained engine is skipped with one log line; asked for explicitly, it stops the run
    with caplog.at_level(logging.WARNING):
        status = nodes.check_engines({"engines": "default"}, {}, donut_model=FakeDonutRef(False))
    assert status["donut"].startswith("skipped: no trained model") and "kedro run --pipeline train" in caplog.text
    assert nodes.extract(forms, {}, status, cache, method="donut", model=FakeDonutRef(False)).empty
    with pytest.raises(RuntimeError, match="train it first: kedro run --pipeline train"):
        nodes.check_engines({"engines": ["donut"]}, {}, donut_model=FakeDonutRef(False))
    assert nodes.check_engines({"engines": ["donut"]}, {}, donut_model=FakeDonutRef(True)) == {"donut": "ready"}

    batches = []

    class FakeDonut(Engine):
        name = "donut"
        parallel = "batch"
        batch_size = 2

        def check_ready(self):
            pass

        def read(self, image, file_name=""):
            raise AssertionError("read_batch expected")

        def read_batch(self, images, file_names):
            batches.append(list(file_names))
            return [EngineResult(fields={"DATE": n}) for n in file_names]

    from handwriting_pipeline.engines import donut

    monkeypatch.setattr(donut.DonutEngine, "from_model", classmethod(lambda cls, ref, **kw: FakeDonut(**kw)))
    out = nodes.extract(forms, {"engines": ["donut"], "donut": {"batch_size": 2}}, {"donut": "ready"}, cache,
                        method="donut", model=FakeDonutRef(True))
    assert out["DATE"].tolist() == ["f0.png", "f1.png", "f2.png"] and batches == [["f0.png", "f1.png"], ["f2.png"]]


def test_pipeline_is_generated_from_the_registry_and_the_factory_resolves_it() -> None:
    from kedro.io import DataCatalog

    pipeline = create_pipeline()
    assert {n.name for n in pipeline.nodes} == {"check_extract_engines", *(f"extract_{m}" for m in engine_methods())}
    assert pipeline.outputs() == {f"predictions_{m}" for m in engine_methods()}
    extract_entries = yaml.safe_load((PROJECT / "conf/base/catalog_extract.yml").read_text())
    catalog = DataCatalog.from_config({k: v for k, v in resolved("catalog").items()
                                       if k in extract_entries and k != "extract_credentials"})
    for method in [*engine_methods(), "some_new_engine"]:
        dataset = catalog[f"predictions_{method}"]
        assert type(dataset).__name__ == "ParquetDataset"
        assert str(dataset._filepath).endswith(f"data/07_model_output/predictions_{method}.parquet")
    assert "evaluation_forms" in pipeline.inputs() and "donut_model" in pipeline.inputs()
    by_name = {n.name: n for n in pipeline.nodes}
    assert "extract_credentials" in by_name["extract_textract"].inputs
    assert "extract_cache" not in by_name["extract_recorded_textract"].inputs
