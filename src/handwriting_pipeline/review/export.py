"""Out of the review: the final forms of a reviewed run, Label Studio tasks, and Label Studio
annotations back into the same corrections store. Everything follows the run's form
(:attr:`ReviewRun.spec <handwriting_pipeline.review.run.ReviewRun.spec>`): its fields, in order,
each with its type.

* :func:`reviewed_records` / :func:`export_reviewed`: every form of the run with the latest
  decision per field applied and each field marked ``machine`` (nobody looked), ``confirmed``
  (a person kept the machine's value) or ``corrected``; fields where reviewers disagree are listed
  in ``conflicts``. Written as ``reviewed/forms.jsonl`` and ``reviewed/forms.csv`` in the run folder
  (whole files or none: temporary file, fsync, rename).
* :func:`label_studio_config`: the Label Studio labelling config of a form, generated from its
  spec: the image, then per field (in the spec's order) a header with its title (or name) and its
  control - a ``choice`` field a ``Choices`` of its options, a ``checkbox`` a ``Choices`` of
  ``yes`` / ``no``, any other field a one-line ``TextArea``. :data:`LABEL_CONFIG` is the HSF form's.
* :func:`labelstudio_tasks`: one Label Studio task per form with doubtful fields, in Label Studio's
  JSON task format (``data`` + ``predictions`` as pre-annotations: one result per field - a
  ``textarea`` with ``value.text`` a list of strings, or for a choice / checkbox field a
  ``choices`` result with the reading's option when it normalizes to one - the prediction
  ``score`` the form's lowest confidence so the Data Manager sorts the least sure first).
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
from xml.sax.saxutils import quoteattr

from handwriting_pipeline.datasets.forms import write_atomic
from handwriting_pipeline.fields import NONE
from handwriting_pipeline.fields.formspec import HSF_FORM, FieldSpec, FormSpec, hsf_form
from handwriting_pipeline.fields.normalize import normalize_record
from handwriting_pipeline.fields.types import form_context, type_of
from handwriting_pipeline.review.run import ReviewRun
from handwriting_pipeline.review.store import CorrectionStore, InvalidDecision, check_value, form_id

EXPORT_DIR = "reviewed"
STATUSES = ("machine", "confirmed", "corrected")
#: what the export adds after the fields' statuses
EXTRA_COLUMNS = ("reviewed", "reviewers", "conflicts")
LABELSTUDIO_ORIGIN = "labelstudio"
MODEL_VERSION = "handwriting_pipeline-digitize"
#: the name of the image in the labelling config (every control labels it)
IMAGE_NAME = "image"
#: a checkbox field's two choices in Label Studio, by the checkbox type's normalized value
CHECKBOX_CHOICES = {"true": "yes", "false": "no"}
#: what a person's checkbox choice is stored as (the type's written characters: a mark or nothing)
CHECKBOX_WRITTEN = {"yes": "X", "no": NONE}
#: the suffix of a non-HSF field's normalized column in the reviewed export (``ORDER_NO_normalized``)
NORMALIZED_SUFFIX = "_normalized"


# --------------------------------------------------------------------------- the labelling config
def _choices(f: FieldSpec) -> tuple[str, ...] | None:
    """The options a field is labelled with in Label Studio (None: it is typed)."""
    if f.type == "choice":
        return tuple(f.choice.options) if f.choice else ()
    if f.type == "checkbox":
        return tuple(CHECKBOX_CHOICES.values())
    return None


def label_studio_config(spec: FormSpec) -> str:
    """The Label Studio labelling config (XML) of the form ``spec``: a header naming the doubtful
    fields (``$needs_review``), the image (``$image``), then per field in the spec's order a
    header with the field's title (its name when it has none) and its control, named after the
    field: ``Choices`` of the options for a ``choice`` field, of ``yes`` / ``no`` for a
    ``checkbox``, a one-line ``TextArea`` for every other type."""
    clash = [f.name for f in spec.fields if f.name == IMAGE_NAME]
    if clash:
        raise ValueError(f"form '{spec.name}': a field named '{IMAGE_NAME}' clashes with the image of the Label "
                         "Studio config; rename the field")
    lines = ["<View>", '  <Header value="Check the fields: $needs_review"/>',
             f'  <Image name="{IMAGE_NAME}" value="$image" zoom="true"/>']
    for f in spec.fields:
        title = f.title or f.name
        name = quoteattr(f.name)
        lines.append(f'  <Header value={quoteattr(title)} size="6"/>')
        options = _choices(f)
        if options is None:
            lines.append(f'  <TextArea name={name} toName="{IMAGE_NAME}" editable="true" maxSubmissions="1" rows="1" '
                         'showSubmitButton="false"\n'
                         f"            placeholder={quoteattr(f'{title} as written (None when empty)')}/>")
        else:
            lines.append(f'  <Choices name={name} toName="{IMAGE_NAME}" choice="single" showInline="true">')
            lines += [f"    <Choice value={quoteattr(o)}/>" for o in options]
            lines.append("  </Choices>")
    return "\n".join([*lines, "</View>"]) + "\n"


#: the HSF form's labelling config (Image + one TextArea per field)
LABEL_CONFIG = label_studio_config(hsf_form())


# --------------------------------------------------------------------------- the reviewed forms
def reviewed_records(run: ReviewRun, store: CorrectionStore) -> list[dict[str, Any]]:
    """Every form of the run with its decisions applied (see module doc)."""
    latest = store.latest()
    conflicts = store.conflicts()
    keys = run.keys
    out = []
    for record in run.records:
        form = form_id(record)
        new = {k: v for k, v in record.items() if k != "review"}
        reviewers = set()
        for key in keys:
            decision = latest.get((form, key))
            new[f"{key}_status"] = "machine" if decision is None else decision.status
            if decision is not None:
                new[key] = decision.value
                reviewers.add(decision.reviewer)
        if not record.get("error"):
            new.update(normalized_columns(run.spec, {k: new.get(k, NONE) for k in keys}))
        doubtful = record.get("needs_review") or []
        new["reviewed"] = bool(doubtful) and all((form, k) in latest for k in doubtful)
        new["reviewers"] = sorted(reviewers)
        new["conflicts"] = [k for k in keys if (form, k) in conflicts]
        out.append(new)
    return out


def normalized_columns(spec: FormSpec, values: Mapping[str, Any]) -> dict[str, Any]:
    """The normalized columns of one form's final values: the HSF form's as digitize writes them
    (:func:`~handwriting_pipeline.fields.normalize.normalize_record`: ``DATE_iso``, ``STATE_code``
    ...); another form's ``<FIELD>_normalized`` per field, its type's normalized value with the
    form's other fields as context ("" when there is none)."""
    if spec.name == HSF_FORM:
        return normalize_record(dict(values))
    context = form_context(spec, values)
    return {f"{f.name}{NORMALIZED_SUFFIX}": type_of(f).normalize(values.get(f.name, NONE), context) or ""
            for f in spec.fields}


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
    status_cols = [f"{k}_status" for k in run.keys]
    own = [c for c in (run.records[0] if run.records else {}) if c != "review"]  # forms.csv's order
    added = [c for c in dict.fromkeys(c for r in records for c in r)  # the normalized columns of another form
             if c not in own and c not in status_cols and c not in EXTRA_COLUMNS]
    columns = [*own, *[c for c in run.keys if c not in own], *[c for c in added if c not in run.keys],
               *status_cols, *EXTRA_COLUMNS]

    def write_csv(handle: Any) -> None:
        writer = csv.DictWriter(handle, fieldnames=columns, extrasaction="ignore")
        writer.writeheader()
        for r in records:
            row = {c: r.get(c) for c in columns}
            for c in ("needs_review", "reviewers", "conflicts"):
                row[c] = ";".join(r.get(c) or [])
            writer.writerow({c: ("" if v is None else v) for c, v in row.items()})

    _write_atomic(table, write_csv)
    counts = {s: sum(r[f"{k}_status"] == s for r in records for k in run.keys) for s in STATUSES}
    return {"forms": len(records), "reviewed_forms": sum(r["reviewed"] for r in records), "fields": counts,
            "conflicts": sum(len(r["conflicts"]) for r in records), "jsonl": str(jsonl), "csv": str(table)}


