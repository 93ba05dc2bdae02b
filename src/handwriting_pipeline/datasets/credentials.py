"""Read-only access to ``conf/local/credentials.yml`` for nodes that call paid APIs.

Kedro hands credentials to datasets, not to nodes, and fails at start-up when a dataset names a
credentials key that is missing; this dataset instead returns ``{}`` for a missing file or
section, so the default offline run needs no credentials file, and the paid engines fall back
to the standard AWS / Azure chains (and fail with a clear message when nothing is set).
Values are never logged: ``_describe`` shows only the path and the section names present.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kedro.io import AbstractDataset, DatasetError


class CredentialsFileDataset(AbstractDataset[dict, dict]):
    """``{section: {key: value}}`` from a YAML credentials file (empty when absent).

    Example::

        extract_credentials:
          type: handwriting_pipeline.datasets.credentials.CredentialsFileDataset
          path: conf/local/credentials.yml
          sections: [aws, azure_form_recognizer]
    """

    def __init__(self, path: str, sections: list[str] | None = None, metadata: dict[str, Any] | None = None) -> None:
        self._path = Path(path)
        self._sections = list(sections) if sections else None
        self.metadata = metadata

    def _load(self) -> dict:
        if not self._path.is_file():
            return {}
        try:
            data = yaml.safe_load(self._path.read_text(encoding="utf-8")) or {}
        except yaml.YAMLError as err:
            raise DatasetError(f"{self._path} is not valid YAML (line {getattr(err, 'problem_mark', '?')})") from None
        if not isinstance(data, dict):
            raise DatasetError(f"{self._path} must be a mapping of sections (aws:, azure_form_recognizer:, ...)")
        wanted = self._sections or list(data)
        return {k: {kk: vv for kk, vv in (data.get(k) or {}).items() if vv not in (None, "")} for k in wanted
                if isinstance(data.get(k) or {}, dict)}

    def _save(self, data: dict) -> None:
        raise DatasetError("credentials are read-only")

    def _describe(self) -> dict[str, Any]:
        return {"path": str(self._path), "sections": self._sections}

    def _exists(self) -> bool:
        return self._path.is_file()
