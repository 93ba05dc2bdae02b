"""Bad inputs in an already split folder, and the one fatal case: nothing usable left.
(Bad SD19 pages and labels are covered in test_sources.py.)"""

from __future__ import annotations

import json
import logging

import pandas as pd
import pytest
from PIL import Image

from .conftest import folder_digest, run_curation, write_donut_split

GOOD = {"DATE": "8/28/89", "CITY": "Dill City", "STATE": "OK", "ZIP": "73641"}


@pytest.fixture()
def bad_donut_folder(tmp_path):
    root = tmp_path / "raw"
    write_donut_split(root / "train", {f"t{i}.png": GOOD for i in range(4)})
    write_donut_split(root / "validation", {"v1.png": GOOD, "v2.png": GOOD})
    train = root / "train"
    (train / "t1.png").write_bytes(b"\x89PNG\r\n\x1a\n truncated")  # corrupt image
    Image.new("1", (1000, 350), 1).save(train / "t2.png")  # wrong size
    with open(train / "metadata.jsonl", "a") as f:
        f.write("{not json\n")  # line not JSON
        f.write(json.dumps({"file_name": "t3.png", "ground_truth": json.dumps({"gt_parse": GOOD})}) + "\n")  # duplicate
        f.write(json.dumps({"file_name": "t0.png", "ground_truth": json.dumps({"gt_parse": {"DATE": "1/1/89"}})}) + "\n")
        f.write(json.dumps({"file_name": "missing.png", "ground_truth": json.dumps({"gt_parse": GOOD})}) + "\n")
    (train / "notes.txt").write_text("stray file\n")
    return root


def test_bad_files_are_dropped_named_and_reported(bad_donut_folder, tmp_path, caplog):
    before = folder_digest(bad_donut_folder)
    with caplog.at_level(logging.WARNING):
        out = run_curation(tmp_path, {"curation.source": "donut_folder", "curation.data_dir": str(bad_donut_folder)})
    assert folder_digest(bad_donut_folder) == before
    report = out["curation_report"]
    assert report["counts"] == {"train": 2, "validation": 2, "test": 0}
    dropped = pd.DataFrame(report["dropped"])
    expected = {"t1.png": "not a readable image", "t2.png": "1000x350, expected 2460x350",
                "t3.png": "duplicate", "missing.png": "missing"}
    for name, words in expected.items():
        reasons = dropped.loc[dropped["file_name"] == name, "reason"].tolist()
        assert any(words in r for r in reasons), (name, reasons)
        assert name in caplog.text  # the log names the file
    assert dropped["reason"].str.contains("not JSON").any()
    assert dropped["reason"].str.contains(r"lacks keys \['CITY', 'STATE', 'ZIP'\]").any()
    assert sorted(out["train_forms"].labels["file_name"]) == ["t0.png", "t3.png"]


def test_nothing_usable_fails_with_a_clear_error(tmp_path):
    root = tmp_path / "raw"
    write_donut_split(root / "train", {"a.png": GOOD}, size=(100, 100))
    with pytest.raises(Exception, match="no usable forms.*expected 2460x350.*curation.source=synthetic"):
        run_curation(tmp_path, {"curation.source": "donut_folder", "curation.data_dir": str(root)})


def test_unknown_source_is_refused(tmp_path):
    with pytest.raises(Exception, match="choose one of synthetic, sd19_pages, donut_folder, hf_dataset, reviewed"):
        run_curation(tmp_path, {"curation.source": "pdfs"})
