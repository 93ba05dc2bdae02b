"""Out-of-fold readings (fieldreader/crossfit.py): folds disjoint and covering, a writer's forms in
one fold, no form read by a reader that saw it, resumable fold by fold, the Kedro node off by default."""

from __future__ import annotations

import json

import pandas as pd
import pytest
from kedro.config import OmegaConfigLoader

from handwriting_pipeline.config import CrossfitSettings, FieldReaderTrainSettings
from handwriting_pipeline.fieldreader import recipe
from handwriting_pipeline.fieldreader.crossfit import (
    DONE_FILE,
    READING_COLUMNS,
    assign_folds,
    collect_folds,
    crossfit_readings,
    fields_right,
    fit_fold,
    fit_folds,
    fold_dir,
    fold_plan,
    fold_split,
    is_complete,
    load_fold_readers,
    load_readings,
    oof_predictions,
)
from handwriting_pipeline.fields import KEYS
from tests.conftest import PROJECT_ROOT
from tests.project_conf import resolved

NAMES = [f"f{i:04d}_{i % 50:02d}.png" for i in range(1, 41)] + [f"f0067_25_N{c}.png" for c in "abcde"]


def test_folds_are_disjoint_covering_seeded_and_keep_a_writer_together():
    folds = assign_folds(NAMES, 3, seed=0)
    assert set(folds) == set(NAMES) and set(folds.values()) == {0, 1, 2}  # every form in exactly one fold
    assert len({folds[n] for n in NAMES if n.startswith("f0067")}) == 1  # the blank form's copies together
    assert assign_folds(list(reversed(NAMES)), 3, seed=0) == folds  # not the forms' order
    assert assign_folds(NAMES, 3, seed=1) != folds
    sizes = pd.Series(folds).value_counts()
    assert sizes.max() - sizes.min() <= 6
    with pytest.raises(ValueError, match="folds"):
        assign_folds(NAMES, 1)
    for k in range(3):
        split = fold_split(NAMES, folds, k, holdout_forms=5, holdout_share=0.1)
        assert set(split["fold"]) == {n for n in NAMES if folds[n] == k}
        assert not (set(split["fit"]) | set(split["holdout"])) & set(split["fold"])
        assert not set(split["fit"]) & set(split["holdout"]) and len(split["holdout"]) == 3
        assert set(split["fit"]) | set(split["holdout"]) | set(split["fold"]) == set(NAMES)


def test_settings_block_and_the_node_off_by_default():
    block = resolved("parameters")["train_fieldreader"]
    assert CrossfitSettings.from_params(block["crossfit"]) == CrossfitSettings() and CrossfitSettings().folds == 0
    readings, folds = crossfit_readings(None, block)  # off: no forms read, nothing trained
    assert readings.empty and list(readings.columns) == READING_COLUMNS and folds.empty


def test_oof_predictions_and_fields_right():
    rows = [{"file_name": n, "field": k, "reading": "x", "confidence": 0.5, "fold": f, "gold": "x" if k != "ZIP" or f else "y"}
            for n, f in (("b.png", 0), ("a.png", 1)) for k in KEYS]
    readings = pd.DataFrame(rows, columns=READING_COLUMNS)
    table = oof_predictions(readings)
    assert table["file_name"].tolist() == ["b.png", "a.png"] and table["fold"].tolist() == [0, 1]
    assert {*KEYS, *(f"{k}_conf" for k in KEYS)} <= set(table.columns)
    assert fields_right(readings).to_dict() == {"b.png": 3, "a.png": 4}


def _params(tmp_path) -> dict:
    params = resolved("parameters")["train_fieldreader"]
    params["checkpoint_dir"] = str(tmp_path / "main_ckpt")  # the main reader's: crossfit uses its own per fold
    params["trainer"].update(epochs=1, batch_size=4, progress_bar=False, accelerator="cpu", learning_rate=2e-4,
                             augment=0.0, max_minutes=2)
    params["crossfit"].update(folds=3, seed=0, model_dir=str(tmp_path / "crossfit"), beam=2)
    return params


