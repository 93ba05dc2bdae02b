"""Cleaner labels or taller lines, measured on out-of-fold forms (not a test): fold readers trained
with the second annotation in mind (``train_fieldreader.labels``: ``drop_disagreements`` or
``both``) or on taller lines (``train_fieldreader.line_height``) against those trained as
configured (final labels, 48-row lines), on the same folds' forms, which neither saw.

Each fold present (complete) in both crossfit folders is read twice by each reader: plain beam
search, and with the lexicon setting the ensemble chose on the out-of-fold forms (per fold the
lexicon of the labels its reader trained on). The gain is the paired difference per form (1 when
all four fields are right), with its 95 % bootstrap interval over forms.

Usage (after ``crossfit_benchmark.py --labels both --first 1 --out <dir>``)::

    .venv/bin/python benchmarks/fieldreader/labels_benchmark.py --candidate data/06_models/fieldreader_crossfit_both

Writes ``benchmarks/results/fieldreader_labels.{json,md}``.

When the fold readers are gone but the crossfit benchmark's readings are kept, ``--readings
BASELINE.csv CANDIDATE.csv [CANDIDATE.csv ...]`` (its ``fieldreader_oof_readings*.csv``; the
candidate's folds may come from several runs) measures the plain row from them, on the forms both
read; the lexicon row needs the readers and is left out::

    .venv/bin/python benchmarks/fieldreader/labels_benchmark.py --readings \
        benchmarks/results/fieldreader_oof_readings.csv benchmarks/results/fieldreader_oof_readings_64.csv \
        --line-height 64 --results benchmarks/results/fieldreader_labels_64
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
import pandas as pd  # noqa: E402
from common import RESULTS, ROOT, SHARED, machine, write_results  # noqa: E402

NAME = "fieldreader_labels"


def _complete(folder: Path) -> dict[int, Path]:
    from handwriting_pipeline.fieldreader.crossfit import is_complete

    return {int(p.name.split("_")[1]): p for p in folder.glob("fold_*") if is_complete(p)}


def _markdown(result: dict) -> str:
    height = result.get("line_height", 48)
    candidate = f"`labels: {result['labels']}`" + (f", `line_height: {height}`" if height != 48 else "")
    title = "Taller lines" if height != 48 else "Cleaner labels"
    lines = [f"# {title} on out-of-fold forms ({result['date']})", "",
             f"`{result['command']}` — {result['machine']['cpu_count']} CPU cores. Fold(s) {result['folds']}: "
             f"{result['forms']} train forms neither reader saw (one form = {100 / max(result['forms'], 1):.2g} FLA "
             f"points). Baseline: `labels: first`, 48-row lines; candidate: {candidate}.", "",
             "| decoding | FLA first | FLA candidate | gain [95 % paired interval] |", "|---|--:|--:|---|"]
    for row in result["rows"]:
        lines.append(f"| {row['decoding']} | {row['FLA_first']} | {row['FLA_candidate']} | {row['gain']:+.2f} "
                     f"[{row['low']:+.2f}, {row['high']:+.2f}] |")
    if result.get("note"):
        lines += ["", f"Measured {result['note']}."]
    return "\n".join(lines) + "\n"


def _recorded_rows(base_csv: Path, *cand_csvs: Path) -> tuple[list[int], pd.Series, pd.Series]:
    """Per form, 1 when all its fields read right, from recorded out-of-fold readings files: the
    baseline's, and the candidate's (several files: their folds together, each form once)."""
    candidate = pd.concat([pd.read_csv(p, dtype=str, keep_default_na=False) for p in cand_csvs], ignore_index=True)
    if candidate.duplicated(["file_name", "field"]).any():
        raise SystemExit(f"the candidate readings {[str(p) for p in cand_csvs]} read some forms twice")
    frames = [pd.read_csv(base_csv, dtype=str, keep_default_na=False), candidate]
    right = [f.assign(ok=f["reading"] == f["gold"]).groupby("file_name")["ok"].all().astype(float) for f in frames]
    forms = right[0].index.intersection(right[1].index)
    folds = sorted({int(k) for k in frames[1].loc[frames[1]["file_name"].isin(forms), "fold"]})
    return folds, right[0].loc[forms], right[1].loc[forms]


def _row(decoding: str, first: pd.Series, candidate: pd.Series) -> dict:
    from handwriting_pipeline.selection import paired_bootstrap

    gain = paired_bootstrap(candidate, first)
    return {"decoding": decoding, "FLA_first": round(100 * first.mean(), 2),
            "FLA_candidate": round(100 * candidate.mean(), 2),
            "gain": round(100 * gain.mean, 2), "low": round(100 * gain.low, 2), "high": round(100 * gain.high, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--baseline", default="data/06_models/fieldreader_crossfit", help="crossfit folder, labels first")
    parser.add_argument("--candidate", help="crossfit folder trained with other labels or line height")
    parser.add_argument("--readings", nargs="+", type=Path, metavar="CSV",
                        help="recorded out-of-fold readings instead of the readers (plain row only): the baseline's "
                             "file, then the candidate's (one or more files of disjoint folds)")
    parser.add_argument("--labels", default="first", help="with --readings: the candidate's labels setting")
    parser.add_argument("--line-height", type=int, default=48, help="with --readings: the candidate's line height")
    parser.add_argument("--ensemble", default="data/06_models/fieldreader_ensemble",
                        help="the ensemble whose lexicon choice is used")
    parser.add_argument("--results", default=str(RESULTS / NAME), help="results path without suffix")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    command = "python benchmarks/fieldreader/labels_benchmark.py " + " ".join(sys.argv[1:])
    if args.readings:
        if len(args.readings) < 2:
            parser.error("--readings needs the baseline's file and at least one of the candidate's")
        folds, first, candidate = _recorded_rows(*args.readings)
        result = {**machine(), "command": command, "folds": folds, "forms": len(first), "labels": args.labels,
                  "line_height": args.line_height, "rows": [_row("plain", first, candidate)],
                  "note": "from recorded readings; the lexicon row needs the fold readers"}
        write_results(args.results, result, _markdown(result))
        return 0
    if not args.candidate:
        parser.error("give --candidate (a crossfit folder) or --readings (two recorded readings files)")
    import yaml

    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.fieldreader.crossfit import MODEL_DIR, PLAN_FILE
    from handwriting_pipeline.fieldreader.lexicon import Lexicon
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.oof import all_right, read_folds
    from handwriting_pipeline.forms.lines import cut_lines

    base, cand = _complete(Path(args.baseline)), _complete(Path(args.candidate))
    folds = sorted(set(base) & set(cand))
    if not folds:
        parser.error("no fold complete in both folders")
    plans = {k: json.loads((cand[k] / PLAN_FILE).read_text()) for k in folds}
    labels = sorted({p["training"].get("labels", "first") for p in plans.values()})
    [height] = {int(p["training"].get("line_height", 48)) for p in plans.values()}
    train, _ = read_donut_folder(SHARED / "train")
    block = yaml.safe_load((ROOT / "conf/base/parameters_train_fieldreader.yml").read_text())["train_fieldreader"]
    beam = int(block["crossfit"]["beam"])
    chosen = next(c for c in json.loads((Path(args.ensemble) / "fieldreader.json").read_text())["summary"]["oof"]["choices"]
                  if c["component"] == "lexicon")
    read = {k: plans[k]["read"] for k in folds}
    rows = []
    scores = {}
    for name, dirs in (("first", base), ("candidate", cand)):
        readers = {k: FieldReader.load(dirs[k] / MODEL_DIR) for k in folds}
        lines = {k: [cut_lines(train.images[n], readers[k].config.lines) for n in read[k]] for k in folds}
        lexicons = {k: Lexicon.from_labels([train.fields(n) for n in plans[k]["fit"] + plans[k]["holdout"]],
                                           max_edits=int(block["lexicon"]["max_edits"]), **chosen["setting"])
                    for k in folds}
        scores[(name, "plain")] = all_right(read_folds(readers, lines, read, beam), train)
        scores[(name, "lexicon")] = all_right(read_folds(readers, lines, read, beam, lexicons), train)
    for decoding in ("plain", "lexicon"):
        rows.append(_row(decoding if decoding == "plain" else f"lexicon {chosen['setting']}",
                         scores[("first", decoding)], scores[("candidate", decoding)]))
    result = {**machine(), "command": command,
              "folds": folds, "forms": sum(len(v) for v in read.values()), "labels": ", ".join(labels),
              "line_height": height, "rows": rows}
    write_results(args.results, result, _markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
