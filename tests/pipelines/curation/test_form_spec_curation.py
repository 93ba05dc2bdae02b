"""The curation pipeline reads the run's form (``params:form``): its fields are the label columns,
its size the image size, its name in the descriptions and the report; hsf_top stays as it was."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest
from PIL import Image

from handwriting_pipeline.datasets import DonutSplitsDataset
from handwriting_pipeline.datasets.forms import LabelledFormsDataset
from handwriting_pipeline.fields import KEYS, NONE
from handwriting_pipeline.fields.formspec import load_form
from handwriting_pipeline.pipelines.curation import create_pipeline
from handwriting_pipeline.pipelines.curation.nodes import (
    export_splits,
    image_size,
    split_forms,
    validate_forms,
)
from handwriting_pipeline.pipelines.curation.sources import (
    SOURCES,
    _row_fields,
    crop_pages,
    read_donut_splits,
    read_hf_dataset,
)

from .conftest import run_curation, write_donut_split

ORDER_CARD = load_form("order_card")
HSF = load_form("hsf_top")
SPLITS = ("train", "validation", "test")
SMALL = {"synthetic": {"n_forms": 12, "workers": 1}}


def _newest(path: Path) -> Path:
    """The newest version of a versioned output (``path/<version>/<name>``)."""
    return sorted(path.iterdir())[-1] / path.name


def _metadata(folder: Path) -> list[dict]:
    return [json.loads(line) for line in (folder / "metadata.jsonl").read_text().splitlines()]


def _order_card_fields(k: int) -> dict[str, str]:
    return {"ORDER_NO": f"{12345670 + k}", "DATE": "8/28/89", "AMOUNT": "19.95", "PHONE": "404-555-0123",
            "CITY": "Douglasville", "STATE": "GA", "ZIP": "30134"}


# --------------------------------------------------------------------------- synthetic, through Kedro
@pytest.fixture(scope="module", params=["order_card", "hsf_top"])
def synthetic_run(request, tmp_path_factory):
    """The curation pipeline (project catalog, SequentialRunner) on 12 synthetic forms of a form."""
    tmp = tmp_path_factory.mktemp(f"synthetic_{request.param}")
    outputs = run_curation(tmp, {"form": request.param}, overrides=SMALL)
    return {"spec": load_form(request.param), "out": tmp / "out", **outputs}


def test_the_splits_on_disk_have_the_forms_fields_and_size(synthetic_run):
    spec, out = synthetic_run["spec"], synthetic_run["out"]
    report = synthetic_run["curation_report"]
    assert report["counts"] == {"train": 8, "validation": 1, "test": 3}  # 12 split like 1400/199/500
    for split in SPLITS:
        folder = _newest(out / split)
        lines = _metadata(folder)
        assert len(lines) == report["counts"][split]
        for entry in lines:
            assert list(json.loads(entry["ground_truth"])["gt_parse"]) == list(spec.keys)
            with Image.open(folder / entry["file_name"]) as image:
                assert image.size == tuple(spec.page.area)
        description = json.loads((folder / "source.json").read_text())["description"]
        if spec.name == "hsf_top":  # as before the form spec
            assert description == f"synthetic, seed 0, {len(lines)} forms ({split} split)"
        else:
            assert description == f"synthetic, seed 0, {len(lines)} 'order_card' forms ({split} split)"
    labels = pd.read_csv(_newest(out / "curated_labels.csv"), dtype=str, keep_default_na=False)
    assert list(labels.columns) == ["file_name", "split", *spec.keys]
    assert len(labels) == 12 and labels["file_name"].is_unique
    assert (labels[list(spec.keys)] != "").all().all()


def test_the_report_names_another_form_and_leaves_hsf_as_it_was(synthetic_run):
    spec, report = synthetic_run["spec"], synthetic_run["curation_report"]
    if spec.name == "hsf_top":
        assert "form" not in report and "fields" not in report
        assert report["notes"] == ["12 synthetic forms, seed 0, options default"]
        assert synthetic_run["curated_labels"].columns.tolist() == ["file_name", "split", *KEYS]
    else:
        assert report["form"] == "order_card" and report["fields"] == list(ORDER_CARD.keys)
        assert report["notes"] == ["12 synthetic 'order_card' forms, seed 0, options default"]
        assert report["parameters"]["image_size"] is None  # null: the form's size
    assert report["dropped"] == []


def test_an_order_card_split_loads_back_with_its_keys(tmp_path):
    run_curation(tmp_path, {"form": "order_card"}, overrides={"synthetic": {"n_forms": 3, "workers": 1}})
    forms = LabelledFormsDataset(str(tmp_path / "out" / "train")).load()
    assert forms.keys == ORDER_CARD.keys


def test_the_nodes_give_forms_with_the_order_cards_keys():
    from handwriting_pipeline.pipelines.curation.sources import generate_synthetic_forms

    params = {"synthetic": {"n_forms": 4, "workers": 1, "blank_rate": 0.5}, "split": {"sizes": {"train": 2,
              "validation": 1, "test": 1}}}
    candidates = generate_synthetic_forms(params, "order_card")
    assert candidates.keys == ORDER_CARD.keys
    assert candidates.labels.columns.tolist() == ["file_name", "split", *ORDER_CARD.keys, "group"]
    assert candidates.labels["file_name"].str.startswith("synthetic_order_card_0_").all()
    valid = validate_forms(candidates, params, "order_card")
    assert len(valid) == 4 and valid.keys == ORDER_CARD.keys
    train, validation, test, table, report = export_splits(split_forms(valid, params), params, "order_card")
    for forms in (train, validation, test):
        assert forms.keys == ORDER_CARD.keys
        assert forms.labels.columns.tolist() == ["file_name", "split", *ORDER_CARD.keys]
        assert "'order_card' forms" in forms.description
    blank = int((table[list(ORDER_CARD.keys)] == NONE).all(axis=1).sum())
    assert sum(report["blank_forms"].values()) == blank


def test_the_pipeline_gives_the_form_to_the_nodes_that_read_it():
    nodes = {n.name: n for n in create_pipeline().nodes}
    for name in ("validate_forms", "export_splits", *(s.name for src in SOURCES.values() for s in src.steps
                                                      if s.name != "annotate_forms")):
        assert "params:form" in nodes[name].inputs, name


# --------------------------------------------------------------------------- image size
def test_image_size_null_is_the_forms_size_and_explicit_sizes_still_work():
    assert image_size(None, HSF) == (2460, 350)
    assert image_size(None, ORDER_CARD) == (1700, 1100)
    assert image_size([800, 600], ORDER_CARD) == (800, 600)
    assert image_size("any", ORDER_CARD) is None
    with pytest.raises(ValueError, match="curation.image_size is 'big'"):
        image_size("big", ORDER_CARD)


# --------------------------------------------------------------------------- donut_folder
@pytest.fixture()
def hsf_labelled_folder(tmp_path) -> Path:
    """A Donut folder of 1700x1100 images labelled with the HSF form's four keys."""
    root = tmp_path / "hsf_labels"
    fields = {"DATE": "8/28/89", "CITY": "Dill City", "STATE": "OK", "ZIP": "73641"}
    write_donut_split(root / "train", {f"t{k}.png": fields for k in range(3)}, size=(1700, 1100))
    write_donut_split(root / "validation", {"v0.png": fields}, size=(1700, 1100))
    return root


