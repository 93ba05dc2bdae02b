"""Score predictions made elsewhere against labelled forms, with the pipeline's metrics.

Usage::

    python -m handwriting_pipeline.score LABELS PREDICTIONS.csv [PREDICTIONS.csv ...] [--json]

``LABELS`` is a Donut / imagefolder ``metadata.jsonl`` (or the folder holding it), or a labels
CSV with ``file_name`` (or ``image_name``) and DATE, CITY, STATE, ZIP (``--split`` keeps one
split of a CSV with a ``split`` column, e.g. the curation pipeline's ``curated_labels``).
Each ``PREDICTIONS.csv`` has ``image_name`` or ``file_name`` plus DATE, CITY, STATE, ZIP; an
empty cell means the field was not found ("None"). Other columns (confidences) are ignored.

Prints one row per predictions file (method = file stem) with the columns of the pipeline's
``metrics.csv`` (cost and time blank), then for each file how many labelled forms had no
prediction (scored as all "None") and how many predictions name forms not in LABELS (ignored,
a few listed; ``--json`` lists them all). Malformed input -> a message naming the file and
the problem, exit code 2.

Floor 5. May import: floors 0-4 (``datasets``, ``metrics``, ``predictions``, ``recorded_csv``, ``fields``).
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from handwriting_pipeline.datasets.forms import METADATA, parse_metadata_line
from handwriting_pipeline.fields import KEYS
from handwriting_pipeline.metrics import (
    METRIC_COLUMNS,
    MatchReport,
    evaluate_method,
    metrics_markdown,
    metrics_row,
    metrics_table,
)
from handwriting_pipeline.predictions import predictions_from_records
from handwriting_pipeline.recorded_csv import (
    InputError,
    check_names,
    read_csv_table,
    read_predictions_csv,
    table_columns,
)

EXIT_BAD_INPUT = 2


# --------------------------------------------------------------------------- reading
def read_labels(path: str | Path, split: str | None = None) -> pd.DataFrame:
    """Labels (file_name + KEYS) from a metadata.jsonl, its folder, or a labels CSV.

    Raises:
        InputError: unreadable file, a bad metadata line, missing columns, duplicate names,
            or no forms at all.
    """
    path = Path(path)
    if path.is_dir():
        path = path / METADATA
    if not path.is_file():
        raise InputError(f"LABELS {path}: file not found (give a metadata.jsonl, its folder, or a labels CSV)")
    if path.suffix.lower() == ".csv":
        frame = read_csv_table(path, "LABELS")
        name_col, key_cols = table_columns(frame, path, "LABELS")
        if split is not None:
            if "split" not in frame.columns:
                raise InputError(f"LABELS {path}: --split given but the CSV has no 'split' column")
            frame = frame[frame["split"] == split].reset_index(drop=True)
        names = frame[name_col].astype(str).str.strip()
        check_names(names, path, "LABELS")
        labels = pd.DataFrame({"file_name": names, **{k: frame[key_cols[k]] for k in KEYS}})
    else:
        if split is not None:
            raise InputError(f"LABELS {path}: --split only applies to a labels CSV with a 'split' column")
        rows = []
        for number, line in enumerate(path.read_text(encoding="utf-8").splitlines(), start=1):
            if not line.strip():
                continue
            try:
                name, fields = parse_metadata_line(line)
            except ValueError as err:
                raise InputError(f"LABELS {path}:{number}: {err}") from None
            rows.append({"file_name": name, **fields})
        labels = pd.DataFrame(rows, columns=["file_name", *KEYS])
        check_names(labels["file_name"].astype(str), path, "LABELS")
    if labels.empty:
        raise InputError(f"LABELS {path}: no labelled forms" + (f" in split '{split}'" if split else ""))
    # same cleaning as the predictions ("" -> "None", spaces stripped)
    cleaned = predictions_from_records(labels.to_dict("records"))
    return cleaned[["file_name", *KEYS]]


# --------------------------------------------------------------------------- scoring
def score_tables(labels: pd.DataFrame, predictions: dict[str, pd.DataFrame], keys: tuple[str, ...] = KEYS
                 ) -> tuple[pd.DataFrame, dict[str, MatchReport]]:
    """Metrics table (cost and time blank) and match report for each method's predictions, over
    the form's ``keys`` (default: the HSF form's four)."""
    rows, reports = [], {}
    for method, table in predictions.items():
        per_form, reports[method] = evaluate_method(labels, table, keys)
        rows.append(metrics_row(method, per_form, keys=keys))
    return metrics_table(rows, keys), reports


def _unique_methods(paths: Sequence[Path]) -> list[str]:
    """File stems, made unique (``textract``, ``textract_2``) when two files share one."""
    seen: dict[str, int] = {}
    out = []
    for path in paths:
        stem = path.stem
        seen[stem] = seen.get(stem, 0) + 1
        out.append(stem if seen[stem] == 1 else f"{stem}_{seen[stem]}")
    return out


def _jsonable(value: object) -> object:
    if isinstance(value, float) and math.isnan(value):
        return None
    if hasattr(value, "item"):  # numpy scalar
        return value.item()
    return value


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m handwriting_pipeline.score",
        description="Score predictions CSVs against labelled forms with the evaluation pipeline's "
                    "metrics (FLA, CBA, CBA per key, coverage).",
    )
    parser.add_argument("labels", type=Path,
                        help="metadata.jsonl (Donut / imagefolder layout), its folder, or a labels CSV "
                             "(file_name or image_name + DATE, CITY, STATE, ZIP)")
    parser.add_argument("predictions", type=Path, nargs="+",
                        help="predictions CSV(s): image_name or file_name + DATE, CITY, STATE, ZIP "
                             "(empty cell = 'None'); method name = file stem")
    parser.add_argument("--json", action="store_true", help="print JSON (rows + every unmatched name) instead of a table")
    parser.add_argument("--split", default=None, help="with a labels CSV that has a 'split' column: score this split only")
    parser.add_argument("--csv", type=Path, default=None, help="also write the metrics table to this CSV")
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Command-line entry point; returns the exit code (0 ok, 2 bad input)."""
    args = build_parser().parse_args(argv)
    try:
        labels = read_labels(args.labels, split=args.split)
        methods = _unique_methods(args.predictions)
        predictions = {m: read_predictions_csv(p) for m, p in zip(methods, args.predictions)}
    except InputError as err:
        print(f"error: {err}", file=sys.stderr)
        return EXIT_BAD_INPUT
    table, reports = score_tables(labels, predictions)
    if args.csv is not None:
        args.csv.parent.mkdir(parents=True, exist_ok=True)
        table.to_csv(args.csv, index=False)

    if args.json:
        out = {"labels": str(args.labels), "n_labels": int(len(labels)), "methods": []}
        for (method, path), row in zip(zip(methods, args.predictions), table.to_dict("records")):
            report = reports[method]
            out["methods"].append({
                **{c: _jsonable(row[c]) for c in METRIC_COLUMNS},
                "predictions_file": str(path),
                "forms_with_prediction": report.matched,
                "forms_without_prediction": len(report.missing),
                "unknown_predictions": len(report.unknown),
                "forms_without_prediction_names": report.missing,
                "unknown_prediction_names": report.unknown,
            })
        print(json.dumps(out, indent=2))
        return 0

    print(f"{len(labels)} labelled forms in {args.labels}\n")
    print(metrics_markdown(table))
    print()
    for method, path in zip(methods, args.predictions):
        report = reports[method]
        print(f"{method} ({path}): {report.n_predictions} predictions, {report.matched} of "
              f"{report.n_labels} labelled forms matched")
        for line in report.summary():
            print(f"  {line}")
    if any(r.unknown or r.missing for r in reports.values()):
        print("\n(--json lists every unmatched name)")
    return 0


if __name__ == "__main__":
    try:
        sys.exit(main())
    except BrokenPipeError:  # output piped into `head` & co.
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        sys.exit(0)
