"""Folds one after another or side by side (not a test): the wall time of training and reading two
crossfit folds in this process with every core (``crossfit.jobs: 1``), against the same two folds
each in a process of its own with its share of the cores (``crossfit.jobs: 2``,
:func:`~handwriting_pipeline.fieldreader.crossfit.train_side_by_side`). Run in the order one after
another / side by side / one after another again, so a machine that slows down shows.

Usage (from the repository root, on an otherwise idle machine; ~6 min on 2 cores)::

    .venv/bin/python benchmarks/fieldreader/jobs_benchmark.py --forms 300 --epochs 2

Writes ``benchmarks/results/fieldreader_jobs.{json,md}``.
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import RESULTS, ROOT, SHARED, machine, write_results  # noqa: E402

NAME = "fieldreader_jobs"


def _settings(epochs: int, jobs: int):
    import yaml

    from handwriting_pipeline.config import FieldReaderTrainSettings

    block = yaml.safe_load((ROOT / "conf/base/parameters_train_fieldreader.yml").read_text())["train_fieldreader"]
    block["trainer"].update({"epochs": epochs, "max_minutes": None, "progress_bar": False, "accelerator": "cpu"})
    block["crossfit"].update({"folds": 5, "seed": 0, "jobs": jobs})
    block["checkpoint_dir"] = None
    return FieldReaderTrainSettings.from_params(block)


def _one_after_another(forms, epochs: int, folds: list[int], folder: Path) -> float:
    import torch

    from handwriting_pipeline.fieldreader.crossfit import fit_fold

    torch.set_num_threads(os.cpu_count() or 1)
    started = time.time()
    for fold in folds:
        fit_fold(forms, _settings(epochs, 1), fold, folder)
    return time.time() - started


def _side_by_side(forms, epochs: int, folds: list[int], folder: Path) -> float:
    from handwriting_pipeline.fieldreader.crossfit import train_side_by_side

    started = time.time()
    train_side_by_side(forms, _settings(epochs, len(folds)), folds, folder)
    return time.time() - started


def _markdown(result: dict) -> str:
    lines = [f"# Crossfit folds one after another or side by side ({result['date']})", "",
             f"`{result['command']}` — {result['machine']['cpu_count']} CPU cores. Folds {result['folds']} of the "
             f"first {result['forms']} train forms (5 folds), {result['epochs']} epoch(s) each, trained and read; "
             "wall seconds for both folds.", "",
             "| run | crossfit.jobs | threads per fold | wall s |", "|---|--:|--:|--:|"]
    for row in result["runs"]:
        lines.append(f"| {row['run']} | {row['jobs']} | {row['threads']} | {row['wall_s']} |")
    lines += ["", f"Side by side takes {result['ratio']:.2f} of the time one after another takes (the mean of the two "
              "one-after-another runs)."]
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--forms", type=int, default=300, help="the first N train forms")
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--results", default=str(RESULTS / NAME), help="results path without suffix")
    args = parser.parse_args()
    sys.path.insert(0, str(ROOT / "src"))
    from handwriting_pipeline.datasets.forms import read_donut_folder

    forms, _ = read_donut_folder(SHARED / "train")
    forms = forms.subset(forms.labels["file_name"].tolist()[: args.forms])
    folds, cores = [0, 1], os.cpu_count() or 1
    runs = []
    for run, how in (("one after another", _one_after_another), ("side by side", _side_by_side),
                     ("one after another, again", _one_after_another)):
        folder = Path(tempfile.mkdtemp(prefix="jobs_benchmark_"))
        try:
            wall = how(forms, args.epochs, folds, folder)
        finally:
            shutil.rmtree(folder, ignore_errors=True)
        side = how is _side_by_side
        runs.append({"run": run, "jobs": len(folds) if side else 1, "threads": max(1, cores // len(folds)) if side else cores,
                     "wall_s": round(wall, 1)})
        print(runs[-1], flush=True)
    sequential = (runs[0]["wall_s"] + runs[2]["wall_s"]) / 2
    result = {**machine(), "command": "python benchmarks/fieldreader/jobs_benchmark.py " + " ".join(sys.argv[1:]),
              "forms": args.forms, "epochs": args.epochs, "folds": folds, "runs": runs,
              "ratio": round(runs[1]["wall_s"] / sequential, 3), "settings": _settings(args.epochs, 1).to_dict()}
    write_results(args.results, result, _markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
