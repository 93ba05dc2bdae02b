"""Honest selection: checkpoints, settings and calibrations are chosen on held-out train forms
(the last 100 of the shared train split), the validation forms are only reported."""

from __future__ import annotations

import pytest
import yaml

from handwriting_pipeline.datasets.forms import read_donut_folder
from handwriting_pipeline.fieldreader.recipe import hold_out_forms
from handwriting_pipeline.selection import Selection, holdout_count, holdout_names, split_for_selection
from tests.conftest import PROJECT_ROOT


@pytest.fixture(scope="module")
def splits(shared_hsf_top):
    train, _ = read_donut_folder(shared_hsf_top / "train", split="train")
    validation, _ = read_donut_folder(shared_hsf_top / "validation", split="validation")
    return train, validation


def test_benchmarks_choose_on_the_field_readers_held_out_train_forms_and_report_validation(splits):
    train, validation = splits
    train_names = train.labels["file_name"].tolist()
    selection = split_for_selection(train, validation)
    choose = selection.choose.labels["file_name"].tolist()
    assert choose == train_names[-100:]
    assert selection.fit.labels["file_name"].tolist() == train_names[:-100]
    assert selection.report.labels["file_name"].tolist() == validation.labels["file_name"].tolist()
    assert not set(choose) & set(validation.labels["file_name"])
    # the same forms the field reader's training holds out (train_fieldreader.holdout_forms)
    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_train_fieldreader.yml").read_text())
    assert hold_out_forms(train, params["train_fieldreader"])["holdout"] == choose
    # a smoke run (fewer forms to fit on and report) still chooses on the same held-out forms
    smoke = split_for_selection(train, validation, limit_train=16, limit_report=8)
    assert smoke.choose.labels["file_name"].tolist() == choose
    assert len(smoke.fit) == 16 and len(smoke.report) == 8


def test_choosing_on_reported_forms_or_on_no_held_out_forms_is_refused(splits):
    train, validation = splits
    with pytest.raises(ValueError, match="held-out train forms"):
        split_for_selection(train, validation, holdout_forms=0)
    names = validation.labels["file_name"].tolist()
    leaky = Selection(fit=train.subset(train.labels["file_name"].tolist()[:5]),
                      choose=validation.subset(names[:3]), report=validation)
    with pytest.raises(ValueError, match="also used to choose"):
        leaky.check()


def test_holdout_rule_small_runs():
    names = [f"f{i}" for i in range(10)]
    assert holdout_names(names, 100, 0.1) == {"fit": names[:9], "holdout": names[9:]}
    assert holdout_count(3, 100) == 2  # never every form
    with pytest.raises(ValueError):
        holdout_count(1)
