"""Reviewed forms teach: the curation source ``reviewed`` adds them to the train split."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.review.run import ReviewRun
from tests.pipelines.curation.conftest import run_curation


def _small_folder(shared_hsf_top: Path, root: Path) -> Path:
    """Three train and two validation forms of the shared data, as a split folder."""
    for split, n in (("train", 3), ("validation", 2)):
        (root / split).mkdir(parents=True)
        lines = (shared_hsf_top / split / "metadata.jsonl").read_text().splitlines()[:n]
        (root / split / "metadata.jsonl").write_text("\n".join(lines) + "\n")
        for line in lines:
            name = json.loads(line)["file_name"]
            shutil.copy(shared_hsf_top / split / name, root / split / name)
    return root


def test_reviewed_source_adds_reviewed_forms_to_train(run_copy: Path, shared_hsf_top: Path, tmp_path: Path):
    run = ReviewRun.open(run_copy)
    store = run.store()
    first = run.items[0].form
    decided = {}
    for item in run.items:
        if item.form == first:   # the whole first form reviewed: one field corrected, the rest accepted
            value = "Milford" if item.field == "CITY" else item.chosen
            store.record(item.form, item.field, value, item.chosen, "ann")
            decided[item.field] = value
    folder = _small_folder(shared_hsf_top, tmp_path / "forms")
    out = run_curation(tmp_path, {"curation.source": "reviewed", "curation.data_dir": str(folder),
                                  "curation.reviewed_runs": str(run_copy)})
    labels = out["curated_labels"]
    assert labels.groupby("split").size().to_dict() == {"train": 4, "validation": 2}
    [row] = labels[labels["file_name"].str.startswith("reviewed_")].to_dict("records")
    assert row["split"] == "train" and all(row[k] == v for k, v in decided.items())
    record = next(r for r in run.records if f"{r['source']}#{r['page']}" == first)
    assert all(row[k] == record[k] for k in KEYS if k not in decided)   # confident fields: the machine's
    assert any("1 reviewed forms from the digitize run" in note for note in out["curation_report"]["notes"])
    assert len(out["train_forms"]) == 4 and out["train_forms"].images[row["file_name"]].size == (2460, 350)
