"""A digitize run folder as the review page and the export see it: its forms and the queue of
doubtful fields (``forms.jsonl``'s ``review`` items), read once; files resolved safely."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from handwriting_pipeline.fields import KEYS, NONE
from handwriting_pipeline.review.store import STORE_NAME, CorrectionStore, form_id

FORMS_FILE = "forms.jsonl"
IMAGE_SUFFIXES = (".png", ".jpg", ".jpeg")


class RunFolderError(RuntimeError):
    """A folder that is not a readable digitize run."""


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

    def options(self) -> list[dict[str, Any]]:
        """Distinct candidate values (the chosen one first when an engine proposed it), each
        with the engines that proposed it: the page's numbered buttons."""
        by_value: dict[str, list[str]] = {}
        for engine, value in self.candidates.items():
            by_value.setdefault(str(value if value not in (None, "") else NONE), []).append(engine)
        order = sorted(by_value, key=lambda v: (v != self.chosen, list(by_value).index(v)))
        return [{"value": v, "engines": by_value[v]} for v in order][:9]


@dataclass
class ReviewRun:
    """The forms of a digitize run and its review queue."""

    folder: Path
    records: list[dict[str, Any]]
    items: list[ReviewItem] = field(default_factory=list)

    @classmethod
    def open(cls, folder: str | Path) -> ReviewRun:
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
        run = cls(root.resolve(), records)
        for record in records:
            for item in record.get("review") or []:
                if item.get("field") not in KEYS:
                    continue
                run.items.append(ReviewItem(
                    index=len(run.items), form=form_id(record), field=item["field"], chosen=str(item.get("chosen") or NONE),
                    confidence=item.get("confidence"), candidates=dict(item.get("candidates") or {}),
                    crop=item.get("crop"), top=item.get("top"), source=str(record["source"]),
                    page=int(record.get("page") or 0)))
        return run

    def store(self, path: str | Path | None = None) -> CorrectionStore:
        """The run's corrections store (``corrections.sqlite`` in the run folder by default)."""
        return CorrectionStore(path or self.folder / STORE_NAME)

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
