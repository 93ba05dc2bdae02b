"""A digitize run folder as the review page and the export see it: its form, its forms and the
queue of doubtful fields (``forms.jsonl``'s ``review`` items), read once; files resolved safely.

The run's form is what its ``summary.json`` names (``"form"`` and its ``"fields"``, which digitize
records); runs from before it did - or a run folder whose summary is not written yet - are the HSF
form's (:func:`run_form`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handwriting_pipeline.fields import NONE
from handwriting_pipeline.fields.formspec import FormSpec, FormSpecError, hsf_form, is_hsf_layout, load_form
from handwriting_pipeline.fields.types import form_context, type_of
from handwriting_pipeline.review.store import STORE_NAME, CorrectionStore, InvalidDecision, check_value, form_id

FORMS_FILE = "forms.jsonl"
SUMMARY_FILE = "summary.json"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class RunFolderError(RuntimeError):
    """A folder that is not a readable digitize run."""


def run_form(folder: str | Path, form: str | Path | None = None) -> FormSpec:
    """The form a digitize run read: ``form`` (a shipped form's name or a spec file) when given,
    else the one its ``summary.json`` names; the HSF form for a run whose summary names none (runs
    from before digitize recorded it, or a summary not written yet). The summary's ``fields`` must
    be the spec's fields, in order. Raises :class:`RunFolderError` saying what to do otherwise."""
    path = Path(folder).expanduser() / SUMMARY_FILE
    summary: Mapping[str, Any] = {}
    if path.is_file():
        try:
            summary = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise RunFolderError(f"{path}: not JSON ({err.msg}); the run was not written completely - "
                                 "digitize it again") from err
        if not isinstance(summary, Mapping):
            raise RunFolderError(f"{path}: expected an object (digitize's summary)")
    named, fields = summary.get("form"), summary.get("fields")
    try:
        spec = load_form(form) if form else load_form(named) if named else hsf_form()
    except FormSpecError as err:
        if form:
            raise RunFolderError(str(err)) from err
        raise RunFolderError(f"{path}: the run read the form {named!r}, which cannot be loaded ({err}); pass "
                             "its spec file with --form path/to/form.yml") from err
    if form and named and named != spec.name:
        raise RunFolderError(f"{path}: the run read the form {named!r}, not {spec.name!r} ({form})")
    if fields is not None and list(fields) != list(spec.keys):
        raise RunFolderError(f"{path}: the run's fields {list(fields)} are not the fields of the form "
                             f"{spec.name!r} ({', '.join(spec.keys)})")
    return spec


@dataclass(frozen=True)
class ReviewItem:
    """One doubtful field of one form."""

    index: int
    form: str
    field: str
    chosen: str
    confidence: float | None
    candidates: dict[str, str]
    crop: str | None
    top: str | None
    source: str
    page: int
    written_conf: float | None = None
    value_conf: float | None = None
    why: tuple[str, ...] = ()          # the doubt signals digitize recorded (runs before them: none)
    normalized: str = ""               # the chosen reading's normalized value ("" when none)
    spec: FormSpec | None = field(default=None, repr=False, compare=False)  # the run's form (None: HSF)

    @property
    def form_spec(self) -> FormSpec:
        """The form the field belongs to (the HSF form when the item was made without one)."""
        return self.spec or hsf_form()

    @property
    def title(self) -> str | None:
        """The field's title in the form spec, if it has one."""
        return self.form_spec.field(self.field).title

    def options(self) -> list[dict[str, Any]]:
        """Distinct candidate values (the chosen one first when an engine proposed it), each
        with the engines that proposed it, and last the normalized value (engine ``normalized``)
        when it is new and a valid decision: the page's numbered buttons (at most 9)."""
        by_value: dict[str, list[str]] = {}
        for engine, value in self.candidates.items():
            by_value.setdefault(str(value if value not in (None, "") else NONE), []).append(engine)
        order = sorted(by_value, key=lambda v: (v != self.chosen, list(by_value).index(v)))
        options = [{"value": v, "engines": by_value[v]} for v in order]
        norm = self.normalized_option()
        if norm is None:
            return options[:9]
        return [*options[:8], {"value": norm, "engines": ["normalized"]}]

    def reasons(self) -> list[str]:
        """Why the field is doubtful: what digitize recorded, or for runs from before it did,
        its low confidence and whether the engines disagree."""
        if self.why:
            return list(self.why)
        out = [] if self.confidence is None else [f"low confidence ({float(self.confidence):.2f})"]
        if len({str(v).upper() for v in self.candidates.values()}) > 1:
            out.append(f"engines disagree ({len(set(self.candidates.values()))} readings)")
        return out

    def normalized_option(self) -> str | None:
        """The normalized value as a candidate: None when there is none, it is already a
        candidate (or the chosen value), it is a city (``us_city``) that differs only in case, or
        it would not be a valid decision."""
        if not self.normalized or self.normalized == self.chosen or self.normalized in self.candidates.values():
            return None
        spec = self.form_spec
        if spec.field(self.field).type == "us_city" and self.normalized.upper() == self.chosen.upper():
            return None  # a city the gazetteer does not confirm is only title-cased: nothing new
        try:
            return check_value(self.field, self.normalized, spec)
        except InvalidDecision:
            return None


@dataclass
class ReviewRun:
    """The forms of a digitize run, its form (``spec``) and its review queue."""

    folder: Path
    records: list[dict[str, Any]]
    items: list[ReviewItem] = field(default_factory=list)
    spec: FormSpec = field(default_factory=hsf_form)

    @property
    def keys(self) -> tuple[str, ...]:
        """The run's fields, in the form's order."""
        return self.spec.keys

    @property
    def is_hsf(self) -> bool:
        """Whether the run's form has the HSF layout (its columns and normalized fields are digitize's)."""
        return is_hsf_layout(self.spec)

    def normalized_value(self, record: Mapping[str, Any], key: str, value: Any) -> str:
        """``value`` of field ``key`` normalized by the field's type, the record's other fields as
        its context (:func:`~handwriting_pipeline.fields.types.form_context`); "" when none."""
        context = form_context(self.spec, {k: record.get(k) for k in self.keys if k in record})
        return type_of(self.spec.field(key)).normalize(value, context) or ""

    @classmethod
    def open(cls, folder: str | Path, form: str | Path | None = None) -> ReviewRun:
        """The run in ``folder``; its form from its ``summary.json`` (or ``form``: a shipped
        form's name or a spec file, see :func:`run_form`)."""
        root = Path(folder).expanduser()
        path = root / FORMS_FILE
        if not path.is_file():
            raise RunFolderError(f"{root} is not a digitize run folder: {FORMS_FILE} is missing. "
                                 "Run `kedro run --pipeline digitize --params digitize.input_dir=<scans>` first "
                                 "(its run folder: data/08_reporting/digitize/latest)")
        records = []
        with open(path, encoding="utf-8") as handle:
            for number, line in enumerate(handle, 1):
                if not line.strip():
                    continue
                try:
                    records.append(json.loads(line))
                except json.JSONDecodeError as err:
                    raise RunFolderError(f"{path}:{number}: not JSON ({err.msg}); the run was not written "
                                         "completely - digitize it again") from err
        run = cls(root.resolve(), records, spec=run_form(root, form))
        for record in records:
            for item in record.get("review") or []:
                if item.get("field") not in run.keys:
                    continue
                chosen = str(item.get("chosen") or NONE)
                # HSF: the value digitize normalized (the trust signals'); another form: its field type's
                normalized = (str(item.get("normalized") or "") if run.is_hsf
                              else run.normalized_value(record, item["field"], chosen))
                run.items.append(ReviewItem(
                    index=len(run.items), form=form_id(record), field=item["field"], chosen=chosen,
                    confidence=item.get("confidence"), candidates=dict(item.get("candidates") or {}),
                    crop=item.get("crop"), top=item.get("top"), source=str(record["source"]),
                    page=int(record.get("page") or 0), written_conf=item.get("written_conf"),
                    value_conf=item.get("value_conf"), why=tuple(str(w) for w in item.get("why") or ()),
                    normalized=normalized, spec=run.spec))
        return run

    def store(self, path: str | Path | None = None) -> CorrectionStore:
        """The run's corrections store (``corrections.sqlite`` in the run folder by default)."""
        return CorrectionStore(path or self.folder / STORE_NAME, self.spec)

    def record_of(self, form: str) -> Mapping[str, Any] | None:
        return next((r for r in self.records if form_id(r) == form), None)

    def file(self, relative: str) -> Path | None:
        """A file of the run folder by its relative name, or None: no absolute paths, no ``..``,
        nothing whose real path (symlinks followed) leaves the folder, images only."""
        if not relative or "\x00" in relative or "\\" in relative:
            return None
        parts = Path(relative).parts
        if Path(relative).is_absolute() or ".." in parts or relative.startswith("/"):
            return None
        if not relative.lower().endswith(IMAGE_SUFFIXES):
            return None
        path = (self.folder / relative).resolve()
        if not path.is_relative_to(self.folder) or not path.is_file():
            return None
        return path
