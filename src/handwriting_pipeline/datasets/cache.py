"""An on-disk response cache, so a paid or slow call is never made twice.

One JSON file per key (``<folder>/<key[:2]>/<key>.json``), written atomically (temp file, fsync,
rename) the moment an answer arrives: a crash or a re-run loses no finished form and repeats no
paid call; concurrent runs share the folder safely (no lock needed: each write publishes a whole
file, and a reader sees a whole file or none). An unreadable entry (truncated by a crash on a
file system without atomic rename) is logged, ignored and recomputed.
Keys come from :meth:`handwriting_pipeline.engines.base.Engine.cache_key` (engine, engine
version and config, image SHA-256) or, for LLM calls, a hash of model + prompt.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset

logger = logging.getLogger(__name__)


class ResponseCache:
    """Write-through key -> JSON cache in a folder."""

    def __init__(self, folder: str | Path) -> None:
        self.folder = Path(folder)
        self.hits = 0
        self.misses = 0

    def _path(self, key: str) -> Path:
        safe = re.sub(r"[^A-Za-z0-9_.-]", "_", key)
        return self.folder / safe[:2] / f"{safe}.json"

    def get(self, key: str) -> Any | None:
        """The cached value, or None (counts hits and misses)."""
        path = self._path(key)
        try:
            value = json.loads(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            self.misses += 1
            return None
        except (OSError, ValueError) as err:  # truncated / corrupt entry (a crash, a full disk): recompute
            logger.warning("cache entry %s unreadable (%s): ignored, the answer is computed again", path,
                           type(err).__name__)
            self.misses += 1
            return None
        self.hits += 1
        return value

    def put(self, key: str, value: Any) -> None:
        """Store a JSON-able value atomically (temp file + rename)."""
        path = self._path(key)
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, suffix=".tmp")
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as handle:
                json.dump(value, handle, default=str)
                handle.flush()
                os.fsync(handle.fileno())  # the rename never publishes an empty file after a power cut
            os.replace(tmp, path)  # atomic: concurrent writers of one key each publish a whole file
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise

    def __contains__(self, key: str) -> bool:
        return self._path(key).is_file()

    def __len__(self) -> int:
        return sum(1 for _ in self.folder.glob("*/*.json")) if self.folder.is_dir() else 0


class ResponseCacheDataset(AbstractDataset[ResponseCache, ResponseCache]):
    """Kedro dataset giving nodes a :class:`ResponseCache` on a folder.

    Loading never fails (an empty folder is an empty cache); nodes write through it as they go.
    Saving is a no-op because every entry is already on disk.

    Example::

        extract_cache:
          type: handwriting_pipeline.datasets.ResponseCacheDataset
          path: data/02_intermediate/cache/extract
    """

    def __init__(self, path: str, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self.metadata = metadata

    def _load(self) -> ResponseCache:
        return ResponseCache(self._path)

    def _save(self, data: ResponseCache) -> None:  # entries are written as they arrive
        return None

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path)}

    def _exists(self) -> bool:
        return True
