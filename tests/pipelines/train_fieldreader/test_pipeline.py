"""The field reader's training steps end to end on a few shared crops, the model dataset and the engine."""

from __future__ import annotations

import pytest
import yaml
from kedro.io.core import Version

from handwriting_pipeline.datasets.forms import read_donut_folder
from handwriting_pipeline.datasets.model import DonutModelDataset, FieldReaderModelDataset, PickledModelDataset
from handwriting_pipeline.engines.fieldreader import FieldReaderEngine
from handwriting_pipeline.fieldreader.recipe import fine_tune, hold_out_forms
from handwriting_pipeline.fieldreader.tuning import add_lexicon_and_calibration, add_style_layer
from handwriting_pipeline.pipelines.train import create_pipeline
from handwriting_pipeline.registry import engine_methods
from handwriting_pipeline.training.not_trained import NotTrained
from tests.conftest import PROJECT_ROOT


def _params(tmp_path) -> dict:
    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_train_fieldreader.yml").read_text())["train_fieldreader"]
    params["checkpoint_dir"] = str(tmp_path / "ckpt")
    params["trainer"].update(epochs=1, batch_size=4, progress_bar=False, accelerator="cpu", learning_rate=2e-4)
    params["lexicon"]["grid"] = {"penalty": [2.0], "case_weight": [0.0]}
    return params


def test_the_engine_before_training_says_train_it_first_and_is_not_a_default_crash(tmp_path):
    ref = FieldReaderModelDataset(path=str(tmp_path / "fieldreader_model"), version=None).load()
    assert not ref.available and "kedro run --pipeline train" in ref.reason
    assert FieldReaderEngine.unavailable(model=ref)  # the default run skips it (one log line)
    with pytest.raises(RuntimeError, match="Train it first: kedro run --pipeline train"):
        FieldReaderEngine.from_model(ref).check_ready()
    assert "fieldreader" in engine_methods()


def test_nodes_train_save_and_read(tmp_path, shared_hsf_top):
    forms, _ = read_donut_folder(shared_hsf_top / "train")
    forms = forms.subset(forms.labels["file_name"].tolist()[:10])
    params = _params(tmp_path)
    split = hold_out_forms(forms, params)
    assert len(split["holdout"]) == 1 and len(split["fit"]) == 9
    reader, history = fine_tune(forms, split, params)
    assert len(history) == 1 and {"val_cer", "train_loss"} <= set(history.columns)
    reader = add_lexicon_and_calibration(reader, forms, split, params)
    assert set(reader.config.calibration) == {"DATE", "CITY", "STATE", "ZIP"}
    # the style layer: fitted on the fit forms, kept only if it reads the held-out form better
    params["style"].update(grid=[0.0, 1.0], features=["all"])
    reader = add_style_layer(reader, forms, split, params)
    assert reader.style is None or reader.style.summary["holdout_fla"] > reader.style.summary["holdout_fla_without"]
    dataset = FieldReaderModelDataset(path=str(tmp_path / "fieldreader_model"), version=None)
    dataset.save(reader)
    ref = dataset.load()
    assert ref.available and ref.fingerprint
    engine = FieldReaderEngine.from_model(ref, beam=4)
    engine.check_ready()
    name = split["holdout"][0]
    result = engine.read(forms.images[name], name)
    assert result.error is None and set(result.fields) == {"DATE", "CITY", "STATE", "ZIP"}
    assert FieldReaderEngine.vote_calibration(model=ref) == reader.config.calibration
    # left out of train.models: nothing trained, the saved model stays
    step = next(n for n in create_pipeline().nodes if n.name == "fine_tune_fieldreader")
    not_trained = step.func(models=["donut"], train_forms=forms, split=split, params=params)[0]
    assert add_lexicon_and_calibration(not_trained, forms, split, params) is not_trained
    assert add_style_layer(not_trained, forms, split, params) is not_trained
    dataset.save(not_trained)
    assert dataset.load().available


@pytest.mark.parametrize("dataset_class", [DonutModelDataset, FieldReaderModelDataset, PickledModelDataset])
def test_a_model_left_out_of_training_saves_nothing_on_a_fresh_checkout(tmp_path, dataset_class):
    """Versioned as in the catalog, with no version saved yet: NotTrained writes nothing and does
    not fail (it used to: Kedro's check after a save found no version)."""
    dataset = dataset_class(path=str(tmp_path / "model"), version=Version(None, None))
    dataset.save(NotTrained("not in train.models"))
    assert not (tmp_path / "model").exists()
    ref = dataset.load()
    assert not ref.available and "kedro run --pipeline train" in ref.reason


def test_pipeline_outputs():
    steps = create_pipeline().only_nodes_with_tags("fieldreader")
    assert steps.outputs() == {"fieldreader_model", "fieldreader_history", "fieldreader_ensemble_model",
                               "fieldreader_oof_choices"}
    assert {"fieldreader_oof_readings", "fieldreader_crossfit_folds", "fieldreader_oof_predictions"} <= steps.all_outputs()
