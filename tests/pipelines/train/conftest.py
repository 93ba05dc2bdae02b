"""Fixtures for the Donut tests: a handful of real shared crops and a tiny model built from
the project's own ``tiny`` preset (conf/base/parameters_train.yml)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pytest
import torch
import yaml

PROJECT_ROOT = Path(__file__).resolve().parents[3]


@pytest.fixture(autouse=True)
def _one_thread():
    torch.set_num_threads(1)


@pytest.fixture(scope="session")
def train_params() -> dict[str, Any]:
    """``train`` parameters from conf/base, shrunk for tests (no progress bar, tiny stages)."""
    params = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_train.yml").read_text())["train"]
    params = copy.deepcopy(params)
    params["model"]["preset"] = "tiny"
    params["tokenizer"]["synthetic_forms"] = 20
    params["trainer"].update(progress_bar=False, checkpoint_dir=None, num_workers=0, val_batch_size=8)
    params["pretrain"].update(num_forms=8, epochs=1, batch_size=4, max_minutes=None)
    params["finetune"].update(epochs=1, batch_size=4, max_minutes=None)
    return params


@pytest.fixture(scope="session")
def real_forms(shared_validation):
    """12 real validation crops (with labels) from ../shared."""
    from handwriting_pipeline.datasets.forms import read_donut_folder

    forms, _ = read_donut_folder(shared_validation, split="validation")
    names = [n for n in forms.labels["file_name"].tolist() if not n.endswith("_N.png")][:12]
    return forms.subset(names)


@pytest.fixture()
def tiny_bundle(real_forms, train_params):
    """A fresh tiny Donut (tiny preset) with a tokenizer trained on the real labels."""
    from handwriting_pipeline.donut.recipe import build_model, build_tokenizer

    torch.manual_seed(0)
    tokenizer = build_tokenizer(real_forms, train_params)
    return build_model(tokenizer, train_params)
