"""Out of the review: the final forms of a reviewed run, Label Studio tasks, and Label Studio
annotations back into the same corrections store.

* :func:`reviewed_records` / :func:`export_reviewed`: every form of the run with the latest
  decision per field applied and each field marked ``machine`` (nobody looked), ``confirmed``
  (a person kept the machine's value) or ``corrected``; fields where reviewers disagree are listed
  in ``conflicts``. Written as ``reviewed/forms.jsonl`` and ``reviewed/forms.csv`` in the run folder
  (whole files or none: temporary file, fsync, rename).
* :func:`labelstudio_tasks`: one Label Studio task per form with doubtful fields, in Label Studio's
  JSON task format (``data`` + ``predictions`` as pre-annotations: one ``textarea`` result per field,
  ``value.text`` a list of strings, the prediction ``score`` the form's lowest confidence so the Data
  Manager sorts the least sure first), and the labelling config (:data:`LABEL_CONFIG`) the tasks
  are made for.
* :func:`import_labelstudio`: Label Studio's JSON export (tasks with ``annotations``) -> decisions in
  the store (reviewer ``labelstudio:<annotator>``, origin ``labelstudio``); cancelled annotations are
  skipped; importing the same export twice adds nothing.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from handwriting_pipeline.datasets.forms import write_atomic
from handwriting_pipeline.fields import KEYS, NONE
from handwriting_pipeline.fields.normalize import normalize_record
from handwriting_pipeline.review.run import ReviewRun
from handwriting_pipeline.review.store import CorrectionStore, InvalidDecision, check_value, form_id

EXPORT_DIR = "reviewed"
STATUSES = ("machine", "confirmed", "corrected")
LABELSTUDIO_ORIGIN = "labelstudio"
MODEL_VERSION = "handwriting_pipeline-digitize"
#: the Label Studio labelling config the tasks are made for (Image + one TextArea per field)
LABEL_CONFIG = """<View>
  <Header value="Check the fields: $needs_review"/>
  <Image name="image" value="$image" zoom="true"/>
""" + "".join(f"""  <TextArea name="{k}" toName="image" editable="true" maxSubmissions="1" rows="1" showSubmitButton="false"
            placeholder="{k} as written (None when empty)"/>