def test_a_donut_folder_without_the_forms_keys_is_dropped_naming_them(hsf_labelled_folder):
    params = {"source": "donut_folder"}
    candidates = read_donut_splits(DonutSplitsDataset(str(hsf_labelled_folder)).load(), params, "order_card")
    assert len(candidates) == 0 and len(candidates.dropped) == 4
    for dropped in candidates.dropped:
        assert "lacks keys ['ORDER_NO', 'AMOUNT', 'PHONE']" in dropped["reason"]
        assert "form 'order_card'" in dropped["reason"]
    assert any("split 'train': 3 of 3 forms dropped" in note for note in candidates.notes)
    with pytest.raises(ValueError, match=r"no usable forms.*lacks keys \['ORDER_NO', 'AMOUNT', 'PHONE'\]"):
        validate_forms(candidates, params, "order_card")


def test_a_donut_folder_of_order_cards_is_curated_with_its_keys(tmp_path):
    root = tmp_path / "cards"
    write_donut_split(root / "train", {f"c{k}.png": _order_card_fields(k) for k in range(4)}, size=(1700, 1100),
                      keys=ORDER_CARD.keys)
    write_donut_split(root / "validation", {"c9.png": _order_card_fields(9)}, size=(1700, 1100),
                      keys=ORDER_CARD.keys)
    out = run_curation(tmp_path, {"form": "order_card", "curation.source": "donut_folder",
                                  "curation.data_dir": str(root)})
    report = out["curation_report"]
    assert report["counts"] == {"train": 4, "validation": 1, "test": 0} and report["dropped"] == []
    labels = out["curated_labels"].set_index("file_name")
    assert labels.columns.tolist() == ["split", *ORDER_CARD.keys]
    assert labels.loc["c2.png"].drop("split").to_dict() == _order_card_fields(2)
    train = _newest(tmp_path / "out" / "train")
    assert list(json.loads(_metadata(train)[0]["ground_truth"])["gt_parse"]) == list(ORDER_CARD.keys)
    assert "'order_card' forms (train split)" in json.loads((train / "source.json").read_text())["description"]


