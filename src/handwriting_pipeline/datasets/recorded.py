"""An outputs CSV (recorded Textract / Azure run) as a Kedro dataset: the predictions table of
:func:`handwriting_pipeline.recorded_csv.read_predictions_csv` (read-only)."""

from __future__ import annotations

from typing import Any

import pandas as pd
from kedro.io import AbstractDataset, DatasetError

from handwriting_pipeline.recorded_csv import read_predictions_csv


class RecordedOutputsDataset(AbstractDataset[None, pd.DataFrame]):
    """Read-only: ``image_name`` + DATE, CITY, STATE, ZIP (+ ``<KEY>_CONFIDENCE``) -> predictions table.

    Example (the LLM's hint readings, read only when hints are on)::

        llm_hint_readings:
          type: handwriting_pipeline.datasets.LazyDataset
          dataset:
            type: handwriting_pipeline.datasets.RecordedOutputsDataset
            filepath: ../shared/data/hsf_top/ocr_outputs/textract.csv
            confidence_scale: 100
    """

    def __init__(self, filepath: str, confidence_scale: float = 1.0, metadata: dict[str, Any] | None = None) -> None:
        self._filepath = str(filepath)
        self._confidence_scale = float(confidence_scale)
        self.metadata = metadata

    def _describe(self) -> dict[str, Any]:
        return {"filepath": self._filepath, "confidence_scale": self._confidence_scale}

    def load(self) -> pd.DataFrame:
        return read_predictions_csv(self._filepath, self._confidence_scale)

    def save(self, data: pd.DataFrame) -> None:
        raise DatasetError("RecordedOutputsDataset is read-only (recorded outputs are never modified)")
