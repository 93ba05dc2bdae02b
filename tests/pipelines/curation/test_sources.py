"""Each curation source, run through the project's catalog entries and the curation pipeline."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from handwriting_pipeline.fields import KEYS, NONE

from .conftest import folder_digest, run_curation, write_donut_split


# --------------------------------------------------------------------------- donut_folder
@pytest.fixture(scope="module")
def shared_curated(shared_hsf_top, tmp_path_factory):
    tmp = tmp_path_factory.mktemp("donut_shared")
    before = folder_digest(shared_hsf_top / "validation")
    out = run_curation(tmp, {"curation.source": "donut_folder", "curation.data_dir": str(shared_hsf_top)})
    assert folder_digest(shared_hsf_top / "validation") == before  # raw input untouched
    return out


def test_donut_folder_gives_exactly_the_shared_splits(shared_curated):
    report = shared_curated["curation_report"]
    assert report["counts"] == {"train": 1400, "validation": 199, "test": 0}
    assert report["dropped"] == []
    assert any("'test' not in the folder" in note for note in report["notes"])
    assert len(shared_curated["train_forms"]) == 1400
    assert len(shared_curated["validation_forms"]) == 199
    assert len(shared_curated["test_forms"]) == 0
    labels = shared_curated["curated_labels"]
    assert list(labels.columns) == ["file_name", "split", *KEYS]
    assert labels.groupby("split").size().to_dict() == {"train": 1400, "validation": 199}
    assert labels["file_name"].is_unique


@pytest.mark.parametrize("split", ["train", "validation"])
def test_donut_folder_labels_match_metadata(shared_curated, shared_hsf_top, split):
    lines = (shared_hsf_top / split / "metadata.jsonl").read_text().splitlines()
    labels = shared_curated["curated_labels"].set_index("file_name")
    forms = shared_curated[f"{split}_forms"]
    for line in lines[:5] + lines[-3:]:
        entry = json.loads(line)
        truth = json.loads(entry["ground_truth"])["gt_parse"]
        row = labels.loc[entry["file_name"]]
        assert row["split"] == split
        for key in KEYS:
            assert row[key] == truth[key], (entry["file_name"], key)  # ZIP "01234" stays a string
        assert forms.fields(entry["file_name"]) == {k: truth[k] for k in KEYS}
    # the saved images are the shared images
    name = json.loads(lines[0])["file_name"]
    assert forms.images[name].size == (2460, 350)


def test_donut_folder_notes_identical_images_across_splits(shared_curated):
    """The authors' blank-form copies (f0067_25_N) are in train and validation: reported."""
    assert any("identical image in another split" in note for note in shared_curated["curation_report"]["notes"])


def test_donut_folder_that_does_not_exist_fails_clearly(tmp_path):
    with pytest.raises(Exception, match="curation.data_dir"):
        run_curation(tmp_path, {"curation.source": "donut_folder", "curation.data_dir": str(tmp_path / "nowhere")})


# --------------------------------------------------------------------------- hf_dataset (local copy)
def test_hf_dataset_local_copy_goes_through_load_dataset(tmp_path):
    """A local imagefolder copy read by the same catalog entry (datasets.load_dataset) as the hub
    dataset; splits kept, "val" read as validation, a row lacking keys dropped."""
    local = tmp_path / "hf_copy"
    train = {"a1.png": {"DATE": "8/28/89", "CITY": "Dill City", "STATE": "OK", "ZIP": "01234"},
             "a2.png": {"DATE": "None", "CITY": "None", "STATE": "None", "ZIP": "None"}}
    write_donut_split(local / "train", train)
    write_donut_split(local / "validation", {"b1.png": {"DATE": "9/1/89", "CITY": "Troy", "STATE": "MI", "ZIP": "48083"}})
    with open(local / "validation" / "metadata.jsonl", "a") as f:  # a row whose label lacks ZIP
        write_donut_split(tmp_path / "spare", {"b2.png": {}})
        (local / "validation" / "b2.png").write_bytes((tmp_path / "spare" / "b2.png").read_bytes())
        f.write(json.dumps({"file_name": "b2.png", "ground_truth": json.dumps({"gt_parse": {"DATE": "x"}})}) + "\n")
    out = run_curation(tmp_path, {"curation.source": "hf_dataset", "curation.hf_name": str(local)})
    report = out["curation_report"]
    assert report["source"] == "hf_dataset"
    assert report["counts"] == {"train": 2, "validation": 1, "test": 0}
    assert len(report["dropped"]) == 1 and "lacks keys" in report["dropped"][0]["reason"]
    labels = out["curated_labels"]
    assert sorted(labels.loc[labels["split"] == "train", "ZIP"]) == ["01234", NONE]
    assert labels.loc[labels["split"] == "validation", "CITY"].tolist() == ["Troy"]
    assert out["validation_forms"].images[labels.loc[labels["split"] == "validation", "file_name"].iloc[0]].size == (2460, 350)


