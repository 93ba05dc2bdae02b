"""The predictions table every method (engine or ensemble) hands to the next stage.

One row per form: ``file_name``, the four values, a confidence per field (0-1, NaN when the
method gives none), seconds spent, usage for cost (pages, input/output tokens) and the error
text when the form failed. Stored as Parquet so ZIPs like "01234" and the string "None" survive.
"""

from __future__ import annotations

from collections.abc import Iterable

import numpy as np
import pandas as pd

from handwriting_pipeline.fields import KEYS, clean_fields

CONF_COLUMNS = [f"{k}_conf" for k in KEYS]
USAGE_COLUMNS = ["pages", "input_tokens", "output_tokens"]
COLUMNS = ["file_name", *KEYS, *CONF_COLUMNS, "seconds", *USAGE_COLUMNS, "error"]


def empty_predictions() -> pd.DataFrame:
    """A predictions table with no rows (a method that is disabled or has nothing to read)."""
    return normalise_predictions(pd.DataFrame(columns=COLUMNS))


def normalise_predictions(frame: pd.DataFrame) -> pd.DataFrame:
    """Coerce a frame to :data:`COLUMNS`: four clean string fields, float confidences,
    numeric usage, ``error`` as string or None. Unknown columns are dropped."""
    frame = frame.copy()
    for col in COLUMNS:
        if col not in frame.columns:
            frame[col] = np.nan if col != "error" else None
    fields = [clean_fields({k: r[k] for k in KEYS}) for r in frame[list(KEYS)].to_dict("records")]
    for key in KEYS:
        frame[key] = [f[key] for f in fields]
    frame["file_name"] = frame["file_name"].astype(str)
    for col in [*CONF_COLUMNS, "seconds"]:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").astype(float)
    for col in USAGE_COLUMNS:
        frame[col] = pd.to_numeric(frame[col], errors="coerce").fillna(0).astype(int)
    frame["error"] = [None if (e is None or (isinstance(e, float) and e != e)) else str(e) for e in frame["error"]]
    return frame[COLUMNS].reset_index(drop=True)


def predictions_from_records(records: Iterable[dict]) -> pd.DataFrame:
    """Build a predictions table from dicts with any subset of :data:`COLUMNS`."""
    return normalise_predictions(pd.DataFrame(list(records)))
