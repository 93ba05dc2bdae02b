"""Every kind registers the same way (a table, entries naming what to build, lookups that fail
with the choices, one :class:`~handwriting_pipeline.registry.Step` type): engines, ensembles,
curation sources and trained engines' training steps, checked entry by entry. And adding an
engine is one class, one registry line and one parameter block: a toy engine registered here runs
through extract, the vote, the cascade and the evaluation report with no other edit."""

from __future__ import annotations

import inspect
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
from handwriting_pipeline.pipelines.curation.sources import SOURCES
from handwriting_pipeline.pipelines.ensemble.pipeline import ENSEMBLE_STEPS
from handwriting_pipeline.pipelines.train.pipeline import TRAINING

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
        **{f"params:{k}": MemoryDataset(params[k]) for k in ("extract", "ensemble", "evaluation", "form")},
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
    assert list(metrics.index) == ["toy", "vote", "cascade"]
    assert (metrics.loc[["toy", "vote", "cascade"], "FLA"] == 100.0).all()


# --------------------------------------------------------------------------- every registry, entry by entry
PIPELINES = register_pipelines()
NODES = {n.name: n for n in PIPELINES["__default__"].nodes}


def _takes(func, keywords) -> None:
    """``func`` accepts every keyword of a step's inputs."""
    params = inspect.signature(func).parameters
    if not any(p.kind is p.VAR_KEYWORD for p in params.values()):
        assert set(keywords) <= set(params), f"{func.__name__} does not take {set(keywords) - set(params)}"


@pytest.mark.parametrize("method", list(registry.ENGINES))
def test_every_engine_names_an_engine_class_and_gets_an_extract_node(method):
    cls = registry.engine_class(method)
    assert issubclass(cls, Engine)
    node = NODES[f"extract.extract_{method}"]
    assert node.outputs == [registry.predictions_dataset(method)]
    assert set(cls.catalog_inputs.values()) <= set(node.inputs)


@pytest.mark.parametrize("method", list(registry.ENSEMBLES))
def test_every_ensemble_names_its_function_and_gets_a_node_and_a_report_row(method):
    assert callable(registry.ensemble_function(method))
    step = ENSEMBLE_STEPS[method]
    assert isinstance(step, registry.Step)
    node = NODES[f"ensemble.{step.name}"]
    assert node.outputs[0] == registry.predictions_dataset(method)
    assert {registry.predictions_dataset(e) for e in registry.engine_methods()} <= set(node.inputs)
    _takes(step.func, step.inputs)
    assert registry.predictions_dataset(method) in NODES["evaluation.score_predictions"].inputs
    assert method in registry.all_methods()


def test_the_ensemble_nodes_are_the_registered_ensembles():
    assert list(ENSEMBLE_STEPS) == list(registry.ENSEMBLES)


@pytest.mark.parametrize("name", list(SOURCES))
def test_every_curation_source_is_steps_ending_in_its_candidates(name):
    source = SOURCES[name]
    for step in source.steps:
        assert isinstance(step, registry.Step)  # the one Step type, as training
        assert NODES[f"curation.{step.name}"].outputs == [step.outputs]
        _takes(step.func, step.inputs)
    assert source.output.endswith("_candidates")
    assert source.output in NODES["curation.select_source"].inputs


@pytest.mark.parametrize("method", list(TRAINING))
def test_every_trained_engine_has_steps_that_write_its_model(method):
    cls = registry.engine_class(method)  # a registered engine
    steps = TRAINING[method]
    written = {o for step in steps for o in ([step.outputs] if isinstance(step.outputs, str) else step.outputs)}
    assert set(cls.catalog_inputs.values()) <= written
    assert any(step.skipped is not None for step in steps)  # train.models can leave it out
    for step in steps:
        assert isinstance(step, registry.Step)
        node = NODES[f"train.{step.name}"]
        assert method in node.tags and set(step.inputs.values()) <= set(node.inputs)
        _takes(step.func, step.inputs)


def test_every_engine_with_a_model_to_train_is_in_the_training_registry():
    trained = {m for m in registry.engine_methods() if registry.engine_class(m).requires_training()}
    assert set(TRAINING) <= trained
    assert {"fieldreader", "donut"} <= set(TRAINING)


@pytest.mark.parametrize("table, kind", [(registry.ENGINES, "engine"), (registry.ENSEMBLES, "ensemble"),
                                         (SOURCES, "curation source"), (TRAINING, "trained engine")])
def test_a_lookup_of_an_unknown_name_lists_the_choices(table, kind):
    with pytest.raises(KeyError, match=f"Unknown {kind} 'nope'. Known {kind}s: " + ", ".join(table)):
        registry.lookup(table, "nope", kind)
    first = next(iter(table))
    assert registry.lookup(table, first, kind) is not None


def test_a_step_may_name_its_function_as_a_string_imported_when_it_runs():
    step = registry.Step("handwriting_pipeline.registry:method_list", {"value": "v"}, "out", "split",
                         skipped="handwriting_pipeline.registry:engine_methods")
    assert step.run(value="a;b") == ["a", "b"] and step.skip() == registry.engine_methods()


@pytest.mark.parametrize("method", registry.engine_methods())
def test_every_model_an_engine_reads_is_written_by_a_training_step_and_supersedes_names_engines(method):
    cls = registry.engine_class(method)
    written = {o for steps in TRAINING.values() for step in steps
               for o in ([step.outputs] if isinstance(step.outputs, str) else step.outputs)}
    assert set(cls.catalog_inputs.values()) <= written
    assert set(cls.supersedes) <= set(registry.engine_methods()) and method not in cls.supersedes


def test_a_ready_engine_stands_in_for_the_engines_it_supersedes_in_a_default_run_only():
    from types import SimpleNamespace

    from handwriting_pipeline.methods import ready_engines

    superseding = [m for m in registry.engine_methods() if registry.engine_class(m).supersedes]
    assert superseding, "no registered engine supersedes another"
    method = superseding[0]
    cls = registry.engine_class(method)
    wanted = [method, *cls.supersedes]
    models = {d: SimpleNamespace(available=True, reason="", path=None, fingerprint=None)
              for m in wanted for d in registry.engine_class(m).catalog_inputs.values()}
    specs, skipped = ready_engines(wanted, False, {}, {}, models, where="extract")
    assert [s.method for s in specs] == [method]
    assert all("superseded by " + method in skipped[m] for m in cls.supersedes)
    specs, skipped = ready_engines(wanted, True, {}, {}, models, where="extract")  # named: all run
    assert [s.method for s in specs] == wanted and not skipped
    models = {d: (SimpleNamespace(available=False, reason="not trained") if d in cls.catalog_inputs.values() else ref)
              for d, ref in models.items()}
    specs, _ = ready_engines(wanted, False, {}, {}, models, where="extract")  # not trained: the others run
    assert [s.method for s in specs] == list(cls.supersedes)
