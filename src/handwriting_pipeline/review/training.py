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

from handwriting_pipeline.review.export import reviewed_records
from handwriting_pipeline.review.run import ReviewRun, RunFolderError, run_form
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


def reviewed_forms(folder: str | Path, form: str | Path | None = None) -> Iterator[dict[str, Any]]:
    """``{"file_name", "labels": {FIELD: value}, "image": PIL image, "source", "statuses"}`` per
    reviewed form of a run (every doubtful field decided, no conflict), over the fields of the
    run's form. Forms whose top-section image is not in the run folder (a run digitized without
    review crops) are skipped, logged. ``form``: the run's form spec when its summary names a form
    that is not shipped (:func:`~handwriting_pipeline.review.run.run_form`)."""
    run = ReviewRun.open(folder, form)
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
               "labels": {k: record[k] for k in run.keys}, "image": image, "source": record["source"],
               "statuses": {k: record[f"{k}_status"] for k in run.keys}}


def write_training_folder(folders: list[str | Path], out: str | Path, split: str = "train",
                          form: str | Path | None = None) -> int:
    """The reviewed forms of one or more runs as ``<out>/<split>/metadata.jsonl`` + PNGs; returns
    the number of forms written. The runs must have read one form (their labels share its fields)."""
    names = {run_form(folder, form).name for folder in folders}
    if len(names) > 1:
        raise RunFolderError(f"the runs read different forms ({', '.join(sorted(names))}); write one training "
                             "folder per form")
    target = Path(out) / split
    target.mkdir(parents=True, exist_ok=True)
    n = 0
    with open(target / "metadata.jsonl", "w", encoding="utf-8") as handle:
        for folder in folders:
            for reviewed in reviewed_forms(folder, form):
                reviewed["image"].save(target / reviewed["file_name"])
                truth = json.dumps({"gt_parse": reviewed["labels"]}, ensure_ascii=False)
                handle.write(json.dumps({"file_name": reviewed["file_name"], "ground_truth": truth},
                                        ensure_ascii=False) + "\n")
                n += 1
    return n
