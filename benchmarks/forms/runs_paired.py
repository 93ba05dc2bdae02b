"""Two evaluate runs of one form compared form by form (not a test): for each method, FLA and CBA
of the base run and the candidate run on the same labelled forms, and the paired 95 % bootstrap
interval of the difference (:func:`handwriting_pipeline.selection.paired_bootstrap`).

The runs are Kedro run versions (the folder names under ``<data>/07_model_output/predictions_<method>.parquet/``);
the labels are the curated test split the candidate run evaluated (the newest one written at or
before it). Used for the order card's "calibrated on
every field" change (docs/results/forms.md)::

    .venv/bin/python benchmarks/forms/runs_paired.py --form order_card --methods vote cascade \\
        --base 2026-12-04T12.42.52.005Z --candidate 2026-12-04T12.48.39.713Z --name card_calibration_all_fields

Writes ``benchmarks/results/runs_paired_<name>.{json,md}``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import RESULTS, ROOT, machine, write_results  # noqa: E402


def _scores(data: Path, method: str, run: str, labels, keys):
    import pandas as pd

    from handwriting_pipeline.metrics import score_forms

    path = data / "07_model_output" / f"predictions_{method}.parquet" / run / f"predictions_{method}.parquet"
    if not path.is_file():
        raise SystemExit(f"{path}: no predictions of '{method}' in run {run}; list the runs under {path.parent.parent}")
    return score_forms(labels, pd.read_parquet(path), keys).set_index("file_name")


def _test_split(data: Path, run: str) -> Path:
    """The curated test split the run evaluated: the newest version written at or before it (an
    ``evaluate`` run reads the split an earlier ``train`` run curated)."""
    versions = sorted(p.parent.parent.name for p in (data / "05_model_input" / "test").glob("*/test/metadata.jsonl")
                      if p.parent.parent.name <= run)
    if not versions:
        raise SystemExit(f"{data / '05_model_input' / 'test'}: no curated test split at or before run {run}")
    return data / "05_model_input" / "test" / versions[-1] / "test"


def compare(data: Path, form: str, methods: list[str], base: str, candidate: str) -> list[dict]:
    """One row per method: base and candidate FLA / CBA and the paired intervals."""
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.fields.formspec import load_form
    from handwriting_pipeline.selection import paired_bootstrap

    keys = load_form(form).keys
    forms, _ = read_donut_folder(_test_split(data, candidate))
    rows = []
    for method in methods:
        a, b = (_scores(data, method, run, forms.labels, keys) for run in (base, candidate))
        row = {"method": method, "forms": len(a)}
        for column, scale in (("exact", 100.0), ("CBA", 1.0)):
            diff = paired_bootstrap(b[column] * scale, a[column] * scale)
            row[column] = {"base": round(float(a[column].mean() * scale), 2),
                           "candidate": round(float(b[column].mean() * scale), 2),
                           "diff": round(diff.mean, 2), "low": round(diff.low, 2), "high": round(diff.high, 2)}
        rows.append(row)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--form", required=True)
    parser.add_argument("--data", help="the form's data folder (default data/forms/<form>)")
    parser.add_argument("--methods", nargs="+", default=["vote"])
    parser.add_argument("--base", required=True, help="the base run's version")
    parser.add_argument("--candidate", required=True, help="the candidate run's version")
    parser.add_argument("--name", required=True, help="results file: runs_paired_<name>")
    args = parser.parse_args()
    data = Path(args.data) if args.data else ROOT / "data" / "forms" / args.form
    rows = compare(data, args.form, args.methods, args.base, args.candidate)
    command = " ".join(["python", f"benchmarks/forms/{Path(sys.argv[0]).name}", *sys.argv[1:]])
    where = machine()
    lines = [f"# Two runs of form '{args.form}' compared form by form ({where['date']}, "
             f"{where['machine']['cpu_count']} CPUs)", "", f"`{command}`", "",
             f"Base run {args.base}, candidate run {args.candidate}; labels: the test split the candidate run read "
             f"({rows[0]['forms'] if rows else 0} forms). Difference candidate - base with its paired 95 % "
             "bootstrap interval over the forms.", "",
             "| method | FLA base | FLA candidate | FLA diff [interval] | CBA base | CBA candidate | CBA diff [interval] |",
             "|---|--:|--:|---|--:|--:|---|"]
    for r in rows:
        e, c = r["exact"], r["CBA"]
        lines.append(f"| {r['method']} | {e['base']} | {e['candidate']} | {e['diff']:+.2f} [{e['low']:+.2f}, {e['high']:+.2f}] "
                     f"| {c['base']} | {c['candidate']} | {c['diff']:+.2f} [{c['low']:+.2f}, {c['high']:+.2f}] |")
    write_results(RESULTS / f"runs_paired_{args.name}",
                  {**where, "command": command, "form": args.form, "base": args.base,
                   "candidate": args.candidate, "rows": rows}, "\n".join(lines) + "\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
