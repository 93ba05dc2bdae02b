"""Adding an engine is one class, one registry line and one parameter block: a toy engine
registered here runs through extract, the vote and the evaluation report with no other edit."""

from __future__ import annotations

from pathlib import Path

import pytest
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner
from PIL import Image

from handwriting_pipeline import registry
from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.forms import metadata_line, read_donut_folder
from handwriting_pipeline.engines.base import Engine, EngineResult
from handwriting_pipeline.pipeline_registry import register_pipelines

PROJECT = Path(__file__).resolve().parents[1]
GOLD = {"a.png": {"DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"},
        "b.png": {"DATE": "1/2/89", "CITY": "Boston", "STATE": "MA", "ZIP": "02134"}}


class ToyEngine(Engine):
    """Reads every form perfectly (it peeks at the answers it was built with)."""

    name = "toy"
    parallel = "thread"
    optional = False

    def __init__(self, answers: dict | None = None, confidence: float = 0.9, **config) -> None:
        super().__init__(confidence=confidence, **config)
        self.answers = answers or {}

    def read(self, image, file_name=""):
        fields = self.answers.get(file_name, {})
        return EngineResult(fields=fields, confidence={k: self.config["confidence"] for k in fields})


class Kept(MemoryDataset):
    """Not released by the runner, so the test reads intermediate outputs."""

    def _release(self) -> None:
        pass


class NoModel:
    available, reason = False, "no model in this test"


@pytest.fixture
def forms(tmp_path):
    folder = tmp_path / "forms"
    folder.mkdir()
    for i, name in enumerate(GOLD):
        image = Image.new("L", (246, 35), 255)
        image.putpixel((i, i), 0)
        image.save(folder / name)
    (folder / "metadata.jsonl").write_text("".join(metadata_line(n, g) + "\n" for n, g in GOLD.items()))
    return read_donut_folder(folder, split="evaluation")[0]


def test_a_registered_toy_engine_runs_through_extract_vote_and_the_report(monkeypatch, tmp_path, forms):
    monkeypatch.setitem(registry.ENGINES, "toy", ToyEngine)  # the one registry line
    params = OmegaConfigLoader(str(PROJECT / "conf"), base_env="base", default_run_env="base")["parameters"]
    params["extract"].update(engines=["toy"], progress=False, toy={"answers": GOLD})  # its parameter block
    pipelines = register_pipelines()
    assert "extract.extract_toy" in {n.name for n in pipelines["evaluate"].nodes}  # namespace.node
    catalog = DataCatalog(datasets={
        "evaluation_forms": MemoryDataset(forms, copy_mode="assign"),
        **{f"params:{k}": MemoryDataset(params[k]) for k in ("extract", "ensemble", "evaluation")},
        "extract_cache": MemoryDataset(ResponseCache(tmp_path / "cache"), copy_mode="assign"),
        "ensemble_cache": MemoryDataset(ResponseCache(tmp_path / "llm"), copy_mode="assign"),
        "extract_credentials": MemoryDataset({}), "ensemble_credentials": MemoryDataset({}),
        "llm_prompts": MemoryDataset(None), "llm_hint_forms": MemoryDataset(None), "llm_hint_readings": MemoryDataset(None),
        "run_info": MemoryDataset({}),
        # the trained engines' models (Donut, field reader): none trained
        **{name: MemoryDataset(NoModel(), copy_mode="assign") for method in registry.engine_methods()
           for name in registry.engine_class(method).catalog_inputs.values()},
        "evaluation_metrics": Kept(), "predictions_toy": Kept(), "predictions_vote": Kept(),
    })
    pipeline = pipelines["evaluate"].filter(node_names=[n.name for n in pipelines["evaluate"].nodes
                                                        if n.name != "extract.select_evaluation_forms"])
    SequentialRunner().run(pipeline, catalog)
    toy = catalog.load("predictions_toy")
    assert toy.set_index("file_name")[["DATE", "CITY", "STATE", "ZIP"]].to_dict("index") == GOLD
    assert catalog.load("predictions_vote")["ZIP"].tolist() == ["42071", "02134"]
    metrics = catalog.load("evaluation_metrics").set_index("method")
    assert list(metrics.index) == ["toy", "vote"]
    assert metrics.loc["toy", "FLA"] == 100.0 and metrics.loc["vote", "FLA"] == 100.0