def test_out_of_fold_readings_come_from_readers_that_never_saw_the_form_and_resume(shared_hsf_top, tmp_path,
                                                                                   monkeypatch):
    from handwriting_pipeline.datasets.forms import read_donut_folder

    forms, _ = read_donut_folder(shared_hsf_top / "train")
    forms = forms.subset(forms.labels["file_name"].tolist()[:6])
    names = forms.labels["file_name"].tolist()
    params = _params(tmp_path)
    calls: list[dict] = []
    original = recipe.fine_tune

    def spy(train_forms, split, params, form=None):
        calls.append({"split": split, "checkpoint_dir": FieldReaderTrainSettings.from_params(params).checkpoint_dir,
                      "form": form})
        return original(train_forms, split, params, form)

    monkeypatch.setattr(recipe, "fine_tune", spy)
    result = fit_folds(forms, params)
    folds = assign_folds(names, 3, seed=0)
    assert len(calls) == 3 and len(result.readers) == 3 and result.folds["trained"].all()
    for k, call in enumerate(calls):
        seen = set(call["split"]["fit"]) | set(call["split"]["holdout"])
        read = {n for n in names if folds[n] == k}
        assert read and not seen & read and seen | read == set(names)  # trained on everything but its fold
        assert call["checkpoint_dir"] == str(fold_dir(params["crossfit"]["model_dir"], k) / "checkpoints")
    readings = result.readings
    assert list(readings.columns) == READING_COLUMNS and len(readings) == 4 * len(names)
    assert readings.groupby("file_name")["fold"].nunique().eq(1).all()
    assert {n: int(f) for n, f in readings.groupby("file_name")["fold"].first().items()} == folds  # its own fold's reader
    assert set(readings["field"]) == set(KEYS) and readings["confidence"].between(0, 1).all()
    assert (readings["gold"] == [forms.fields(n)[k] for n, k in zip(readings["file_name"], readings["field"])]).all()
    assert (result.folds["wall_s"] > 0).all() and result.folds["read_forms"].sum() == len(names)
    pd.testing.assert_frame_equal(load_readings(tmp_path / "crossfit" / "readings.csv"), readings)
    assert len(pd.read_csv(tmp_path / "crossfit" / "folds.csv")) == 3
    summary = json.loads((fold_dir(tmp_path / "crossfit", 1) / "model" / "fieldreader.json").read_text())["summary"]
    assert summary["crossfit"]["fold"] == 1 and summary["fit_forms"] == result.folds["fit_forms"][1]

    # the same call again: every fold is complete, nothing trains, the same readings come back
    calls.clear()
    again = fit_folds(forms, params)
    assert not calls and not again.folds["trained"].any()
    pd.testing.assert_frame_equal(again.readings, readings)
    assert len(load_fold_readers(tmp_path / "crossfit")) == 3
    collected, rows = collect_folds(tmp_path / "crossfit")  # the results of folds trained elsewhere, training nothing
    pd.testing.assert_frame_equal(collected, readings)
    assert rows["fold"].tolist() == [0, 1, 2] and not rows["trained"].any() and not calls
    assert rows["read_forms"].tolist() == result.folds["read_forms"].tolist()

    # a crash in fold 1 (no done.json): only fold 1 trains again, here alone (one process per fold)
    (fold_dir(tmp_path / "crossfit", 1) / DONE_FILE).unlink()
    assert not is_complete(fold_dir(tmp_path / "crossfit", 1))
    assert collect_folds(tmp_path / "crossfit")[1]["fold"].tolist() == [0, 2]
    _, alone, row = fit_fold(forms, FieldReaderTrainSettings.from_params(params), 1, tmp_path / "crossfit")
    assert len(calls) == 1 and not set(calls[0]["split"]["fit"]) & {n for n in names if folds[n] == 1}
    assert row["trained"] and set(alone["file_name"]) == {n for n in names if folds[n] == 1}
    resumed = fit_folds(forms, params)
    assert len(calls) == 1 and not resumed.folds["trained"].any()
    # its plan was the same: it went on from its last checkpoint (all epochs done) and reads as before
    assert json.loads((fold_dir(tmp_path / "crossfit", 1) / DONE_FILE).read_text())["resumed"] is True
    pd.testing.assert_frame_equal(resumed.readings, readings)
    assert len(load_fold_readers(tmp_path / "crossfit")) == 3

    # other training settings: a complete fold no longer counts as done for them
    settings = FieldReaderTrainSettings.from_params(params)
    split = fold_split(names, folds, 0, settings.holdout_forms, settings.holdout_share)
    here = fold_dir(tmp_path / "crossfit", 0)
    assert is_complete(here, fold_plan(settings, split, 0))
    other = FieldReaderTrainSettings.from_params({**params, "trainer": {**params["trainer"], "seed": 7}})
    assert not is_complete(here, fold_plan(other, split, 0))
    decoding = FieldReaderTrainSettings.from_params({**params, "lexicon": {"grid": {"penalty": [1.0], "case_weight": [0.0]}}})
    assert is_complete(here, fold_plan(decoding, split, 0))  # what only the main reader's decoding uses: still done

    # the fold readers as one reader, its choices made on the out-of-fold forms
    from handwriting_pipeline.datasets.model import FieldReaderRef
    from handwriting_pipeline.engines.fieldreader import FieldReaderEnsembleEngine
    from handwriting_pipeline.fieldreader.ensemble import EnsembleReader, load_reader
    from handwriting_pipeline.fieldreader.oof import CHOICE_COLUMNS, ensemble_on_oof, not_built

    ensemble, choices, oof = ensemble_on_oof(readings, resumed.folds, forms, params)
    assert sorted(oof["file_name"]) == sorted(names) and oof[[f"{k}_conf" for k in KEYS]].notna().all().all()
    assert isinstance(ensemble, EnsembleReader) and len(ensemble.readers) == 3
    assert list(choices.columns) == CHOICE_COLUMNS and choices["component"].tolist() == ["lexicon", "style layer"]
    assert (choices["forms"] == len(names)).all() and not choices.set_index("component").loc["style layer", "on"]
    lexicon = choices.set_index("component").loc["lexicon"]
    assert bool(lexicon["on"]) == bool(pd.notna(lexicon["low"]) and lexicon["low"] > 0)  # on only above 0
    assert set(ensemble.config.calibration) == set(KEYS) and ensemble.config.summary["members"] == 3
    saved = ensemble.save(tmp_path / "ensemble")
    back = load_reader(saved)
    assert isinstance(back, EnsembleReader) and back.config.to_json() == ensemble.config.to_json()
    back.save(saved)  # saved again where it was loaded from: its members survive
    assert len(load_reader(saved).readers) == 3 and not (saved / "members.part").exists()
    ref = FieldReaderRef.from_path(saved)
    engine = FieldReaderEnsembleEngine.from_model(ref, beam=2, batch_size=4, threads=1)
    engine.check_ready()
    read = engine.read_batch([forms.images[n] for n in names[:2]], names[:2])
    assert all(r.error is None and set(r.fields) == set(KEYS) for r in read)
    assert FieldReaderEnsembleEngine.vote_calibration(model=ref) == ensemble.config.calibration
    assert [c["component"] for c in FieldReaderEnsembleEngine.model_choices(model=ref)] == ["lexicon", "style layer"]
    # no out-of-fold readings (crossfit off): nothing is built
    assert not hasattr(ensemble_on_oof(readings.iloc[:0], resumed.folds, forms, params)[0], "config")
    assert not_built()[1].empty and not_built()[2].empty

    # digitize's guarantee, fitted with the ensemble on the out-of-fold forms and saved with it
    from handwriting_pipeline.datasets.cache import ResponseCache
    from handwriting_pipeline.digitize.core import make_plan
    from handwriting_pipeline.pipelines.train.nodes import add_ensemble_guarantees

    conf = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")["parameters"]
    guarded = add_ensemble_guarantees(ensemble, oof, forms, {**conf["extract"], "workers": 1}, conf["ensemble"],
                                      conf["digitize"], ResponseCache(tmp_path / "cache"))
    [(key, levels)] = guarded.config.summary["guarantees"].items()
    assert key == "cascade:" + "+".join(sorted(["fieldreader_ensemble", "rapidocr"]))
    assert set(levels) == {"value", "writing"} and levels["value"]["alpha"] == 0.01 and levels["writing"]["alpha"] == 0.05
    for level in levels.values():
        assert set(level["fields"]) == set(KEYS) and level["delta"] == 0.1
        assert all(f["n"] == len(names) for f in level["fields"].values())  # every out-of-fold form calibrates
    # the vote's recalibration: chosen on the same out-of-fold forms with its interval, saved only when on
    [choice] = [c for c in guarded.config.summary["oof"]["choices"] if c["component"] == "confidence recalibration"]
    assert choice["on"] == (choice["interval"]["low"] > 0) and choice["forms"] == len(names)
    recalibration = guarded.config.summary["recalibration"]
    assert bool(recalibration) == choice["on"]
    ref = FieldReaderRef.from_path(guarded.save(tmp_path / "guarded"))
    assert FieldReaderEnsembleEngine.model_guarantees(model=ref) == guarded.config.summary["guarantees"]
    assert FieldReaderEnsembleEngine.vote_recalibration(model=ref) == recalibration
    digitize = {**conf["digitize"], "review": {**conf["digitize"]["review"], "on": "value"}, "progress": False}
    plan = make_plan(digitize, conf["extract"], conf["ensemble"], {}, ResponseCache(tmp_path / "cache"),
                     datasets={"fieldreader_ensemble_model": ref})
    assert plan.guarantee["key"] == key and plan.guarantee["alpha"] == 0.01  # the model's own guarantee
    untrained = not_built()[0]
    assert add_ensemble_guarantees(untrained, oof, forms, conf["extract"], conf["ensemble"], conf["digitize"],
                                   None) is untrained


