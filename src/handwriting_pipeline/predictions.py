"""The predictions table every method (engine or ensemble) hands to the next stage.

One row per form: ``file_name``, the four values, a confidence per field (0-1, NaN when the
method gives none), seconds spent, usage for cost (pages, input/output tokens) and the error
text when the form failed. Stored as Parquet so ZIPs like "01234" and the string "None" survive.

Floor 1. May import: floor 0 (``fields``, ``config``, ``registry``, ``errors``).
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from handwriting_pipeline.fields import KEYS, NONE, clean_fields, clean_value

CONF_COLUMNS = [f"{k}_conf" for k in KEYS]
USAGE_COLUMNS = ["pages", "input_tokens", "output_tokens"]
COLUMNS = ["file_name", *KEYS, *CONF_COLUMNS, "seconds", *USAGE_COLUMNS, "error"]


def columns_for(keys: tuple[str, ...] = KEYS) -> list[str]:
    """A predictions table's columns for a form's fields (:data:`COLUMNS` on the HSF form)."""
    return ["file_name", *keys, *(f"{k}_conf" for k in keys), "seconds", *USAGE_COLUMNS, "error"]


def empty_predictions(keys: tuple[str, ...] = KEYS) -> pd.DataFrame:
    """A predictions table with no rows (a method that is disabled or has nothing to read)."""
    return normalise_predictions(pd.DataFrame(columns=columns_for(keys)), keys)


def normalise_predictions(frame: pd.DataFrame, keys: tuple[str, ...] = KEYS) -> pd.DataFrame:
    """Coerce a frame to :func:`columns_for` the form's ``keys`` (:data:`COLUMNS` on the HSF
    form): clean string fields, float confidences, numeric usage, ``error`` as string or None.
    Unknown columns are dropped."""
    frame, keys, columns = frame.copy(), tuple(keys), columns_for(keys)
    for col in columns:
        if col not in frame.columns:
            frame[col] = np.nan if col != "error" else None
    fields = [clean_fields({k: r[k] for k in keys}, keys) for r in frame[list(keys)].to_dict("records")]
    for key in keys:
        frame[key] = [f[key] for f in fields]
    frame["file_name"] = frame["file_name"].astype(str)
    for col in [*(f"{k}_conf" for k in keys), "seconds"]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in USAGE_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").fillna(0).astype(int)
    frame["error"] = [None if (e is None or (isinstance(e, float) and e != e)) else str(e) for e in frame["error"]]
    return frame[columns].reset_index(drop=True)


def predictions_from_records(records: Iterable[dict], keys: tuple[str, ...] = KEYS) -> pd.DataFrame:
    """Build a predictions table from dicts with any subset of :func:`columns_for` ``keys``."""
    records = list(records)
    return normalise_predictions(pd.DataFrame(records, columns=None if records else columns_for(keys)), keys)


def has_error(row: Mapping[str, Any]) -> bool:
    """True when a predictions row records an error. A missing error may come back from a
    Parquet round-trip as None or NaN (NaN is truthy: never test ``row.get("error")``)."""
    error = row.get("error")
    if error is None or (isinstance(error, float) and math.isnan(error)):
        return False
    return bool(str(error).strip())


def failed(row: Mapping[str, Any], keys: tuple[str, ...] = KEYS) -> bool:
    """The method did not read this form: an error and no value (a form read as blank is not
    a failure, it is a "None" reading)."""
    return has_error(row) and all(clean_value(row.get(k)) == NONE for k in keys)


def _confidence(value: Any) -> float:
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


Reading = tuple[dict[str, str], dict[str, float]]


def readings_by_form(tables: Mapping[str, pd.DataFrame], keys: tuple[str, ...] = KEYS) -> dict[str, dict[str, Reading]]:
    """``{file_name: {method: (fields, confidences)}}`` over every form some table has, in order
    of first appearance. One rule for every ensemble: a failed row (:func:`failed`) is no
    reading (the method did not vote), a form a method has no row for is no reading either."""
    out: dict[str, dict[str, Reading]] = {}
    for table in tables.values():
        for name in table["file_name"]:
            out.setdefault(name, {})
    for method, table in tables.items():
        for row in table.to_dict("records"):
            readings = out[row["file_name"]]
            readings.pop(method, None)  # a repeated name: its last row counts
            if not failed(row, keys):
                fields = clean_fields({k: row.get(k) for k in keys}, keys)
                readings[method] = (fields, {k: _confidence(row.get(f"{k}_conf")) for k in keys})
    return out
