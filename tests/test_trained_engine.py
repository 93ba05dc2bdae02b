"""Adding a trained engine touches only its own module (tests/toy_trained_engine.py), two
registry lines (the engine, its training) and its parameter blocks: the toy is trained by the train pipeline, saved by the
catalog factory, read by extract, weighed by the vote with the calibration it learned, and
planned by digitize - with no other edit."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from handwriting_pipeline import registry
from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.model import PickledModelDataset
from handwriting_pipeline.digitize.core import make_plan
from handwriting_pipeline.pipeline_registry import register_pipelines
from handwriting_pipeline.pipelines.train.nodes import trains
from handwriting_pipeline.pipelines.train.pipeline import TRAINING
from tests.test_registry import GOLD, Kept, NoModel, forms  # noqa: F401 - the two tiny labelled forms
from tests.toy_trained_engine import TRAINING_STEPS, ToyTrainedEngine

PROJECT = Path(__file__).resolve().parents[1]


def _model_entry(tmp_path: Path) -> dict:
    """The project's catalog factory for trained models, its path moved under tmp_path."""
    entry = dict(OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")["catalog"]
                 ["{engine}_model"])
    entry["path"] = str(tmp_path / entry["path"])
    return {"{engine}_model": entry}


def test_the_toy_module_needs_nothing_but_the_library():
    tree = ast.parse((PROJECT / "tests/toy_trained_engine.py").read_text())
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert not any(m.startswith("handwriting_pipeline.pipelines") for m in imported)


def test_a_registered_toy_trained_engine_is_trained_read_and_voted(monkeypatch, tmp_path, forms):  # noqa: F811
    monkeypatch.setitem(registry.ENGINES, "toy", ToyTrainedEngine)  # the registry lines: the engine
    monkeypatch.setitem(TRAINING, "toy", TRAINING_STEPS)  # and its training
    params = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")["parameters"]
    params["train_toy"] = {"confidence": 0.9}  # its parameter blocks
    params["extract"].update(toy={}, engines=["toy"], progress=False)
    trainable = list(TRAINING)
    assert trains("toy", "all", trainable) and trains("toy", ["toy"], trainable)
    assert not trains("toy", ["donut"], trainable)
    with pytest.raises(ValueError, match="train.models names unknown trained engines"):
        trains("toy", ["tyo"], trainable)
    pipelines = register_pipelines()
    # the registry wires it everywhere: its training, its extract node, the vote's calibration, digitize
    train = {n.name: n for n in pipelines["train"].nodes}
    assert train["train.train_toy"].outputs == ["toy_model"]
    assert "toy_model" in next(n for n in pipelines["evaluate"].nodes if n.name == "extract.extract_toy").inputs
    assert "toy_model" in next(n for n in pipelines["evaluate"].nodes if n.name == "ensemble.engine_calibrations").inputs
    assert "toy_model" in next(n for n in pipelines["digitize"].nodes if n.name == "digitize.plan_digitize").inputs

    catalog = DataCatalog.from_config(_model_entry(tmp_path))
    catalog["train_forms"] = MemoryDataset(forms, copy_mode="assign")
    catalog["params:train.models"] = MemoryDataset(["toy"])
    catalog["params:form"] = MemoryDataset("hsf_top")
    catalog["params:train_toy"] = MemoryDataset(params["train_toy"])
    assert not catalog.load("toy_model").available  # nothing trained yet: not an error
    toy_training = pipelines["train"].only_nodes_with_tags("toy")
    SequentialRunner().run(toy_training, catalog)
    ref = catalog.load("toy_model")
    assert ref.available and isinstance(catalog.get("toy_model"), PickledModelDataset)
    assert set(ref.load().calibration) == {"DATE", "CITY", "STATE", "ZIP"}
    catalog["params:train.models"] = MemoryDataset(["fieldreader", "donut"])
    SequentialRunner().run(toy_training, catalog)  # left out of train.models: the saved model stays
    assert catalog.load("toy_model").path == ref.path

    evaluate = pipelines["evaluate"]
    from handwriting_pipeline.registry import engine_class, engine_methods

    # every other trained engine's model: none trained here
    UNTRAINED = sorted({d for m in engine_methods() for d in engine_class(m).catalog_inputs.values()} - {"toy_model"})
    catalog_eval = DataCatalog(datasets={
        "evaluation_forms": MemoryDataset(forms, copy_mode="assign"),
        **{f"params:{k}": MemoryDataset(params[k]) for k in ("extract", "ensemble", "evaluation", "form")},
        "extract_cache": MemoryDataset(ResponseCache(tmp_path / "cache"), copy_mode="assign"),
        "ensemble_cache": MemoryDataset(ResponseCache(tmp_path / "llm"), copy_mode="assign"),
        "extract_credentials": MemoryDataset({}), "ensemble_credentials": MemoryDataset({}),
        "llm_prompts": MemoryDataset(None), "llm_hint_forms": MemoryDataset(None),
        "llm_hint_readings": MemoryDataset(None), "run_info": MemoryDataset({}),
        **{name: MemoryDataset(NoModel(), copy_mode="assign") for name in UNTRAINED},
        "toy_model": MemoryDataset(ref, copy_mode="assign"),
        "engine_calibrations": Kept(), "predictions_toy": Kept(), "predictions_vote": Kept(),
        "evaluation_metrics": Kept(),
    })
    pipeline = evaluate.filter(node_names=[n.name for n in evaluate.nodes if n.name != "extract.select_evaluation_forms"])
    SequentialRunner().run(pipeline, catalog_eval)
    toy = catalog_eval.load("predictions_toy")
    assert toy.set_index("file_name")[["DATE", "CITY", "STATE", "ZIP"]].to_dict("index") == GOLD
    assert catalog_eval.load("engine_calibrations") == {"toy": ref.load().calibration}  # the vote weighs it
    assert catalog_eval.load("predictions_vote")["ZIP"].tolist() == ["42071", "02134"]

    plan = make_plan({**params["digitize"], "engines": "default"}, params["extract"], params["ensemble"],
                     datasets={"toy_model": ref, **{name: NoModel() for name in UNTRAINED}})
    assert "toy" in plan.methods and plan.vote.calibration["toy"] == ref.load().calibration
