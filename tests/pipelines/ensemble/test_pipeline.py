"""The ensemble pipeline wired as Kedro runs it: every predictions_<engine> in, vote and llm out."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.ensemble.llm import prompt_files
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.pipelines.ensemble import create_pipeline
from handwriting_pipeline.pipelines.ensemble.nodes import engine_calibrations
from handwriting_pipeline.predictions import COLUMNS, empty_predictions, predictions_from_records
from handwriting_pipeline.registry import engine_class, engine_methods
from tests.project_conf import resolved

PROJECT = Path(__file__).resolve().parents[3]


def _params() -> dict:
    return yaml.safe_load((PROJECT / "conf/base/parameters_ensemble.yml").read_text())["ensemble"]


def _run(params: dict, tables: dict[str, pd.DataFrame], tmp_path: Path, models: dict | None = None) -> dict:
    models = models or {}
    datasets = {f"predictions_{e}": MemoryDataset(tables.get(e, empty_predictions())) for e in engine_methods()}
    datasets.update({
        "params:ensemble": MemoryDataset(params),
        "params:form": MemoryDataset("hsf_top"),
        "evaluation_forms": MemoryDataset(None),
        "ensemble_credentials": MemoryDataset({}),
        "llm_prompts": MemoryDataset(prompt_files(PROJECT / "conf/base/prompts"), copy_mode="assign"),
        "llm_hint_forms": MemoryDataset(None),
        "llm_hint_readings": MemoryDataset(None),
        "ensemble_cache": MemoryDataset(ResponseCache(tmp_path / "cache"), copy_mode="assign"),
        # trained engines' models: none (their calibrations come with them)
        **{d: MemoryDataset(models.get(d), copy_mode="assign") for e in engine_methods()
           for d in engine_class(e).catalog_inputs.values()},
    })
    outputs = ["predictions_vote", "review_queue", "predictions_llm", "llm_variability"]
    datasets.update({name: MemoryDataset() for name in outputs})
    catalog = DataCatalog(datasets=datasets)
    SequentialRunner().run(create_pipeline(), catalog)
    return {name: catalog.load(name) for name in outputs}


def test_catalog_resolves_every_pipeline_output():
    entries = {**yaml.safe_load((PROJECT / "conf/base/catalog_ensemble.yml").read_text()),
               **yaml.safe_load((PROJECT / "conf/base/catalog_extract.yml").read_text())}
    config = {k: v for k, v in resolved("catalog").items() if k in entries and "credentials" not in k}
    catalog = DataCatalog.from_config(config)
    pipeline = create_pipeline()
    for name in pipeline.outputs():
        assert name in catalog, name
    assert {f"predictions_{e}" for e in engine_methods()} <= pipeline.inputs()
    described = catalog["predictions_vote"]._describe()
    assert type(catalog["predictions_vote"]).__name__ == "ParquetDataset" and described["version"] is not None


def test_pipeline_votes_available_engines_and_respects_inputs(tmp_path):
    rows = {
        "rapidocr": {"DATE": "8/8/89", "CITY": "HOLLAND", "STATE": "OH.", "ZIP": "43528"},
        "donut": {"DATE": "8/8/89", "CITY": "HOLLAND", "STATE": "OH.", "ZIP": "43528"},
        "tesseract": {"DATE": "8/3/89", "CITY": "HOLIAND", "STATE": "0H", "ZIP": "4352B"},
    }
    confidence = {"rapidocr": 0.97, "donut": 0.9, "tesseract": 0.6}  # typical raw confidences
    tables = {e: predictions_from_records([{"file_name": "f.png", **v, **{f"{k}_conf": confidence[e] for k in KEYS}}])
              for e, v in rows.items()}
    out = _run(_params(), tables, tmp_path)
    vote = out["predictions_vote"]
    assert list(vote.columns) == COLUMNS and len(vote) == 1
    assert vote.loc[0, ["DATE", "CITY", "STATE", "ZIP"]].tolist() == ["8/8/89", "HOLLAND", "OH.", "43528"]
    assert out["predictions_llm"].empty and "disabled" in out["llm_variability"]["status"]
    # only the engine named in ensemble.inputs is used
    out = _run({**_params(), "inputs": ["tesseract"]}, tables, tmp_path)
    assert out["predictions_vote"].loc[0, "CITY"] == "HOLIAND"
    assert set(out["review_queue"].columns) == {"form", "field", "candidates", "chosen", "confidence"}


def test_pipeline_with_no_engine_output_gives_empty_tables(tmp_path):
    out = _run(_params(), {}, tmp_path)
    assert out["predictions_vote"].empty and list(out["predictions_vote"].columns) == COLUMNS
    assert out["review_queue"].empty


class _Model:
    """A trained model reference as the catalog gives it, with a calibration in its config."""

    available = True

    def __init__(self, calibration: dict) -> None:
        self.config = type("Config", (), {"calibration": calibration})()

    def bundle(self):
        return self


def test_uncalibrated_engines_stay_out_of_the_default_vote_and_a_trained_model_brings_its_calibration(tmp_path):
    right = {"DATE": "8/8/89", "CITY": "HOLLAND", "STATE": "OH.", "ZIP": "43528"}
    wrong = {"DATE": "8/3/89", "CITY": "HOLIAND", "STATE": "0H", "ZIP": "4352B"}
    tables = {e: predictions_from_records([{"file_name": "f.png", **v, **{f"{k}_conf": 0.99 for k in KEYS}}])
              for e, v in (("fieldreader", right), ("donut", wrong))}
    # the field reader's model brings its calibration; donut has none and stays out of the default vote
    sure = {k: {"a": 4.0, "b": 0.0, "p_none": 0.5, "case": 0.95} for k in KEYS}
    out = _run(_params(), tables, tmp_path, models={"fieldreader_model": _Model(sure)})
    assert out["predictions_vote"].loc[0, "CITY"] == "HOLLAND"  # donut (uncalibrated) left out
    assert engine_calibrations(fieldreader_model=_Model(sure), donut_model=None) == {"fieldreader": sure}
