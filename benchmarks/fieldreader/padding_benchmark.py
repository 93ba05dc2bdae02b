"""Padding benchmark (not a test; issue #20): does a line's reading depend on the lines read with it?

The recognizer mixes information across a line's whole width, so the white padding that fills a
batch up to its widest line changes what it reads. Before this benchmark the reader sorted the lines
by width and padded each batch of 16 to its widest line: the same model read the validation split at
56.8 FLA in batches of 16 forms and 58.3 in batches of 64. Now every line is padded to a multiple of
``FieldReader.pad_multiple`` columns and batched only with lines of the same padded width, so its
reading is the same whatever else is read. This script measures each multiple (and the old batch
padding, emulated, as ``batch of 16 (before)``) on the held-out train forms, which choose the
default (best FLA; ties: CBA, then the smaller multiple), and on validation (reported only), with
the model's own decoding (lexicon and style layer when saved).

Usage (from the repository root)::

    .venv/bin/python benchmarks/fieldreader/padding_benchmark.py --model data/06_models/fieldreader_style

Writes benchmarks/results/fieldreader_padding.{json,md}.
"""

from __future__ import annotations

import argparse
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import RESULTS, SHARED, load_split, machine, write_results  # noqa: E402 (benchmarks/common.py)
from fieldreader_eval import score  # noqa: E402
from style_benchmark import style_errors  # noqa: E402

BEFORE = "batch of 16 (before)"


def batch_padded(reader, arrays):
    """The reader's log-probabilities as read before: width-sorted, each batch padded to its widest line."""
    import numpy as np

    from handwriting_pipeline.forms.lines import batch_arrays

    order = sorted(range(len(arrays)), key=lambda i: arrays[i].shape[2])
    result = [np.empty(0)] * len(arrays)
    for start in range(0, len(order), reader.batch_size):
        chunk = order[start:start + reader.batch_size]
        batch, frames = batch_arrays([arrays[i] for i in chunk])
        lp = reader._forward(batch)
        for j, i in enumerate(chunk):
            result[i] = lp[j, : frames[j]]
    return result


def rows(names, readings) -> list[dict]:
    return [{"file_name": n, **r.fields, **{f"{k}_conf": v for k, v in r.confidence.items()}}
            for n, r in zip(names, readings)]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(ROOT / "data" / "06_models" / "fieldreader_style"))
    parser.add_argument("--train-dir", default=str(SHARED / "train"))
    parser.add_argument("--val-dir", default=str(SHARED / "validation"))
    parser.add_argument("--multiples", default="8,32,64,128,256", help="padding multiples tried (columns)")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--note", default="", help="e.g. what else ran on the machine")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)

    from handwriting_pipeline.fieldreader.lexicon import Lexicon
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.predict import read_lines
    from handwriting_pipeline.fieldreader.style import StyleReranker
    from handwriting_pipeline.forms.lines import cut_lines

    reader = FieldReader.load(args.model, threads=args.threads)
    train, train_forms = load_split(Path(args.train_dir))
    val, val_forms = load_split(Path(args.val_dir))
    n_hold = int(reader.config.summary.get("holdout_forms", 100)) or 100
    hold = train[len(train) - n_hold:]
    lexicon = Lexicon.from_json(reader.config.lexicon) if reader.config.lexicon else None
    rerank = (StyleReranker(reader.config.lines, reader.style, lexicon) if reader.style is not None
              else lexicon.rerank if lexicon else None)
    hold_lines = [cut_lines(image, reader.config.lines) for _, image, _ in hold]
    val_lines = [cut_lines(image, reader.config.lines) for _, image, _ in val]
    hold_names, val_names = [n for n, _, _ in hold], [n for n, _, _ in val]
    results = {**machine(), "model": str(args.model), "holdout_forms": len(hold), "n": len(val),
               "decoding": "style layer" if reader.style is not None else "lexicon" if lexicon else "beam", "rows": {}}
    if args.note:
        results["machine"]["note"] = args.note
    original = FieldReader.log_probs
    read_lines(reader, hold_lines[:4], rerank=rerank)  # warm up (ONNX Runtime session) before timing
    modes = [BEFORE, *(int(m) for m in args.multiples.split(","))]
    for mode in modes:
        if mode == BEFORE:
            FieldReader.log_probs = batch_padded
        else:
            FieldReader.log_probs, reader.pad_multiple = original, mode
        started = time.time()
        hold_read = read_lines(reader, hold_lines, rerank=rerank)
        seconds = time.time() - started
        val_read = read_lines(reader, val_lines, rerank=rerank)
        res = score(val_forms.labels[val_forms.labels.file_name.isin(val_names)], rows(val_names, val_read))
        held = score(train_forms.labels[train_forms.labels.file_name.isin(hold_names)], rows(hold_names, hold_read))
        name = mode if mode == BEFORE else f"multiple of {mode} columns"
        results["rows"][name] = {**res, "style_errors": style_errors(res), "pad_multiple": mode,
                                 "holdout_FLA": held["FLA"], "holdout_CBA": held["CBA"],
                                 "holdout_forms_per_s": round(len(hold) / seconds, 2)}
        print(f"{name:28s} holdout {results['rows'][name]['holdout_FLA']:6.2f} FLA {res['FLA']:6.2f} "
              f"CBA {res['CBA']:6.2f} {results['rows'][name]['holdout_forms_per_s']} forms/s", flush=True)
    FieldReader.log_probs = original
    # the best held-out FLA, then CBA; then the least padding (speeds on a shared machine are noisy)
    chosen = max((r for r in results["rows"].values() if r["pad_multiple"] != BEFORE),
                 key=lambda r: (r["holdout_FLA"], r["holdout_CBA"], -r["pad_multiple"]))
    results["chosen_pad_multiple"] = chosen["pad_multiple"]
    write_results(RESULTS / "fieldreader_padding", results, markdown(results))
    return 0


def markdown(results: dict) -> str:
    table = ["| padding | held-out train FLA / CBA | FLA | CBA | FLA ignoring case | case/dots/spacing-only errors "
             "| forms/s (decoding incl.) |",
             "|---|--:|--:|--:|--:|--:|--:|"]
    for name, r in results["rows"].items():
        table.append(f"| {name} | {r['holdout_FLA']:.2f} / {r['holdout_CBA']:.2f} | {r['FLA']:.2f} | {r['CBA']:.2f} | "
                     f"{r['FLA_ignoring_case']:.2f} | {r['style_errors']} | {r['holdout_forms_per_s']} |")
    host = results["machine"]
    note = f" Note: {host['note']}" if host.get("note") else ""
    return f"""# Field reader padding ({results['date']}, {host['cpu_count']} CPUs, {host['platform']})

Model: `{results['model']}` ({results['decoding']} decoding). Each line padded to a multiple of N columns and
batched only with lines of equal padded width (its reading no longer depends on the other lines), vs the
old width-sorted batches of 16 padded to their widest line. Chosen on the {results['holdout_forms']} held-out
train forms (FLA, then CBA, then the smaller multiple): **{results['chosen_pad_multiple']}**. Validation
({results['n']} forms; one form = {100 / results['n']:.2f} FLA points, 95 % interval about ±7) only reported.{note}

{chr(10).join(table)}
"""


if __name__ == "__main__":
    sys.exit(main())