# --------------------------------------------------------------------------- sd19_pages
@pytest.fixture(scope="module")
def sd19_curated(sd19_raw, tmp_path_factory):
    before = folder_digest(sd19_raw["root"])
    out = run_curation(tmp_path_factory.mktemp("sd19"),
                       {"curation.source": "sd19_pages", "curation.pages_dir": str(sd19_raw["pages"]),
                        "curation.labels_dir": str(sd19_raw["labels"])},
                       overrides={"annotate": {"blank_copies": 5}})
    assert folder_digest(sd19_raw["root"]) == before  # nothing under the raw folders modified
    return out


def test_sd19_pages_good_forms_are_cropped_and_labelled(sd19_curated, sd19_raw):
    labels = sd19_curated["curated_labels"].set_index("file_name")
    for name, fields in sd19_raw["good"].items():
        row = labels.loc[f"{name}.png"]
        expected = {k: (NONE if v in (None, "") else v) for k, v in fields.items()}
        assert {k: row[k] for k in KEYS} == expected, name
    forms = {s: sd19_curated[f"{s}_forms"] for s in ("train", "validation", "test")}
    for split, set_ in forms.items():
        for name in set_.labels["file_name"]:
            image = set_.images[name]
            assert image.size == (2460, 350) and image.mode == "1"


def test_sd19_pages_blank_copies_kept_together(sd19_curated):
    labels = sd19_curated["curated_labels"]
    blank = labels[labels["file_name"].str.startswith("f0067_25")]
    assert len(blank) == 6  # the blank form + 5 copies
    assert blank["split"].nunique() == 1
    assert (blank[list(KEYS)] == NONE).all().all()
    assert sd19_curated["curation_report"]["total"] == 4 + 5


def test_sd19_pages_every_bad_input_is_dropped_with_its_reason(sd19_curated, sd19_raw):
    dropped = pd.DataFrame(sd19_curated["curation_report"]["dropped"])
    for name, words in sd19_raw["bad"].items():
        reasons = dropped.loc[dropped["file_name"] == f"{name}.png", "reason"].tolist()
        assert reasons, f"{name} not reported"
        assert any(words.lower() in r.lower() for r in reasons), (name, reasons)
        assert f"{name}.png" not in set(sd19_curated["curated_labels"]["file_name"])


def test_sd19_pages_crops_are_the_registered_top_section(sd19_curated):
    """The shifted/rotated page f0002_02 and the straight f0001_01 share the template: their
    crops' box lines coincide."""
    from handwriting_pipeline.forms.registration import box_lines

    labels = sd19_curated["curated_labels"].set_index("file_name")
    images = {}
    for name in ("f0001_01.png", "f0002_02.png", "f0013_13.png"):
        images[name] = sd19_curated[f"{labels.loc[name, 'split']}_forms"].images[name]
    lines = {n: box_lines(img) for n, img in images.items()}
    for key in ("top_rule", "bottom_rule", "city_left", "city_right"):
        values = [line[key] for line in lines.values()]
        assert max(values) - min(values) <= 4, (key, lines)


def test_unselected_sources_with_absent_folders_do_not_fail(tmp_path):
    out = run_curation(tmp_path, {"curation.pages_dir": str(tmp_path / "no_pages"),
                                  "curation.data_dir": str(tmp_path / "no_donut"),
                                  "curation.hf_name": str(tmp_path / "no_hf")},
                       overrides={"synthetic": {"n_forms": 6, "workers": 1}})
    assert out["curation_report"]["source"] == "synthetic"
    assert out["curation_report"]["total"] == 6
