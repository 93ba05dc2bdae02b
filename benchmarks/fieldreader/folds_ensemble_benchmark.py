"""The fold readers of ``crossfit_benchmark.py`` reading the validation crops (not a test): each
fold reader alone, and the first k of them together (their CTC posteriors averaged per frame,
:class:`~handwriting_pipeline.fieldreader.ensemble.EnsembleReader`), plain beam search (no
lexicon, no style layer, as their out-of-fold readings). Readers trained on different forms err
differently; this measures how much reading together gains.

Usage (from the repository root, after some folds are in)::

    .venv/bin/python benchmarks/fieldreader/folds_ensemble_benchmark.py --folds data/06_models/fieldreader_crossfit

Writes ``benchmarks/results/fieldreader_folds_ensemble.{json,md}``: validation FLA, share of
fields right and CBA per reader and per ensemble size (one form = 0.5 FLA point; 95 % interval
about ±7 points), and the paired bootstrap interval of the largest ensemble against the mean
single reader's per-form score (forms resampled).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import RESULTS, ROOT, SHARED, machine, write_results  # noqa: E402

NAME = "fieldreader_folds_ensemble"


def _scores(readings) -> dict:
    """FLA, fields right and CBA of one readings table (crossfit.read_fold's columns)."""
    from handwriting_pipeline.fieldreader.crossfit import fields_right
    from handwriting_pipeline.metrics import cba

    right = fields_right(readings)
    gold = readings.pivot(index="file_name", columns="field", values="gold").to_dict("index")
    read = readings.pivot(index="file_name", columns="field", values="reading").to_dict("index")
    per_form = [cba(gold[n], read[n]) for n in gold]
    return {"forms": int(right.size), "FLA": round(100 * float((right == 4).mean()), 2),
            "fields_right_pct": round(100 * float(right.mean() / 4), 2),
            "CBA": round(sum(per_form) / max(len(per_form), 1), 2)}


def _markdown(result: dict) -> str:
    lines = [f"# Fold readers reading the validation crops together ({result['date']})", "",
             f"`{result['command']}`", "",
             f"{result['forms']} forms of `{result['data']}` (one form = {100 / max(result['forms'], 1):.2g} FLA "
             "points). "
             "Plain beam search (no lexicon, no style layer). Each fold reader was fine-tuned on the train "
             "forms outside its fold (`fieldreader_crossfit.md`).", "",
             "| readers | FLA | fields right % | CBA | seconds |", "|---|--:|--:|--:|--:|"]
    for row in result["rows"]:
        lines.append(f"| {row['readers']} | {row['FLA']} | {row['fields_right_pct']} | {row['CBA']} | {row['seconds']} |")
    gain = result.get("gain")
    if gain:
        lines += ["", f"Largest ensemble minus the mean single reader, fields right per form: {gain['mean']:+.3f} "
                  f"[{gain['low']:+.3f}, {gain['high']:+.3f}] (95 % paired bootstrap over forms, "
                  f"{gain['resamples']} resamples)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", default="data/06_models/fieldreader_crossfit", help="crossfit model folder")
    parser.add_argument("--data", default=str(SHARED / "validation"))
    parser.add_argument("--beam", type=int, default=8)
    parser.add_argument("--limit", type=int, default=0, help="only the first N forms (a smoke run)")
    parser.add_argument("--results", default=str(RESULTS / NAME), help="results path without suffix")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))

    import pandas as pd

    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.fieldreader.crossfit import fields_right, load_fold_readers, read_fold
    from handwriting_pipeline.fieldreader.ensemble import EnsembleReader
    from handwriting_pipeline.selection import paired_bootstrap

    forms, _ = read_donut_folder(Path(args.data))
    names = forms.labels["file_name"].tolist()[: args.limit or None]
    readers = load_fold_readers(args.folds)
    if not readers:
        parser.error(f"no complete fold reader under {args.folds}: run crossfit_benchmark.py first")
    rows, singles, tables = [], [], {}
    groups = [(f"fold {i}", [r]) for i, r in enumerate(readers)]
    groups += [(f"folds 0-{k - 1} together", readers[:k]) for k in range(2, len(readers) + 1)]
    for label, members in groups:
        started = time.time()
        reader = members[0] if len(members) == 1 else EnsembleReader(members)
        table = read_fold(reader, forms, names, fold=-1, beam=args.beam)
        rows.append({"readers": label, "members": len(members), **_scores(table),
                     "seconds": round(time.time() - started, 1)})
        tables[label] = table
        if len(members) == 1:
            singles.append(fields_right(table))
        print(rows[-1])
    result = {**machine(), "command": "python benchmarks/fieldreader/folds_ensemble_benchmark.py "
              + " ".join(sys.argv[1:]), "folds_dir": args.folds, "data": args.data, "forms": len(names),
              "beam": args.beam, "rows": rows}
    if len(readers) > 1:
        mean_single = pd.concat(singles, axis=1).mean(axis=1)
        interval = paired_bootstrap(fields_right(tables[groups[-1][0]]), mean_single)
        result["gain"] = {"mean": interval.mean, "low": interval.low, "high": interval.high,
                          "resamples": interval.resamples}
    write_results(args.results, result, _markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
