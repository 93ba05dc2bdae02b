"""Choosing the evaluation forms: curated test split by default, evaluation.data_dir when given."""

from pathlib import Path

import pandas as pd
import pytest
from kedro.io import DataCatalog, MemoryDataset, Version
from kedro.runner import SequentialRunner
from PIL import Image

from handwriting_pipeline.datasets.forms import LabelledForms, LabelledFormsDataset
from handwriting_pipeline.pipelines.select_forms import create_pipeline
from handwriting_pipeline.pipelines.select_forms.nodes import select_evaluation_forms


def _forms(names):
    labels = pd.DataFrame({"file_name": names, "DATE": "8/28/89", "CITY": "Murray", "STATE": "KY", "ZIP": "42071"})
    return LabelledForms(labels, {n: _form_image() for n in names})


def _form_image() -> Image.Image:
    """White 2460x350 with a black band, like a crop's blacked-out NAME field (not blank)."""
    image = Image.new("1", (2460, 350), 1)
    image.paste(0, (0, 0, 2460, 60))
    return image


def test_external_folder_wins_and_forms_are_marked_evaluation(shared_validation):
    external = LabelledFormsDataset(path=str(shared_validation), optional=True).load()
    chosen = select_evaluation_forms(_forms(["a.png"]), external)
    assert len(chosen) == 199 and set(chosen.labels["split"]) == {"evaluation"}


def test_test_split_is_used_when_no_folder_is_given():
    external = LabelledFormsDataset(path="", optional=True).load()
    assert external.missing == "no path given"
    chosen = select_evaluation_forms(_forms(["a.png", "b.png"]), external)
    assert chosen.labels["file_name"].tolist() == ["a.png", "b.png"]


def test_nothing_to_evaluate_says_what_to_do(tmp_path: Path):
    test_forms = LabelledFormsDataset(path=str(tmp_path / "test"), version=Version(None, None), optional=True).load()
    assert test_forms.missing and len(test_forms) == 0
    with pytest.raises(ValueError, match="evaluation.data_dir"):
        select_evaluation_forms(test_forms, LabelledFormsDataset(path="", optional=True).load())



def test_wrong_data_dir_is_an_error_not_a_silent_fallback(tmp_path: Path):
    with pytest.raises(Exception, match="metadata.jsonl"):
        LabelledFormsDataset(path=str(tmp_path / "nope"), optional=True).load()


def test_runs_through_kedro_and_round_trips_versioned_folders(tmp_path: Path):
    versioned = LabelledFormsDataset(path=str(tmp_path / "test"), version=Version(None, None))
    versioned.save(_forms(["x.png", "y.png"]))
    catalog = DataCatalog(
        {
            "test_forms": LabelledFormsDataset(path=str(tmp_path / "test"), version=Version(None, None)),
            "external_evaluation_forms": LabelledFormsDataset(path="", optional=True),
            "evaluation_forms": LabelledFormsDataset(path=str(tmp_path / "evaluation")),
            "params:evaluation": MemoryDataset({"input_checks": {"image_size": [2460, 350]}}),
            "params:form": MemoryDataset("hsf_top"),
        }
    )
    SequentialRunner().run(create_pipeline(), catalog)
    saved = LabelledFormsDataset(path=str(tmp_path / "evaluation")).load()
    assert saved.labels["file_name"].tolist() == ["x.png", "y.png"]
    assert saved.images["x.png"].size == (2460, 350)
    # a non-versioned load of the versioned folder takes the newest version
    assert len(LabelledFormsDataset(path=str(tmp_path / "test")).load()) == 2
