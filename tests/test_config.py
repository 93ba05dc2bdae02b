"""Typed settings: every key of the parameter blocks maps to a dataclass field, the dataclass
defaults are the YAML values, and an unknown key stops with the key and the YAML file named."""

from __future__ import annotations

import dataclasses
import functools
import inspect
import typing
from pathlib import Path
from typing import Any

import pytest
import yaml

from handwriting_pipeline.config import (
    FieldReaderTrainSettings,
    PretrainSettings,
    Settings,
    StageSettings,
    TrainSettings,
)
from handwriting_pipeline.curation import CurationSettings
from handwriting_pipeline.digitize.core import DigitizeSettings
from handwriting_pipeline.ensemble.settings import EnsembleSettings, VoteSettings
from handwriting_pipeline.evaluation import EvaluationSettings
from handwriting_pipeline.methods import ExtractSettings
from handwriting_pipeline.registry import engine_class, engine_methods

CONF = Path(__file__).resolve().parents[1] / "conf" / "base"


def _block(file: str, key: str) -> dict[str, Any]:
    """The block as a run of the HSF form gets it (interpolations such as the form's data root
    resolved); ``file`` must hold it."""
    assert key in yaml.safe_load((CONF / file).read_text()), f"{file} has no '{key}' block"
    return _PARAMETERS()[key]


@functools.cache
def _PARAMETERS() -> dict[str, Any]:  # noqa: N802 - a constant, loaded once
    from kedro.config import OmegaConfigLoader

    from handwriting_pipeline.settings import CONFIG_LOADER_ARGS

    loader = OmegaConfigLoader(str(CONF.parent), base_env="base", default_run_env="base",
                               custom_resolvers=CONFIG_LOADER_ARGS["custom_resolvers"])
    return loader["parameters"]


def _check_block(cls: type[Settings], block: dict[str, Any], where: str, free: tuple[str, ...] = ()) -> None:
    """Every YAML key is a field; a field with a default has the YAML value; nested blocks too."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    for key, value in block.items():
        assert key in fields, f"{where}.{key} has no field in {cls.__name__}"
        kind = hints[key]
        if isinstance(kind, type) and issubclass(kind, Settings):
            _check_block(kind, value, f"{where}.{key}")
            continue
        f = fields[key]
        if key in free:
            continue
        if f.default is not dataclasses.MISSING:
            assert f.default == value, f"{where}.{key}: {cls.__name__} default {f.default!r}, YAML {value!r}"
        elif f.default_factory is not dataclasses.MISSING:
            assert f.default_factory() == value, f"{where}.{key}: {cls.__name__} default differs from the YAML"


def test_train_yaml_maps_to_the_settings_with_the_same_defaults():
    block = _block("parameters_train.yml", "train")
    _check_block(TrainSettings, block, "train")
    settings = TrainSettings.from_params(block)
    assert isinstance(settings.pretrain, PretrainSettings) and settings.finetune.learning_rate == 5.0e-4
    assert settings.pretrain.learning_rate == 1.0e-3 and settings.model.text_lines.freeze_steps == 150
    assert settings.to_dict()["finetune"]["epochs"] == block["finetune"]["epochs"]


def test_fieldreader_yaml_maps_to_the_settings_with_the_same_defaults():
    block = _block("parameters_train_fieldreader.yml", "train_fieldreader")
    _check_block(FieldReaderTrainSettings, block, "train_fieldreader")
    assert FieldReaderTrainSettings.from_params(block) == FieldReaderTrainSettings()  # the YAML is the default


def test_ensemble_yaml_maps_to_the_settings_with_the_same_defaults():
    """The vote and LLM blocks are typed too; only the vote's calibration (fitted values) has no default."""
    block = _block("parameters_ensemble.yml", "ensemble")
    _check_block(EnsembleSettings, {k: v for k, v in block.items() if k != "vote"}, "ensemble")
    _check_block(VoteSettings, block["vote"], "ensemble.vote", free=("calibration", "recalibration"))
    settings = EnsembleSettings.from_params(block)
    assert settings.vote.calibration == block["vote"]["calibration"] and settings.llm.hints == {"k": 0}
    with pytest.raises(ValueError, match="unknown key 'treshold' in ensemble.vote"):
        EnsembleSettings.from_params({**block, "vote": {"treshold": 0.5}})
    # a mapping given in part keeps the other keys' defaults
    assert VoteSettings.from_params({"validator_factor": {"DATE": 1.0}}).validator_factor["ZIP"] == 0.1


def test_digitize_yaml_maps_to_the_settings_with_the_same_defaults():
    block = _block("parameters_digitize.yml", "digitize")
    _check_block(DigitizeSettings, block, "digitize")
    assert DigitizeSettings.from_params(block) == DigitizeSettings()  # the YAML is the default
    with pytest.raises(ValueError, match="unknown key 'partition' in digitize"):
        DigitizeSettings.from_params({"partition": 10})


def test_evaluation_yaml_maps_to_the_settings_with_the_same_defaults():
    block = _block("parameters_evaluation.yml", "evaluation")
    _check_block(EvaluationSettings, block, "evaluation")
    assert EvaluationSettings.from_params(block) == EvaluationSettings()  # the YAML is the default
    assert EvaluationSettings.from_params({"data_dir": "x"}).data_dir == "x"  # a runtime parameter
    where = r"evaluation.cost \(conf/base/parameters_evaluation.yml\)"
    with pytest.raises(ValueError, match=rf"unknown key 'include_costs_of' in {where}"):
        EvaluationSettings.from_params({"cost": {"include_costs_of": {}}})
    with pytest.raises(ValueError, match=r"unknown key 'min_ink' in evaluation.input_checks"):
        EvaluationSettings.from_params({"input_checks": {"min_ink": 0.1}})


