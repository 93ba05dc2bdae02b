"""Out-of-fold readings of the real train forms (not a test): K field readers, each fine-tuned on
the shared train crops outside one fold (the recipe of ``fieldreader_benchmark.py train``: 12
epochs, early stopping on held-out forms outside the fold), each reading its fold. Every train
form then has a reading from a reader that never saw it — the forms every choice is made on.

Usage (from the repository root; about 20 min a fold on 2 idle cores, resumable per fold)::

    .venv/bin/python benchmarks/fieldreader/crossfit_benchmark.py --folds 5 --out data/06_models/fieldreader_crossfit

Writes, after every fold (so a stopped run keeps what it measured; ``complete`` says whether all
folds are in): ``benchmarks/results/fieldreader_crossfit.{json,md}`` (per fold: forms, wall time,
epochs, stop reason, out-of-fold FLA / fields right of the plain reading — beam search, no lexicon,
no style layer) and ``benchmarks/results/fieldreader_oof_readings.csv`` (form, field, reading,
confidence, fold, label). The fold readers stay in ``--out`` (``fold_<k>/model``): a fold complete
there is loaded, not retrained.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import RESULTS, ROOT, SHARED, machine, write_results  # noqa: E402 (benchmarks/common.py)

NAME = "fieldreader_crossfit"


def _params(args: argparse.Namespace) -> dict:
    """The ``train_fieldreader`` block of conf/base with the benchmark's trainer settings."""
    import yaml

    block = yaml.safe_load((ROOT / "conf/base/parameters_train_fieldreader.yml").read_text())["train_fieldreader"]
    block["trainer"].update({"epochs": args.epochs, "max_minutes": args.max_minutes, "patience": args.patience,
                             "seed": args.seed, "progress_bar": args.only_fold is None})
    for key in ("accelerator", "precision"):  # the yml's (auto) unless given
        if getattr(args, key):
            block["trainer"][key] = getattr(args, key)
    block["crossfit"].update({"folds": args.folds, "seed": args.fold_seed, "model_dir": args.out})
    block["checkpoint_dir"] = None
    block["labels"] = args.labels
    block["line_height"] = args.line_height
    return block


def _summary(readings, folds: int) -> dict:
    """Out-of-fold FLA and share of fields right, in all and per fold."""
    from handwriting_pipeline.fieldreader.crossfit import fields_right

    def score(part) -> dict:
        right = fields_right(part)
        return {"forms": int(right.size), "FLA": round(100 * float((right == 4).mean()), 2),
                "fields_right_pct": round(100 * float(right.mean() / 4), 2)}

    per_fold = {int(k): score(part) for k, part in readings.groupby("fold")}
    return {"all": score(readings), "per_fold": per_fold, "complete": len(per_fold) == folds}


def _markdown(result: dict) -> str:
    lines = [f"# Field reader: out-of-fold readings of the train forms ({result['folds']} folds)", "",
             f"{result['date']}, {result['machine']['cpu_count']} CPU cores. Plain reading (beam search, no lexicon, "
             "no style layer) of each train form by the fold reader that never saw it. "
             + ("All folds are in." if result["oof"]["complete"] else "**Not all folds are in yet.**"), "",
             "| fold | forms read | fit forms | held out | FLA | fields right % | minutes | epochs | stop |",
             "|--:|--:|--:|--:|--:|--:|--:|--:|---|"]
    for row in result["fold_runs"]:
        score = result["oof"]["per_fold"].get(row["fold"], {})
        lines.append(f"| {row['fold']} | {row['read_forms']} | {row['fit_forms']} | {row['holdout_forms']} | "
                     f"{score.get('FLA', '–')} | {score.get('fields_right_pct', '–')} | "
                     f"{round((row['wall_s'] or 0) / 60, 1)} | {row['epochs']} | {row['stop_reason']} |")
    total = result["oof"]["all"]
    lines += ["", f"All folds read: {total['forms']} forms, FLA {total['FLA']}, fields right {total['fields_right_pct']} % "
              "(one form of 1,400 = 0.07 FLA point)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument("--out", default="data/06_models/fieldreader_crossfit", help="where the fold readers are kept")
    parser.add_argument("--train-dir", default=str(SHARED / "train"))
    parser.add_argument("--epochs", type=int, default=12)
    parser.add_argument("--max-minutes", type=float, default=40.0, help="wall-clock cap per fold")
    parser.add_argument("--seed", type=int, default=42, help="training seed")
    parser.add_argument("--fold-seed", type=int, default=0, help="fold assignment seed")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="only the first N train forms (a smoke run; 0 = all)")
    parser.add_argument("--labels", default="first", choices=["first", "drop_disagreements", "both"],
                        help="train_fieldreader.labels: what the fit lines train on (the second annotation)")
    parser.add_argument("--first", type=int, default=0, help="only the first N folds (0 = all)")
    parser.add_argument("--line-height", type=int, default=48, help="rows of each line the recognizer sees")
    parser.add_argument("--patience", type=int, default=4, help="EarlyStopping patience (validations)")
    parser.add_argument("--accelerator", default="", help="cpu / gpu (default: the yml's, auto)")
    parser.add_argument("--precision", default="", help="e.g. 32-true (default: the yml's, auto: bf16-mixed on a GPU)")
    parser.add_argument("--only-fold", type=int, default=None,
                        help="train (or find complete) this fold only and write no results: one process per fold "
                             "side by side; a run without it then loads the complete folds and writes the results")
    parser.add_argument("--collect", action="store_true",
                        help="train nothing: write the results of the folds complete in --out")
    parser.add_argument("--results", default=str(RESULTS / NAME), help="results path without suffix")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")

    import torch

    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.fieldreader import crossfit

    torch.set_num_threads(args.threads)
    forms, _ = read_donut_folder(Path(args.train_dir))
    if args.limit:
        forms = forms.subset(forms.labels["file_name"].tolist()[: args.limit])
    params = _params(args)
    started = time.time()
    if args.only_fold is not None:
        from handwriting_pipeline.config import FieldReaderTrainSettings

        _, _, row = crossfit.fit_fold(forms, FieldReaderTrainSettings.from_params(params), args.only_fold, args.out)
        print({**row, "wall_minutes_this_run": round((time.time() - started) / 60, 1)})
        return 0
    if args.collect:
        readings, folds = crossfit.collect_folds(args.out)
        _write(args, params, readings, folds, started)
        return 0
    for k in range(1, (args.first or args.folds) + 1):  # one fold more each pass: results written after every fold
        partial = crossfit.fit_folds(forms, params, first=k)
        _write(args, params, partial.readings, partial.folds, started)
    return 0


def _write(args: argparse.Namespace, params: dict, readings, folds, started: float) -> None:
    result = {"folds": args.folds, **machine(), "command": "python benchmarks/fieldreader/crossfit_benchmark.py "
              + " ".join(sys.argv[1:]), "train_dir": args.train_dir, "trainer": params["trainer"], "labels": args.labels,
              "fold_runs": folds.to_dict("records"), "oof": _summary(readings, args.folds),
              "wall_minutes_this_run": round((time.time() - started) / 60, 1)}
    out = Path(args.results)
    out.parent.mkdir(parents=True, exist_ok=True)
    readings.to_csv(out.with_name(out.name.replace("crossfit", "oof_readings") + ".csv"), index=False)
    write_results(out, result, _markdown(result))

if __name__ == "__main__":
    raise SystemExit(main())
