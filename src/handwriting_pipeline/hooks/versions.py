"""Run versions: each run reads back its own outputs, claims a save version no other run holds,
and never leaves a half-written output that could be read as valid."""

from __future__ import annotations

import json
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any


def _dataset(catalog: Any, name: str) -> Any:
    try:
        return catalog.get(name) if hasattr(catalog, "get") else catalog._get_dataset(name)  # noqa: SLF001
    except Exception:  # noqa: BLE001 - a name the catalog cannot build: nothing to pin
        return None


def _is_half_written(path: Path) -> bool:
    """A file this run wrote that cannot be read back (checks the formats the project writes)."""
    try:
        if path.is_dir():
            return False
        if path.stat().st_size == 0:
            return True
        suffix = path.suffix.lower()
        if suffix == ".json":
            json.loads(path.read_text(encoding="utf-8"))
        elif suffix == ".parquet":
            import pyarrow.parquet as pq

            pq.read_metadata(path)
        elif suffix == ".png":
            from PIL import Image

            with Image.open(path) as img:
                img.load()
        elif suffix in {".csv", ".md", ".jsonl"}:
            path.read_text(encoding="utf-8")
    except Exception:  # noqa: BLE001
        return True
    return False


def _next_version(version: str) -> str:
    """The version string one millisecond later (Kedro's ``YYYY-MM-DDTHH.MM.SS.mmmZ`` format)."""
    stamp = datetime.strptime(version, "%Y-%m-%dT%H.%M.%S.%fZ") + timedelta(milliseconds=1)
    return stamp.strftime("%Y-%m-%dT%H.%M.%S.%f")[:-3] + "Z"


def claim_version(version: str, datasets: list[Any], attempts: int = 1000) -> tuple[str, list[Path]]:
    """A save version no other run holds: two runs started in the same millisecond get the same
    Kedro version and the second would fail writing ("Save path ... must not exist"). Each
    run claims its version by creating the version folders of its local datasets (``mkdir`` is
    atomic); a folder that exists means another run has it, so the next millisecond is tried.
    Returns the version and the folders created (removed again if still empty, :func:`release`)."""
    local = [d for d in datasets if getattr(d, "_protocol", "file") in ("file", None)]
    for _ in range(attempts):
        made: list[Path] = []
        # datasets may share a run folder (digitize's outputs): each folder once
        folders = dict.fromkeys(Path(str(d._get_versioned_path(version))).parent for d in local)  # noqa: SLF001
        try:
            for folder in folders:
                missing = [p for p in reversed(folder.parents) if not p.exists()]
                folder.parent.mkdir(parents=True, exist_ok=True)
                made.extend(missing)
                folder.mkdir()
                made.append(folder)
            return version, made
        except FileExistsError:
            release(made)
            version = _next_version(version)
    raise RuntimeError(f"no free save version after {attempts} tries from {version}")


def release(folders: list[Path]) -> None:
    """Remove the claimed folders nothing was written into (newest first)."""
    for folder in reversed(folders):
        try:
            folder.rmdir()
        except OSError:  # not empty (an output was written) or already gone
            pass
