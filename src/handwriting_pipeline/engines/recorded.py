"""Replay of earlier engine outputs stored as a CSV (the authors' real Textract / Azure runs).

Columns: image_name, then per key the value and its confidence (read by the one outputs-CSV
reader, :mod:`handwriting_pipeline.recorded_csv`). An empty cell means the engine found nothing
("None"). ``confidence_scale`` turns the file's scale into 0-1 (Textract 100, Azure 1). A form
the CSV lacks gets "None" values and an error; each form found counts one page, so its cost
compares with the live engine.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

from PIL import Image

from handwriting_pipeline.config import Settings
from handwriting_pipeline.engines.base import Engine, EngineResult
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.recorded_csv import read_predictions_csv

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class RecordedSettings(Settings):
    """``extract.recorded_<service>``: both keys differ per service, so both are required."""

    source: ClassVar[str] = "conf/base/parameters_extract.yml"
    path: str
    confidence_scale: float


class RecordedEngine(Engine):
    """Reads answers from a CSV instead of calling the service (offline, free, reproducible).

    Args (``extract.recorded_textract`` / ``extract.recorded_azure_form_recognizer``):
        path: the CSV; a missing file leaves the method empty (logged), so runs without
            ../shared still work.
        confidence_scale: 100 for Textract's 0-100 confidences, 1 for Azure's 0-1.
        method: the method name the table is reported under.
    """

    name = "recorded"
    version = "1"
    needs_image = False
    optional = True   # no CSV (e.g. without ../shared): skipped with a log line
    cacheable = False  # replaying a file costs nothing
    default = True
    settings_class = RecordedSettings

    def __init__(self, path: str, confidence_scale: float = 1.0, method: str = "recorded", **config: Any) -> None:
        super().__init__(path=str(path), confidence_scale=float(confidence_scale), **config)
        self.name = method  # type: ignore[misc] - one class, several recorded methods
        self.path = Path(path)
        self.confidence_scale = float(confidence_scale)
        self._table: dict | None = None

    @classmethod
    def from_params(cls, method: str, settings: Any, credentials: Any = None, **inputs: Any) -> "RecordedEngine":
        """One class, several recorded methods: the method name is the table's name."""
        return cls(**cls.settings_for(method, settings), method=method)

    def forms_to_read(self, file_names: list[str]) -> list[str]:
        """Only the forms the recording has; the others get no row (scored as "None")."""
        recorded = [n for n in file_names if n in self]
        if not recorded:
            logger.warning("extract %s: none of the %d forms is in %s (empty predictions)",
                           self.name, len(file_names), self.path)
        elif len(recorded) < len(file_names):
            logger.info("extract %s: %d of %d forms are in %s", self.name, len(recorded), len(file_names), self.path)
        return recorded

    def check_ready(self) -> None:
        if not self.path.is_file():
            raise FileNotFoundError(
                f"recorded outputs for '{self.name}' not found at {self.path}: set extract.{self.name}.path "
                f"to the CSV (e.g. ../shared/data/hsf_top/ocr_outputs/{self.name.removeprefix('recorded_')}.csv) "
                "or remove the method from extract.engines")

    @property
    def table(self) -> dict[str, tuple[dict[str, str], dict[str, float]]]:
        """image_name -> (fields, confidences 0-1), read once."""
        if self._table is None:
            frame = read_predictions_csv(self.path, self.confidence_scale)
            self._table = {row["file_name"]: ({k: row[k] for k in KEYS}, {k: row[f"{k}_conf"] for k in KEYS})
                           for row in frame.to_dict("records")}
        return self._table

    def __contains__(self, file_name: str) -> bool:
        return file_name in self.table

    def read(self, image: Image.Image | None = None, file_name: str = "") -> EngineResult:
        found = self.table.get(file_name)
        if found is None:
            return EngineResult(error=f"{file_name} not in {self.path}")
        fields, conf = found
        return EngineResult(fields=fields, confidence=conf, raw={"source": str(self.path)}, usage={"pages": 1})