""" for k in KEYS) + "</View>\n"


# --------------------------------------------------------------------------- the reviewed forms
def reviewed_records(run: ReviewRun, store: CorrectionStore) -> list[dict[str, Any]]:
    """Every form of the run with its decisions applied (see module doc)."""
    latest = store.latest()
    conflicts = store.conflicts()
    out = []
    for record in run.records:
        form = form_id(record)
        new = {k: v for k, v in record.items() if k != "review"}
        reviewers = set()
        for key in KEYS:
            decision = latest.get((form, key))
            new[f"{key}_status"] = "machine" if decision is None else decision.status
            if decision is not None:
                new[key] = decision.value
                reviewers.add(decision.reviewer)
        if not record.get("error"):
            new.update(normalize_record({k: new[k] for k in KEYS}))
        doubtful = record.get("needs_review") or []
        new["reviewed"] = bool(doubtful) and all((form, k) in latest for k in doubtful)
        new["reviewers"] = sorted(reviewers)
        new["conflicts"] = [k for k in KEYS if (form, k) in conflicts]
        out.append(new)
    return out


def _write_atomic(path: Path, write: Any) -> None:
    """``write(handle)`` into memory, then the file at once (:func:`datasets.forms.write_atomic`)."""
    buffer = io.StringIO(newline="")
    write(buffer)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, buffer.getvalue())


def export_reviewed(run: ReviewRun, store: CorrectionStore, out_dir: str | Path | None = None) -> dict[str, Any]:
    """Write ``forms.jsonl`` and ``forms.csv`` of the reviewed run (``<run>/reviewed/`` by default);
    returns counts per status and the paths."""
    records = reviewed_records(run, store)
    folder = Path(out_dir) if out_dir else run.folder / EXPORT_DIR
    jsonl, table = folder / "forms.jsonl", folder / "forms.csv"
    _write_atomic(jsonl, lambda h: h.writelines(json.dumps(r, ensure_ascii=False) + "\n" for r in records))
    status_cols = [f"{k}_status" for k in KEYS]
    own = [c for c in (run.records[0] if run.records else {}) if c != "review"]  # forms.csv's order
    columns = [*own, *[c for c in ("DATE", "CITY", "STATE", "ZIP") if c not in own], *status_cols, "reviewed",
               "reviewers", "conflicts"]

    def write_csv(handle: Any) -> None:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            row = {c: r.get(c) for c in columns}
            for c in ("needs_review", "reviewers", "conflicts"):
                row[c] = ";".join(r.get(c) or [])
            writer.writerow({c: ("" if v is None else v) for c, v in row.items()})

    _write_atomic(table, write_csv)
    counts = {s: sum(r[f"{k}_status"] == s for r in records for k in KEYS) for s in STATUSES}
    return {"forms": len(records), "reviewed_forms": sum(r["reviewed"] for r in records), "fields": counts,
            "conflicts": sum(len(r["conflicts"]) for r in records), "jsonl": str(jsonl), "csv": str(table)}


# --------------------------------------------------------------------------- Label Studio
def _image_of(record: Mapping[str, Any]) -> str | None:
    items = record.get("review") or []
    images = [i.get("top") for i in items if i.get("top")] + [i.get("crop") for i in items if i.get("crop")]
    return images[0] if images else None


def labelstudio_tasks(run: ReviewRun, image_prefix: str = "/data/local-files/?d=") -> list[dict[str, Any]]:
    """Label Studio tasks (JSON task format with pre-annotations) for the forms with doubtful
    fields. ``data.image`` is ``image_prefix`` + the image's path inside the run folder: with
    Label Studio's local file serving, start it with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true``
    and ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<run folder>``; or serve the folder and give its URL."""
    tasks = []
    for record in run.records:
        doubtful = [k for k in (record.get("needs_review") or []) if k in KEYS]
        image = _image_of(record)
        if not doubtful or record.get("error") or not image:
            continue
        confidences = [record.get(f"{k}_conf") for k in KEYS]
        known = [float(c) for c in confidences if c is not None]
        result = [{"id": f"{k}-{len(tasks)}", "from_name": k, "to_name": "image", "type": "textarea",
                   "value": {"text": [str(record.get(k) or NONE)]}} for k in KEYS]
        tasks.append({
            "data": {"image": f"{image_prefix}{image}", "form": form_id(record), "source": record["source"],
                     "page": record.get("page"), "needs_review": ", ".join(doubtful),
                     **{f"{k}_conf": record.get(f"{k}_conf") for k in KEYS}},
            "predictions": [{"model_version": MODEL_VERSION, "score": min(known) if known else 0.0, "result": result}],
        })
    return tasks


def write_labelstudio(run: ReviewRun, out_dir: str | Path | None = None,
                      image_prefix: str = "/data/local-files/?d=") -> dict[str, Any]:
    """``labelstudio/tasks.json`` and ``labelstudio/label_config.xml`` in the run folder (or ``out_dir``)."""
    folder = Path(out_dir) if out_dir else run.folder / "labelstudio"
    tasks = labelstudio_tasks(run, image_prefix)
    _write_atomic(folder / "tasks.json", lambda h: json.dump(tasks, h, ensure_ascii=False, indent=1))
    _write_atomic(folder / "label_config.xml", lambda h: h.write(LABEL_CONFIG))
    return {"tasks": len(tasks), "tasks_json": str(folder / "tasks.json"), "config": str(folder / "label_config.xml")}


def _annotator(annotation: Mapping[str, Any]) -> str:
    who = annotation.get("completed_by")
    if isinstance(who, Mapping):
        who = who.get("email") or who.get("id")
    return f"labelstudio:{who if who not in (None, '') else 'unknown'}"


def _text(value: Mapping[str, Any]) -> str:
    text = value.get("text")
    if isinstance(text, str):
        return text
    return " ".join(str(t) for t in (text or []) if str(t).strip()) or NONE


def import_labelstudio(run: ReviewRun, store: CorrectionStore, exported: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Label Studio's JSON export (a list of tasks with ``annotations``) into the store.

    Each non-cancelled annotation's ``textarea`` results named after a field become decisions of
    that annotator; a decision already stored (same form, field, value, annotator, origin) is not
    added again. Returns counts and the problems (unknown forms, invalid values)."""
    forms = {form_id(r): r for r in run.records}
    stored = {(d.form, d.field, d.value, d.reviewer) for d in store.decisions() if d.origin == LABELSTUDIO_ORIGIN}
    summary: dict[str, Any] = {"tasks": 0, "annotations": 0, "decisions": 0, "already_stored": 0, "conflicts": 0,
                               "problems": []}
    for task in exported:
        summary["tasks"] += 1
        form = (task.get("data") or {}).get("form")
        record = forms.get(form)
        if record is None:
            summary["problems"].append(f"task {task.get('id')}: form {form!r} is not in this run")
            continue
        for annotation in task.get("annotations") or []:
            if annotation.get("was_cancelled"):
                continue
            summary["annotations"] += 1
            reviewer = _annotator(annotation)
            for result in annotation.get("result") or []:
                key = result.get("from_name")
                if result.get("type") != "textarea" or key not in KEYS:
                    continue
                try:
                    value = check_value(key, _text(result.get("value") or {}))
                except InvalidDecision as err:
                    summary["problems"].append(f"task {task.get('id')} {key}: {err}")
                    continue
                if (form, key, value, reviewer) in stored:
                    summary["already_stored"] += 1
                    continue
                _, conflicts = store.record(form, key, value, str(record.get(key) or NONE), reviewer,
                                            origin=LABELSTUDIO_ORIGIN)
                stored.add((form, key, value, reviewer))
                summary["decisions"] += 1
                summary["conflicts"] += bool(conflicts)
    return summary