def test_folds_trained_side_by_side_read_as_the_folds_one_after_another(shared_hsf_top, tmp_path):
    """``crossfit.jobs: 2``: the folds train in processes of their own; every form is still read by
    the reader of its own fold, the rows say trained, and a second call trains nothing."""
    from handwriting_pipeline.datasets.forms import read_donut_folder

    forms, _ = read_donut_folder(shared_hsf_top / "train")
    forms = forms.subset(forms.labels["file_name"].tolist()[:6])
    names = forms.labels["file_name"].tolist()
    params = _params(tmp_path)
    params["crossfit"]["jobs"] = 2
    result = fit_folds(forms, params)
    assert result.folds["trained"].all() and len(result.readers) == 3
    assert {n: int(f) for n, f in result.readings.groupby("file_name")["fold"].first().items()} == assign_folds(names, 3)
    assert all(is_complete(fold_dir(tmp_path / "crossfit", k)) for k in range(3))
    again = fit_folds(forms, params)
    assert not again.folds["trained"].any()
    pd.testing.assert_frame_equal(again.readings, result.readings)
    settings = FieldReaderTrainSettings.from_params(params)
    assert settings.crossfit.jobs == 2
    assert fold_plan(settings, fold_split(names, assign_folds(names, 3), 0, settings.holdout_forms,
                                          settings.holdout_share), 0) == json.loads(
        (fold_dir(tmp_path / "crossfit", 0) / "plan.json").read_text())  # jobs is not part of a fold's plan