def test_extract_yaml_maps_to_the_settings_with_the_same_defaults():
    """The extract block's own keys are typed; every other key is one engine's block (checked by
    the engine's settings_class: test_engine_blocks_map_to_their_settings_and_constructor_defaults)."""
    block = _block("parameters_extract.yml", "extract")
    methods = set(engine_methods())
    _check_block(ExtractSettings, {k: v for k, v in block.items() if k not in methods}, "extract")
    settings = ExtractSettings.from_params(block)
    assert settings.blocks.keys() == methods and settings.blocks["rapidocr"] == block["rapidocr"]
    assert ExtractSettings.from_params({k: v for k, v in block.items() if k not in methods}) == ExtractSettings()
    with pytest.raises(ValueError, match=r"unknown key 'worker' in extract \(conf/base/parameters_extract.yml\)"):
        ExtractSettings.from_params({"worker": 2})


def test_curation_yaml_maps_to_the_settings_with_the_same_defaults():
    block = _block("parameters_curation.yml", "curation")
    renamed = {("source_name" if k == "source" else k): v for k, v in block.items()}  # `source` names the file
    _check_block(CurationSettings, renamed, "curation")
    assert CurationSettings.from_params(block) == CurationSettings()  # the YAML is the default
    assert CurationSettings.from_params({"source": "donut_folder", "data_dir": "x"}).source_name == "donut_folder"
    # curation.synthetic passes the generator's own options on, and rejects any other key
    assert CurationSettings.from_params({"synthetic": {"blank_rate": 0.1}}).synthetic.options == {"blank_rate": 0.1}
    with pytest.raises(ValueError, match=r"unknown key 'n_form' in curation.synthetic \(conf/base/parameters_curation.yml\)"):
        CurationSettings.from_params({"synthetic": {"n_form": 3}})
    with pytest.raises(ValueError, match=r"unknown key 'margin' in curation.crop \(conf/base/parameters_curation.yml\)"):
        CurationSettings.from_params({"crop": {"margin": 3}})


def test_stage_keys_that_differ_between_stages_have_no_default():
    """pretrain and finetune set different values: the dataclass must not pick one of them."""
    block = _block("parameters_train.yml", "train")
    required = {f.name for f in dataclasses.fields(StageSettings) if f.default is dataclasses.MISSING
                and f.default_factory is dataclasses.MISSING}
    differ = {k for k in block["finetune"] if k in block["pretrain"] and block["finetune"][k] != block["pretrain"][k]}
    assert differ <= required, differ - required


@pytest.mark.parametrize("method", engine_methods())
def test_engine_blocks_map_to_their_settings_and_constructor_defaults(method):
    cls = engine_class(method)
    block = _block("parameters_extract.yml", "extract")[method]
    assert cls.settings_class is not None, f"{method} declares no settings_class"
    _check_block(cls.settings_class, block, f"extract.{method}")
    # the engine's own keyword defaults are the settings' defaults (no second set of defaults)
    parameters = inspect.signature(cls.__init__).parameters
    for f in dataclasses.fields(cls.settings_class):
        if f.default is not dataclasses.MISSING and f.name in parameters:
            assert parameters[f.name].default == f.default, (method, f.name)


def test_unknown_key_names_the_key_and_the_yaml_file():
    block = _block("parameters_train.yml", "train")
    block["finetune"]["learning_rat"] = 1e-3
    with pytest.raises(ValueError, match=r"unknown key 'learning_rat' in train.finetune \(conf/base/parameters_train.yml\)"):
        TrainSettings.from_params(block)
    where = r"train_fieldreader.trainer \(conf/base/parameters_train_fieldreader.yml\)"
    with pytest.raises(ValueError, match=rf"unknown key 'epoch' in {where}"):
        FieldReaderTrainSettings.from_params({"trainer": {"epoch": 3}})
    with pytest.raises(ValueError, match=r"unknown key 'beams' in extract.rapidocr \(conf/base/parameters_extract.yml\)"):
        engine_class("rapidocr").from_params("rapidocr", {"beams": 3})


def test_missing_required_key_is_named():
    with pytest.raises(ValueError, match=r"train.finetune \(conf/base/parameters_train.yml\) lacks the key 'learning_rate'"):
        StageSettings.from_params({"epochs": 1, "max_minutes": None, "restore_best": True})
    with pytest.raises(ValueError, match="extract.recorded_textract .* lacks the key 'path'"):
        engine_class("recorded_textract").from_params("recorded_textract", {"confidence_scale": 100})


def test_settings_are_frozen_and_from_params_accepts_an_instance():
    settings = StageSettings.from_params({"epochs": 1, "learning_rate": 1e-3, "max_minutes": None, "restore_best": True})
    with pytest.raises(dataclasses.FrozenInstanceError):
        settings.epochs = 2  # type: ignore[misc]
    assert StageSettings.from_params(settings) is settings


def test_top_level_form_names_the_shipped_form_the_pipeline_reads():
    """``form`` in parameters.yml: a shipped spec (conf/base/forms), and the one the field
    constants are derived from (only the HSF form is read today)."""
    from handwriting_pipeline.fields.formspec import HSF_FORM, load_form, shipped_forms

    params = yaml.safe_load((CONF / "parameters.yml").read_text())
    assert set(params) == {"form"}, f"parameters.yml: unexpected top-level keys {sorted(set(params) - {'form'})}"
    assert params["form"] in shipped_forms(), f"parameters.yml: form '{params['form']}' is not in conf/base/forms"
    assert params["form"] == HSF_FORM == load_form(params["form"]).name
