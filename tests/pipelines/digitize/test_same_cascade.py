"""Evaluate and digitize give the same cascade on the same forms with the same trained models:
digitize reads with it (the fast engine every form, the others only the forms it escalates),
the ensemble pipeline replays it over the engines' full readings of the evaluation forms - both
through :mod:`handwriting_pipeline.ensemble.cascade`. Real shared crops, RapidOCR and the toy
trained engine (trained here on half of the forms) playing the fast reader."""

from __future__ import annotations

from typing import ClassVar

import pytest

from handwriting_pipeline import registry
from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.forms import read_donut_folder
from handwriting_pipeline.datasets.model import PickledModelDataset
from handwriting_pipeline.digitize.core import make_plan, read_partition
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.pipelines.ensemble.nodes import cascade_predictions, engine_calibrations
from handwriting_pipeline.pipelines.extract.nodes import check_engines, extract
from tests.toy_trained_engine import ToyTrainedEngine, train_toy

from .test_digitize import NoModel, _params


class FastToy(ToyTrainedEngine):
    """The toy as the cascade's first stage, calibrated so that it is sure of the forms it knows
    (confidence 0.9) and unsure of the others (it reads "None")."""

    fast: ClassVar[bool] = True

    @classmethod
    def vote_calibration(cls, model=None, **inputs):
        return {k: {"a": -5.0, "b": 10.0, "p_none": 0.1, "case": 0.9} for k in KEYS}


@pytest.mark.timeout(600)
def test_evaluate_and_digitize_cascade_the_same(monkeypatch, tmp_path, shared_validation):
    monkeypatch.setitem(registry.ENGINES, "toy", FastToy)
    forms, _ = read_donut_folder(shared_validation)
    names = forms.labels["file_name"].tolist()[:4]
    forms = forms.subset(names)
    dataset = PickledModelDataset(path=str(tmp_path / "toy_model"))
    dataset.save(train_toy(forms.subset(names[:2]), {"confidence": 0.9}))  # sure of half of the forms
    ref = dataset.load()
    models = {"toy_model": ref, "donut_model": NoModel(), "fieldreader_model": NoModel()}
    params = _params()
    extract_params = {**params["extract"], "engines": ["rapidocr", "toy"], "toy": {}, "workers": 1, "progress": False}
    ensemble = {**params["ensemble"], "methods": ["cascade"], "cascade": {"threshold": 0.5, "escalate_invalid": False}}
    cache = ResponseCache(tmp_path / "cache")

    # evaluate: every engine reads every form, the ensemble pipeline replays the cascade
    status = check_engines(extract_params, {}, **models)
    tables = {m: extract(forms, extract_params, status, cache, method=m, **({"model": ref} if m == "toy" else {}))
              for m in ("rapidocr", "toy")}
    cascaded, report = cascade_predictions(ensemble, engine_calibrations(**models), **tables)
    cascaded = cascaded.set_index("file_name")
    assert report["fast"] == ["toy"] and report["slow"] == ["rapidocr"] and report["forms"] == len(names)
    assert report["escalated"] == 2  # the forms the toy never saw, not the others
    assert report["escalated_share"] == report["escalated"] / len(names)

    # digitize: the cascade (its default method) over the same engines, answers from the shared cache
    plan = make_plan({**params["digitize"], "method": "cascade", "engines": ["rapidocr", "toy"], "progress": False,
                      "workers": 1}, extract_params, ensemble, {}, cache, datasets=models)
    records = read_partition(plan, [str(shared_validation / n) for n in names], review_crops=False)

    assert len(records) == len(names) and all(r["error"] is None for r in records)
    for record in records:
        name = record["source"].rsplit("/", 1)[-1]
        assert {k: record[k] for k in KEYS} == {k: cascaded.at[name, k] for k in KEYS}, name
        assert [record[f"{k}_conf"] for k in KEYS] == [round(float(cascaded.at[name, f"{k}_conf"]), 4) for k in KEYS]
    assert sum(r["engines"] == "rapidocr;toy" for r in records) == report["escalated"]  # the slow stage's forms
