"""Reviewed forms as labelled training forms.

A form of a reviewed digitize run is a training form when a person decided every field the
machine doubted (:func:`~handwriting_pipeline.review.export.reviewed_records`: ``reviewed``) and
no two reviewers disagree on it; its labels are the decided values plus the machine's confident
ones. Its image is the top-section crop digitize wrote into the run folder (registered and cut as
the curated forms are), so the scans need not be kept.

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
from handwriting_pipeline.review.store import form_id

logger = logging.getLogger(__name__)


def _top_section(run: ReviewRun, record: dict[str, Any]) -> Any:
    """The form's top section as digitize cut it (``review/<form>_top.png`` in the run folder)."""
    from PIL import Image

    name = next((i.get("top") for i in record.get("review") or [] if i.get("top")), None)
    path = run.file(name) if name else None
    if path is None:
        return None
    with Image.open(path) as image:
        return image.copy()


def reviewed_forms(folder: str | Path) -> Iterator[dict[str, Any]]:
    """``{"file_name", "labels": {KEY: value}, "image": PIL image, "source", "statuses"}`` per
    reviewed form of a run (every doubtful field decided, no conflict). Forms whose top-section
    image is not in the run folder (a run digitized without review crops) are skipped, logged."""
    run = ReviewRun.open(folder)
    originals = {form_id(r): r for r in run.records}
    for record in reviewed_records(run, run.store()):
        if record.get("error") or record["conflicts"] or not record["reviewed"]:
            continue
        image = _top_section(run, originals[form_id(record)])
        if image is None:
            logger.warning("reviewed form %s page %s: no top-section image in %s; skipped",
                           record["source"], record.get("page"), run.folder)
            continue
        digest = hashlib.sha256(f"{record['source']}#{record.get('page')}".encode()).hexdigest()[:10]
        yield {"file_name": f"reviewed_{Path(record['source']).stem}_{record.get('page') or 1}_{digest}.png",
               "labels": {k: record[k] for k in KEYS}, "image": image, "source": record["source"],
               "statuses": {k: record[f"{k}_status"] for k in KEYS}}


def write_training_folder(folders: list[str | Path], out: str | Path, split: str = "train") -> int:
    """The reviewed forms of one or more runs as ``<out>/<split>/metadata.jsonl`` + PNGs; returns
    the number of forms written."""
    target = Path(out) / split
    target.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(target / "metadata.jsonl", "w", encoding="utf-8") as handle:
        for folder in folders:
            for form in reviewed_forms(folder):
                form["image"].save(target / form["file_name"])
                truth = json.dumps({"gt_parse": form["labels"]}, ensure_ascii=False)
                handle.write(json.dumps({"file_name": form["file_name"], "ground_truth": truth}, ensure_ascii=False) + "\n")
                n += 1
    return n
