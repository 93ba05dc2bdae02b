"""Evaluate and digitize give the same vote on the same forms with the same trained models: both
set their engines up with :mod:`handwriting_pipeline.methods` (one calibration precedence: a
trained model's own calibration wins over ``ensemble.vote.calibration``). Real shared crops,
RapidOCR and the toy trained engine (trained here), the parameters naming a conflicting
calibration for the toy."""

from __future__ import annotations

import pytest

from handwriting_pipeline import registry
from handwriting_pipeline.datasets.cache import ResponseCache
from handwriting_pipeline.datasets.forms import read_donut_folder
from handwriting_pipeline.datasets.model import PickledModelDataset
from handwriting_pipeline.digitize.core import make_plan, read_partition
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.pipelines.ensemble.nodes import engine_calibrations, vote_predictions
from handwriting_pipeline.pipelines.extract.nodes import check_engines, extract
from tests.toy_trained_engine import ToyTrainedEngine, train_toy

from .test_digitize import NoModel, _params


@pytest.mark.timeout(600)
def test_evaluate_and_digitize_vote_the_same(monkeypatch, tmp_path, shared_validation):
    monkeypatch.setitem(registry.ENGINES, "toy", ToyTrainedEngine)
    forms, _ = read_donut_folder(shared_validation)
    names = forms.labels["file_name"].tolist()[:4]
    forms = forms.subset(names)
    dataset = PickledModelDataset(path=str(tmp_path / "toy_model"))
    dataset.save(train_toy(forms.subset(names[:2]), {"confidence": 0.9}))  # knows half of the forms
    ref = dataset.load()
    models = {"toy_model": ref, "donut_model": NoModel(), "fieldreader_model": NoModel()}
    params = _params()
    extract_params = {**params["extract"], "engines": ["rapidocr", "toy"], "toy": {}, "workers": 1, "progress": False}
    ensemble = params["ensemble"]
    conflicting = ensemble["vote"]["calibration"]["rapidocr"]  # the parameters name another calibration
    ensemble = {**ensemble, "vote": {**ensemble["vote"], "calibration": {**ensemble["vote"]["calibration"],
                                                                       "toy": conflicting}}}
    cache = ResponseCache(tmp_path / "cache")

    # evaluate: check_engines -> extract_<engine> -> engine_calibrations -> ensemble_vote
    status = check_engines(extract_params, {}, **models)
    tables = {m: extract(forms, extract_params, status, cache, method=m, **({"model": ref} if m == "toy" else {}))
              for m in ("rapidocr", "toy")}
    voted, _ = vote_predictions(ensemble, engine_calibrations(**models), **tables)
    voted = voted.set_index("file_name")

    # digitize: the same engines (answers from the shared cache), the same ensemble parameters
    plan = make_plan({**params["digitize"], "engines": ["rapidocr", "toy"], "progress": False, "workers": 1},
                     extract_params, ensemble, {}, cache, datasets=models)
    assert plan.vote.calibration["toy"] == ref.load().calibration != conflicting  # the model's wins
    records = read_partition(plan, [str(shared_validation / n) for n in names], review_crops=False)

    assert len(records) == len(names) and all(r["error"] is None for r in records)
    for record in records:
        name = record["source"].rsplit("/", 1)[-1]
        assert {k: record[k] for k in KEYS} == {k: voted.at[name, k] for k in KEYS}, name
        assert [record[f"{k}_conf"] for k in KEYS] == [round(float(voted.at[name, f"{k}_conf"]), 4) for k in KEYS]
    assert any(voted.at[n, k] != tables["toy"].set_index("file_name").at[n, k] for n in names for k in KEYS)