def test_hsf_top_reads_the_hsf_keys_of_an_order_card_folder(tmp_path):
    """The HSF form's four keys are among the order card's: its labels give them (as before)."""
    root = tmp_path / "cards"
    write_donut_split(root / "train", {"c0.png": _order_card_fields(0)}, keys=ORDER_CARD.keys)
    candidates = read_donut_splits(DonutSplitsDataset(str(root)).load(), {"source": "donut_folder"}, None)
    assert candidates.keys == KEYS
    assert candidates.labels.columns.tolist() == ["file_name", "split", *KEYS, "group"]
    assert candidates.labels.iloc[0]["CITY"] == "Douglasville" and not candidates.dropped


# --------------------------------------------------------------------------- HSF-only and other sources
def test_sd19_pages_stops_for_another_form_saying_what_to_use():
    def pages():
        raise AssertionError("the pages are not listed for another form")

    with pytest.raises(ValueError, match=r"cannot curate form 'order_card'.*curation.source=synthetic.*"
                                         r"curation.source=donut_folder"):
        crop_pages(pages, {"source": "sd19_pages"}, "order_card")
    assert len(crop_pages(pages, {"source": "synthetic"}, "order_card")) == 0  # not selected: nothing read


def test_hf_rows_are_read_with_the_forms_keys():
    row = {"file_name": "a.png", **{k.lower(): v for k, v in _order_card_fields(0).items()}}
    assert _row_fields(row, ORDER_CARD.keys) == _order_card_fields(0)
    with pytest.raises(ValueError, match=r"lacks keys \['ORDER_NO', 'AMOUNT', 'PHONE'\]"):
        _row_fields({"DATE": "1/2/89", "CITY": "X", "STATE": "GA", "ZIP": "30134"}, ORDER_CARD.keys)
    truth = json.dumps({"gt_parse": _order_card_fields(1)})
    assert _row_fields({"ground_truth": truth}, ORDER_CARD.keys) == _order_card_fields(1)
    assert len(read_hf_dataset(lambda: None, {"source": "synthetic"}, "order_card")) == 0