# --------------------------------------------------------------------------- Label Studio
def _image_of(record: Mapping[str, Any]) -> str | None:
    items = record.get("review") or []
    images = [i.get("top") for i in items if i.get("top")] + [i.get("crop") for i in items if i.get("crop")]
    return images[0] if images else None


def _prediction(run: ReviewRun, record: Mapping[str, Any], f: FieldSpec, number: int) -> dict[str, Any] | None:
    """The pre-annotation of one field: the reading as text, or for a choice / checkbox field the
    option the reading normalizes to (None when it normalizes to none: nothing is preselected)."""
    value = str(record.get(f.name) or NONE)
    base = {"id": f"{f.name}-{number}", "from_name": f.name, "to_name": IMAGE_NAME}
    options = _choices(f)
    if options is None:
        return {**base, "type": "textarea", "value": {"text": [value]}}
    normalized = run.normalized_value(record, f.name, value)
    option = CHECKBOX_CHOICES.get(normalized) if f.type == "checkbox" else normalized
    return {**base, "type": "choices", "value": {"choices": [option]}} if option in options else None


def labelstudio_tasks(run: ReviewRun, image_prefix: str = "/data/local-files/?d=") -> list[dict[str, Any]]:
    """Label Studio tasks (JSON task format with pre-annotations over the run's fields) for the
    forms with doubtful fields, made for :func:`label_studio_config` of the run's form.
    ``data.image`` is ``image_prefix`` + the image's path inside the run folder: with
    Label Studio's local file serving, start it with ``LABEL_STUDIO_LOCAL_FILES_SERVING_ENABLED=true``
    and ``LABEL_STUDIO_LOCAL_FILES_DOCUMENT_ROOT=<run folder>``; or serve the folder and give its URL."""
    keys = run.keys
    tasks = []
    for record in run.records:
        doubtful = [k for k in (record.get("needs_review") or []) if k in keys]
        image = _image_of(record)
        if not doubtful or record.get("error") or not image:
            continue
        confidences = [record.get(f"{k}_conf") for k in keys]
        known = [float(c) for c in confidences if c is not None]
        result = [r for f in run.spec.fields if (r := _prediction(run, record, f, len(tasks))) is not None]
        tasks.append({
            "data": {"image": f"{image_prefix}{image}", "form": form_id(record), "source": record["source"],
                     "page": record.get("page"), "needs_review": ", ".join(doubtful),
                     **{f"{k}_conf": record.get(f"{k}_conf") for k in keys}},
            "predictions": [{"model_version": MODEL_VERSION, "score": min(known) if known else 0.0, "result": result}],
        })
    return tasks


