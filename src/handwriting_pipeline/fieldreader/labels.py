"""Which labels the field reader's fit lines train on (``train_fieldreader.labels``).

The authors labelled the forms twice (``second_annotation.csv``, ../shared/data/README.md); the
two passes disagree on 16.6 % of the train forms, mostly case and dots. Three ways to train:

* ``first`` (default): the labels of ``metadata.jsonl`` only; the second annotation is not read;
* ``drop_disagreements``: a fit line whose second label differs is left out;
* ``both``: such a line keeps both labels and its CTC loss is the mean over the two
  (:func:`~handwriting_pipeline.fieldreader.training.ctc_loss_two_labels`).

Only the fit lines are concerned: held-out lines (early stopping, calibration) and every score
keep the first labels. The second annotation is never a label to score against.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pandas as pd

from handwriting_pipeline.fields import KEYS, clean_fields

logger = logging.getLogger(__name__)

LABEL_MODES = ("first", "drop_disagreements", "both")


def check_mode(mode: str) -> str:
    """``mode`` when it is one of :data:`LABEL_MODES`; else a ValueError naming them."""
    if mode not in LABEL_MODES:
        raise ValueError(f"train_fieldreader.labels is {mode!r}: one of {', '.join(LABEL_MODES)}")
    return mode


def read_second_annotation(path: str | Path) -> dict[str, dict[str, str]]:
    """``second_annotation.csv`` (file_name, split, DATE, CITY, STATE, ZIP) -> the cleaned fields
    by file name (cleaned like every label: :func:`~handwriting_pipeline.fields.clean_fields`)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"second annotation not found at {path} (train_fieldreader.second_annotation; "
                                "needed only when train_fieldreader.labels is not 'first')")
    table = pd.read_csv(path, dtype=str, keep_default_na=False)
    missing = [c for c in ("file_name", *KEYS) if c not in table.columns]
    if missing:
        raise ValueError(f"{path}: columns {missing} missing (file_name, DATE, CITY, STATE, ZIP expected)")
    return {row["file_name"]: clean_fields({k: row[k] for k in KEYS}) for row in table.to_dict("records")}


def second_labels(mode: str, path: str | Path) -> dict[str, dict[str, str]] | None:
    """The second labels when ``mode`` uses them, else None (nothing is read)."""
    return None if check_mode(mode) == "first" else read_second_annotation(path)


def use_labels(lines: Sequence[Any], mode: str) -> list[Any]:
    """The fit lines as ``mode`` trains on them: ``first`` drops every second label, ``both``
    keeps them, ``drop_disagreements`` leaves out the lines that have one."""
    check_mode(mode)
    lines = list(lines)
    disagree = sum(line.second is not None for line in lines)
    if mode == "first":
        return [replace(line, second=None) if line.second is not None else line for line in lines]
    logger.info("[fieldreader] labels=%s: %d of %d fit lines have a second label that differs", mode, disagree,
                len(lines))
    return [line for line in lines if line.second is None] if mode == "drop_disagreements" else lines


def disagreements(first: Mapping[str, Mapping[str, str]], second: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """One row per form and field whose two labels differ (file_name, field, first, second)."""
    rows = [{"file_name": name, "field": k, "first": fields[k], "second": second[name][k]}
            for name, fields in first.items() if name in second for k in KEYS if fields[k] != second[name][k]]
    return pd.DataFrame(rows, columns=["file_name", "field", "first", "second"])


__all__ = ["LABEL_MODES", "check_mode", "disagreements", "read_second_annotation", "second_labels", "use_labels"]
