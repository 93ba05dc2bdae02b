"""Field reader benchmark (not a test): fine-tune the PP-OCRv6 recognizer on the real shared
train crops, report validation FLA / CBA per decoding variant, error kinds, training wall time
and inference speed.

Usage (from the repository root)::

    .venv/bin/python benchmarks/fieldreader/fieldreader_benchmark.py train --max-minutes 45
    .venv/bin/python benchmarks/fieldreader/fieldreader_benchmark.py evaluate

``train`` holds out ``--holdout`` train forms for early stopping (the validation split is only
reported on), saves the model to data/06_models/benchmark_fieldreader/ (usable by the evaluate
pipeline: ``--params=train.fieldreader_dir=data/06_models/benchmark_fieldreader``) and writes
benchmarks/results/fieldreader_train.json. ``evaluate`` reads the validation crops with the saved
model and writes benchmarks/results/fieldreader_benchmark.{json,md}.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import RESULTS, ROOT, SHARED, load_split, machine  # noqa: E402 (benchmarks/common.py)

# the lexicon settings tried on the held-out train forms (as conf/base/parameters_train_fieldreader.yml)
TUNING = {"lexicon": {"grid": {"penalty": [1.0, 2.0, 3.0, 4.0, 6.0, 8.0, 12.0], "case_weight": [0.0, 0.5]}, "max_edits": 2}}


def train(args: argparse.Namespace) -> int:
    import torch

    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.training import prepare_lines, train_reader
    from handwriting_pipeline.fieldreader.tuning import add_lexicon_and_calibration

    torch.set_num_threads(args.threads)
    forms, labelled = load_split(Path(args.train_dir), args.limit_train)
    reader = FieldReader.stock()
    trainable = reader.net.freeze_before(args.freeze)
    holdout = forms[-args.holdout:] if args.holdout else []
    train_forms = forms[: len(forms) - len(holdout)]
    started = time.time()
    train_lines = prepare_lines(train_forms, reader.config.lines)
    held_lines = prepare_lines(holdout, reader.config.lines)
    settings = {"epochs": args.epochs, "batch_size": args.batch_size, "learning_rate": args.lr,
                "weight_decay": 0.01, "warmup_ratio": 0.05, "augment": args.augment, "max_minutes": args.max_minutes,
                "patience": args.patience, "min_delta": 0.0, "gradient_clip_val": 1.0, "seed": args.seed,
                "progress_bar": True}
    history, reason = train_reader(reader, train_lines, held_lines, settings,
                                   checkpoint_dir=Path(f"{args.out}_ckpt"),
                                   resume=args.resume)
    minutes = (time.time() - started) / 60
    reader.config.summary = {"train_forms": len(train_forms), "holdout_forms": len(holdout), "epochs": len(history),
                             "stop_reason": reason, "minutes": round(minutes, 1), "trainable_parameters": trainable,
                             "settings": settings, "freeze": args.freeze, **machine()}
    if args.note:
        reader.config.summary["machine"]["note"] = args.note
    tuning_started = time.time()
    add_lexicon_and_calibration(reader, labelled, {"fit": [n for n, _, _ in train_forms],
                                                   "holdout": [n for n, _, _ in holdout]}, TUNING)
    reader.config.summary["lexicon_and_calibration_minutes"] = round((time.time() - tuning_started) / 60, 1)
    reader.save(args.out)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / args.results).write_text(json.dumps({**reader.config.summary, "history": history}, indent=2))
    print(json.dumps(reader.config.summary, indent=2))
    return 0


def lexicon_and_calibration(args: argparse.Namespace) -> int:
    """Lexicon + calibration for an already trained model folder (what ``train`` does at its end)."""
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.tuning import add_lexicon_and_calibration

    reader = FieldReader.load(args.model, with_torch=True)
    forms, labelled = load_split(Path(args.train_dir))
    n = int(reader.config.summary.get("holdout_forms", 100))
    names = [f for f, _, _ in forms]
    add_lexicon_and_calibration(reader, labelled, {"fit": names[: len(names) - n],
                                                   "holdout": names[len(names) - n:]}, TUNING)
    reader.save(args.model)
    print(json.dumps({"lexicon": {k: v for k, v in reader.config.lexicon.items() if k != "cities"},
                      "calibration": reader.config.calibration}, indent=2))
    return 0


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--train-dir", default=str(SHARED / "train"))
    t.add_argument("--holdout", type=int, default=100, help="train forms held out for early stopping")
    t.add_argument("--limit-train", type=int, default=0)
    t.add_argument("--epochs", type=int, default=15)
    t.add_argument("--batch-size", type=int, default=16)
    t.add_argument("--lr", type=float, default=5e-4)
    t.add_argument("--augment", type=float, default=1.0)
    t.add_argument("--freeze", type=float, default=0.4, help="share of the graph (from the input) kept frozen")
    t.add_argument("--patience", type=int, default=4)
    t.add_argument("--max-minutes", type=float, default=45.0)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--threads", type=int, default=2)
    t.add_argument("--resume", action="store_true")
    t.add_argument("--out", default=str(ROOT / "data" / "06_models" / "benchmark_fieldreader"))
    t.add_argument("--results", default="fieldreader_train.json", help="results file name (benchmarks/results/)")
    t.add_argument("--note", default="", help="e.g. what else ran on the machine")
    k = sub.add_parser("lexicon-and-calibration", aliases=["knowledge"])
    k.add_argument("--model", default=str(ROOT / "data" / "06_models" / "benchmark_fieldreader"))
    k.add_argument("--train-dir", default=str(SHARED / "train"))
    e = sub.add_parser("evaluate")
    e.add_argument("--model", default=str(ROOT / "data" / "06_models" / "benchmark_fieldreader"))
    e.add_argument("--val-dir", default=str(SHARED / "validation"))
    e.add_argument("--train-dir", default=str(SHARED / "train"))
    e.add_argument("--threads", type=int, default=2)
    e.add_argument("--limit", type=int, default=0)
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    sys.path.insert(0, str(ROOT / "src"))
    if args.command == "train":
        return train(args)
    if args.command in ("lexicon-and-calibration", "knowledge"):
        return lexicon_and_calibration(args)
    from fieldreader_eval import evaluate  # benchmarks/fieldreader/fieldreader_eval.py (beside this script)

    return evaluate(args)


if __name__ == "__main__":
    sys.exit(main())
