"""Reviewed forms as labelled training forms.

A form of a reviewed digitize run is a training form when a person decided every field the
machine doubted (:func:`~handwriting_pipeline.review.export.reviewed_records`: ``reviewed``) and
no two reviewers disagree on it; its labels are the decided values plus the machine's confident
ones. The top-section crop is cut again from the scan the run read (the same registration and
crop as digitize), so the forms train exactly like the curated ones.

:func:`reviewed_forms` yields them; :func:`write_training_folder` writes them as a Donut /
imagefolder split (``<folder>/train/metadata.jsonl`` + PNGs, the layout of the shared data), which
``curation.source=donut_folder`` or the ``reviewed`` curation source reads.
"""

from __future__ import annotations

import hashlib
import json
import logging
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.review.export import reviewed_records
from handwriting_pipeline.review.run import ReviewRun

logger = logging.getLogger(__name__)


def _crop(source: str, page: int) -> Any:
    from handwriting_pipeline.digitize.inputs import read_forms

    for form in read_forms(source):
        if form.page == page and form.crop is not None:
            return form.crop
    return None


def reviewed_forms(folder: str | Path, only_reviewed: bool = True) -> Iterator[dict[str, Any]]:
    """``{"file_name", "labels": {KEY: value}, "image": PIL image, "source", "statuses"}`` per
    usable form of a reviewed run (``only_reviewed=False`` also yields forms nobody looked at:
    machine labels only). Forms whose scan can no longer be read are skipped with a log line."""
    run = ReviewRun.open(folder)
    store = run.store()
    for record in reviewed_records(run, store):
        if record.get("error") or record["conflicts"] or (only_reviewed and not record["reviewed"]):
            continue
        image = _crop(record["source"], int(record.get("page") or 1))
        if image is None:
            logger.warning("reviewed form %s page %s: the scan could not be read again; skipped",
                           record["source"], record.get("page"))
            continue
        digest = hashlib.sha256(f"{record['source']}#{record.get('page')}".encode()).hexdigest()[:10]
        yield {"file_name": f"reviewed_{Path(record['source']).stem}_{record.get('page') or 1}_{digest}.png",
               "labels": {k: record[k] for k in KEYS}, "image": image, "source": record["source"],
               "statuses": {k: record[f"{k}_status"] for k in KEYS}}


def write_training_folder(folders: list[str | Path], out: str | Path, split: str = "train",
                          only_reviewed: bool = True) -> int:
    """The reviewed forms of one or more runs as ``<out>/<split>/metadata.jsonl`` + PNGs; returns
    the number of forms written."""
    target = Path(out) / split
    target.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(target / "metadata.jsonl", "w", encoding="utf-8") as handle:
        for folder in folders:
            for form in reviewed_forms(folder, only_reviewed):
                form["image"].save(target / form["file_name"])
                truth = json.dumps({"gt_parse": form["labels"]}, ensure_ascii=False)
                handle.write(json.dumps({"file_name": form["file_name"], "ground_truth": truth}, ensure_ascii=False) + "\n")
                n += 1
    return n
