"""The corrections store: every review decision, appended at once, never overwritten.

SQLite (stdlib ``sqlite3``) in WAL mode with ``synchronous=FULL``: each decision is its own
committed transaction, durable when :meth:`CorrectionStore.record` returns, so a crash or a killed
server loses nothing that was answered. Decisions are only ever inserted: a second decision on a
field is kept beside the first. The *latest* decision per field is what the export uses; when two
reviewers gave different values for one field that is a **conflict** (both rows stay, the page
and the export say so). A reviewer revising their own decision is not a conflict.

A field is named by its form (``<source>#<page>``, :func:`form_id`) and its key; a value is
checked with the field's type from the run's form spec (:func:`check_value`).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from handwriting_pipeline.fields import NONE
from handwriting_pipeline.fields.formspec import FormSpec, hsf_form
from handwriting_pipeline.fields.schema import MAX_WRITTEN_LENGTH
from handwriting_pipeline.fields.types import type_of

STORE_NAME = "corrections.sqlite"
ACTIONS = ("accept", "correct", "pick")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS decisions (
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    form TEXT NOT NULL,
    field TEXT NOT NULL,
    value TEXT NOT NULL,
    machine_value TEXT NOT NULL,
    action TEXT NOT NULL,
    candidate TEXT,
    reviewer TEXT NOT NULL,
    origin TEXT NOT NULL,
    at TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS decisions_field ON decisions (form, field);
"""


class InvalidDecision(ValueError):
    """A decision that must not be stored (unknown field, bad characters, too long, ...)."""


def form_id(record: Mapping[str, Any]) -> str:
    """The name of a digitized form in the store: ``<source>#<page>``."""
    return f"{record['source']}#{int(record.get('page') or 0)}"


def check_value(field: str, value: str, spec: FormSpec | None = None) -> str:
    """A person's value for ``field`` of the form ``spec`` (default: the HSF form), checked: a
    field of the form, at most :data:`MAX_WRITTEN_LENGTH` characters, only the characters a person
    may type for the field's type (``written_chars`` of :func:`~handwriting_pipeline.fields.types.type_of`,
    or "None"); surrounding spaces stripped. Raises :class:`InvalidDecision` naming what is wrong."""
    spec = spec or hsf_form()
    if field not in spec.keys:
        raise InvalidDecision(f"unknown field {field!r}; fields are {', '.join(spec.keys)}")
    if not isinstance(value, str):
        raise InvalidDecision(f"{field}: the value must be text")
    value = " ".join(value.split())
    if value in ("", NONE):
        return NONE
    if len(value) > MAX_WRITTEN_LENGTH:
        raise InvalidDecision(f"{field}: {len(value)} characters, at most {MAX_WRITTEN_LENGTH}")
    written = type_of(spec.field(field)).written_chars
    bad = sorted({ch for ch in value if ch not in written})
    if bad:
        raise InvalidDecision(f"{field}: characters not allowed: {' '.join(repr(c) for c in bad)}")
    return value


@dataclass(frozen=True)
class Decision:
    """One stored decision."""

    id: int
    form: str
    field: str
    value: str
    machine_value: str
    action: str
    candidate: str | None
    reviewer: str
    origin: str
    at: str

    @property
    def status(self) -> str:
        """``confirmed`` (the machine's value kept) or ``corrected``."""
        return "confirmed" if self.value == self.machine_value else "corrected"

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "status": self.status}


class CorrectionStore:
    """Append-only decisions in one SQLite file (WAL, a committed transaction per decision),
    checked against the fields of ``spec`` (the run's form; default the HSF form)."""

    def __init__(self, path: str | Path, spec: FormSpec | None = None) -> None:
        self.path = Path(path)
        self.spec = spec or hsf_form()  # the form whose fields decisions are checked against
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self._connect() as db:
            db.execute("PRAGMA journal_mode=WAL")
            db.executescript(_SCHEMA)

    @contextmanager
    def _connect(self) -> Iterator[sqlite3.Connection]:
        db = sqlite3.connect(self.path, timeout=30, isolation_level=None)
        try:
            db.execute("PRAGMA synchronous=FULL")
            db.execute("PRAGMA busy_timeout=30000")
            yield db
        finally:
            db.close()

    def record(self, form: str, field: str, value: str, machine_value: str, reviewer: str, action: str | None = None,
               candidate: str | None = None, origin: str = "page") -> tuple[Decision, list[Decision]]:
        """Append a decision (durable when this returns). Returns it and the conflicts it makes:
        earlier decisions on the same field by *other* reviewers whose latest value differs."""
        value = check_value(field, value, self.spec)
        machine_value = str(machine_value if machine_value not in (None, "") else NONE)
        reviewer = " ".join(str(reviewer or "").split())[:64]
        if not reviewer:
            raise InvalidDecision("a decision needs a reviewer name")
        action = action or ("accept" if value == machine_value else "correct")
        if action not in ACTIONS:
            raise InvalidDecision(f"unknown action {action!r}; actions are {', '.join(ACTIONS)}")
        at = datetime.now(timezone.utc).isoformat(timespec="milliseconds")
        with self._connect() as db:
            db.execute("BEGIN IMMEDIATE")
            cursor = db.execute(
                "INSERT INTO decisions (form, field, value, machine_value, action, candidate, reviewer, origin, at)"
                " VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (form, field, value, machine_value, action, candidate, reviewer, origin, at))
            db.execute("COMMIT")
            decision = Decision(cursor.lastrowid, form, field, value, machine_value, action, candidate, reviewer,
                                origin, at)
        return decision, self.conflicts_with(decision)

    def decisions(self, form: str | None = None, field: str | None = None) -> list[Decision]:
        """Stored decisions in the order they were made (optionally of one form / field)."""
        query, args = "SELECT id, form, field, value, machine_value, action, candidate, reviewer, origin, at " \
                      "FROM decisions", []
        where = []
        if form is not None:
            where.append("form = ?")
            args.append(form)
        if field is not None:
            where.append("field = ?")
            args.append(field)
        if where:
            query += " WHERE " + " AND ".join(where)
        with self._connect() as db:
            rows = db.execute(query + " ORDER BY id", args).fetchall()
        return [Decision(*row) for row in rows]

    def latest(self) -> dict[tuple[str, str], Decision]:
        """The latest decision per (form, field): what the export uses."""
        return {(d.form, d.field): d for d in self.decisions()}

    def conflicts_with(self, decision: Decision) -> list[Decision]:
        """Other reviewers' latest decisions on the same field whose value differs."""
        latest: dict[str, Decision] = {}
        for d in self.decisions(decision.form, decision.field):
            if d.reviewer != decision.reviewer:
                latest[d.reviewer] = d
        return [d for d in latest.values() if d.value != decision.value]

    def conflicts(self) -> dict[tuple[str, str], list[Decision]]:
        """Fields whose reviewers' latest decisions disagree: every reviewer's latest decision."""
        per_field: dict[tuple[str, str], dict[str, Decision]] = {}
        for d in self.decisions():
            per_field.setdefault((d.form, d.field), {})[d.reviewer] = d
        return {key: list(by.values()) for key, by in per_field.items() if len({d.value for d in by.values()}) > 1}
