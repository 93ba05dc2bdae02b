"""The 'train' pipeline end to end through Kedro with the tiny preset, on real shared crops:
tokenizer -> model -> synthetic pretraining -> fine-tuning -> donut_model / history / plot.
Checkpoints are chosen on the held-out train forms (``fieldreader_split``), never on validation."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import yaml
from kedro.config import OmegaConfigLoader
from kedro.io import DataCatalog, MemoryDataset
from kedro.io.core import Version
from kedro.runner import SequentialRunner

from handwriting_pipeline.datasets import DonutModelDataset
from handwriting_pipeline.donut import recipe
from handwriting_pipeline.donut.data import synthetic_available
from handwriting_pipeline.engines.donut import DonutEngine
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.pipelines.train import create_pipeline

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def _catalog(tmp_path: Path, train_forms, split, params) -> DataCatalog:
    """The project's catalog_train.yml entries, with their paths moved under tmp_path."""
    loader = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="local")
    names = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog_train.yml").read_text())
    config = {name: dict(loader["catalog"][name]) for name in names}  # runtime params resolved
    for entry in config.values():
        for key in ("path", "filepath"):
            if key in entry:
                entry[key] = str(tmp_path / entry[key])
    catalog = DataCatalog.from_config(config)
    catalog["train_forms"] = MemoryDataset(train_forms, copy_mode="assign")
    catalog["fieldreader_split"] = MemoryDataset(split)
    catalog["params:train"] = MemoryDataset(params)
    catalog["params:train.models"] = MemoryDataset(["donut"])
    catalog["params:form"] = MemoryDataset("hsf_top")
    return catalog


def test_train_pipeline_runs_and_saves_a_usable_model(tmp_path, real_forms, train_params, monkeypatch):
    names = real_forms.labels["file_name"].tolist()
    params = {**train_params, "trainer": {**train_params["trainer"], "checkpoint_dir": str(tmp_path / "ckpt")}}
    split = {"fit": names[:8], "holdout": names[8:10]}
    checked_on, validation_data = [], recipe._validation_data

    def recording(bundle, forms, train, stage):
        checked_on.append(forms.labels["file_name"].tolist())
        return validation_data(bundle, forms, train, stage)

    monkeypatch.setattr(recipe, "_validation_data", recording)
    catalog = _catalog(tmp_path, real_forms.subset(names[:10]), split, params)
    SequentialRunner().run(create_pipeline().only_nodes_with_tags("donut"), catalog)  # Donut's steps
    # both stages chose their weights on the held-out train forms; no step reads the validation split
    assert checked_on and all(seen == split["holdout"] for seen in checked_on)
    assert "validation_forms" not in create_pipeline().inputs()

    history = catalog.load("training_history")
    stages = history["stage"].tolist()
    assert stages == (["pretrain", "finetune"] if synthetic_available()[0] else ["finetune"])
    assert {"train_loss", "val_loss", "val_ned", "val_fla", "val_cba", "stop_reason"} <= set(history.columns)
    assert history["stop_reason"].iloc[-1].startswith("max_epochs")
    assert "restored best checkpoint" in history["stop_reason"].iloc[-1]  # finetune: best val_ned
    if synthetic_available()[0]:
        assert "kept the last weights" in history["stop_reason"].iloc[0]  # pretrain: restore_best false
    assert list((tmp_path / "data/08_reporting/training_history.png").glob("*/training_history.png"))

    ref = catalog.load("donut_model")
    assert ref.available, ref.reason
    assert ref.preprocessing.roi == train_params["model"]["roi"]
    engine = DonutEngine.from_model(ref, batch_size=4)
    engine.check_ready()
    results = engine.read_batch([real_forms.images[n] for n in names[8:10]], names[8:10])
    assert all(set(r.fields) == set(KEYS) and r.error is None for r in results)
    # the saved folder is a plain save_pretrained folder the catalog entry can load again
    again = DonutModelDataset(path=str(tmp_path / "data/06_models/donut_model")).load()
    assert again.path == ref.path
    # a plain save_pretrained folder works as the versioned entry's path too (train.model_dir)
    plain = DonutModelDataset(path=ref.path, version=Version(None, None)).load()
    assert plain.available and plain.path == ref.path
    assert isinstance(pd.read_csv(next((tmp_path / "data/08_reporting/training_history.csv").glob("*/*.csv"))),
                      pd.DataFrame)