def write_labelstudio(run: ReviewRun, out_dir: str | Path | None = None,
                      image_prefix: str = "/data/local-files/?d=") -> dict[str, Any]:
    """``labelstudio/tasks.json`` and ``labelstudio/label_config.xml`` (:func:`label_studio_config`
    of the run's form) in the run folder (or ``out_dir``)."""
    folder = Path(out_dir) if out_dir else run.folder / "labelstudio"
    tasks = labelstudio_tasks(run, image_prefix)
    config = label_studio_config(run.spec)
    _write_atomic(folder / "tasks.json", lambda h: json.dump(tasks, h, ensure_ascii=False, indent=1))
    _write_atomic(folder / "label_config.xml", lambda h: h.write(config))
    return {"form": run.spec.name, "fields": list(run.keys), "tasks": len(tasks),
            "tasks_json": str(folder / "tasks.json"), "config": str(folder / "label_config.xml")}


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


def _chosen(run: ReviewRun, record: Mapping[str, Any], f: FieldSpec, value: Mapping[str, Any]) -> str:
    """A ``choices`` result as the value stored: the machine's reading when the person kept the
    option it normalizes to (so the field is ``confirmed``), else the option (a checkbox: ``X``
    for yes, "None" for no). Raises InvalidDecision for anything but one of the field's options."""
    picked = value.get("choices")
    picked = [picked] if isinstance(picked, str) else list(picked or [])
    options = _choices(f)
    if options is None or len(picked) != 1 or picked[0] not in options:
        raise InvalidDecision(f"{f.name}: expected one of {', '.join(options or ())}, got {picked}")
    machine = str(record.get(f.name) or NONE)
    normalized = run.normalized_value(record, f.name, machine)
    if f.type == "checkbox":
        return machine if CHECKBOX_CHOICES.get(normalized) == picked[0] else CHECKBOX_WRITTEN[picked[0]]
    return machine if normalized == picked[0] else picked[0]


def import_labelstudio(run: ReviewRun, store: CorrectionStore, exported: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Label Studio's JSON export (a list of tasks with ``annotations``) into the store.

    Each non-cancelled annotation's results named after a field of the run's form (``textarea``,
    or ``choices`` for a choice / checkbox field) become decisions of that annotator; a decision
    already stored (same form, field, value, annotator, origin) is not added again. Returns counts
    and the problems (unknown forms, invalid values)."""
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
                key, kind = result.get("from_name"), result.get("type")
                if key not in run.keys or kind not in ("textarea", "choices"):
                    continue
                try:
                    given = result.get("value") or {}
                    text = _text(given) if kind == "textarea" else _chosen(run, record, run.spec.field(key), given)
                    value = check_value(key, text, run.spec)
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
