"""The one reader of outputs CSVs: the recorded Textract / Azure runs (``ocr_outputs/*.csv``) and
predictions made elsewhere (``python -m handwriting_pipeline.score``), as a predictions table.

Columns: ``image_name`` or ``file_name``, then per key the value and optionally its confidence
(``DATE_CONFIDENCE``; Textract's file spells two of them ``DATE__CONFIDENCE`` /
``CITY__CONFIDENCE``). An empty cell means the field was not found ("None"); a confidence is NaN
when its value is "None" or its cell is empty or not a number. Read by the recorded engines
(:mod:`handwriting_pipeline.engines.recorded`), the scorer, the calibration and the catalog's
LLM hint readings (:class:`handwriting_pipeline.datasets.RecordedOutputsDataset`).

Floor 2. May import: floors 0-1 (``fields``, ``predictions``).
"""

from __future__ import annotations

import math
from pathlib import Path

import pandas as pd

from handwriting_pipeline.fields import KEYS, NONE, clean_value
from handwriting_pipeline.predictions import predictions_from_records

NAME_COLUMNS = ("file_name", "image_name")


class InputError(ValueError):
    """A labels or outputs file that cannot be read; the message names file and problem."""


def read_csv_table(path: Path, what: str) -> pd.DataFrame:
    """A CSV as strings (ZIP "01234" and "None" survive), header names stripped."""
    if not path.is_file():
        raise InputError(f"{what} {path}: file not found")
    try:
        # dtype=str + keep_default_na=False: ZIP "01234" and the string "None" survive
        frame = pd.read_csv(path, dtype=str, keep_default_na=False)
    except pd.errors.EmptyDataError:
        raise InputError(f"{what} {path}: the file is empty (expected a header row)") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as err:
        raise InputError(f"{what} {path}: not a readable CSV ({err})") from None
    frame.columns = [str(c).strip() for c in frame.columns]
    return frame


def table_columns(frame: pd.DataFrame, path: Path, what: str) -> tuple[str, dict[str, str]]:
    """The name column and the column of each key (matched case-insensitively)."""
    by_upper: dict[str, list[str]] = {}
    for column in frame.columns:
        by_upper.setdefault(column.upper(), []).append(column)
    names = [c for n in NAME_COLUMNS for c in by_upper.get(n.upper(), [])]
    present = ", ".join(map(str, frame.columns)) or "none"
    if not names:
        raise InputError(f"{what} {path}: no 'image_name' or 'file_name' column (columns: {present})")
    if len(names) > 1:
        raise InputError(f"{what} {path}: several file name columns {names}; keep one of 'image_name' / 'file_name'")
    missing = [k for k in KEYS if k not in by_upper]
    if missing:
        raise InputError(f"{what} {path}: missing columns {', '.join(missing)} (columns: {present}); "
                         f"needs {names[0]}, {', '.join(KEYS)}")
    ambiguous = [k for k in KEYS if len(by_upper[k]) > 1]
    if ambiguous:
        raise InputError(f"{what} {path}: columns {ambiguous} appear more than once")
    return names[0], {k: by_upper[k][0] for k in KEYS}


def check_names(names: pd.Series, path: Path, what: str) -> None:
    blank = [i + 2 for i, n in enumerate(names) if not n.strip()]  # +2: header line, 1-based
    if blank:
        shown = ", ".join(map(str, blank[:5])) + (", ..." if len(blank) > 5 else "")
        raise InputError(f"{what} {path}: {len(blank)} rows without a file name (lines {shown})")
    dup = sorted(set(names[names.duplicated()]))
    if dup:
        shown = ", ".join(dup[:5]) + (", ..." if len(dup) > 5 else "")
        raise InputError(f"{what} {path}: {len(dup)} file names appear more than once ({shown}); "
                         "keep one row per form")


def _confidence(raw: str, value: str, scale: float) -> float:
    if clean_value(value) == NONE:
        return math.nan
    try:
        return float(raw) / scale
    except ValueError:
        return math.nan


def read_predictions_csv(path: str | Path, confidence_scale: float = 1.0) -> pd.DataFrame:
    """An outputs CSV as the project's predictions table (``predictions.COLUMNS``), confidences
    divided by ``confidence_scale`` (Textract's 0-100: 100, Azure's 0-1: 1).

    Raises:
        InputError: file missing or unreadable, no name column, a key column missing, blank or
            duplicate file names.
    """
    path = Path(path)
    frame = read_csv_table(path, "PREDICTIONS")
    name_col, key_cols = table_columns(frame, path, "PREDICTIONS")
    names = frame[name_col].astype(str)
    check_names(names, path, "PREDICTIONS")
    by_upper = {str(c).upper(): c for c in frame.columns}
    # recorded outputs name them <KEY>_confidence; the project's own predictions tables <KEY>_conf
    conf_cols = {k: [by_upper[c] for c in (f"{k}_CONFIDENCE", f"{k}__CONFIDENCE", f"{k}_CONF") if c in by_upper]
                 for k in KEYS}
    records = []
    for i, name in enumerate(names):
        values = {k: frame[key_cols[k]].iat[i] for k in KEYS}
        raw = {k: next((frame[c].iat[i] for c in conf_cols[k] if frame[c].iat[i] != ""), "") for k in KEYS}
        records.append({"file_name": name.strip(), **values,
                        **{f"{k}_conf": _confidence(raw[k], values[k], confidence_scale) for k in KEYS}})
    return predictions_from_records(records)
