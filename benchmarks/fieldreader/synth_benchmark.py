"""Real-glyph synthetic lines benchmark (not a test; issue #20, lever 4): fine-tune the trained field
reader further with and without synthetic lines and score both on held-out train forms and validation.

Usage (from the repository root; each ``train`` arm is one process with one torch thread, so the
two arms can run side by side)::

    .venv/bin/python benchmarks/fieldreader/synth_benchmark.py train --arm A    # real lines only
    .venv/bin/python benchmarks/fieldreader/synth_benchmark.py train --arm B    # real + synthetic lines
    # a second pair at a lower learning rate
    .venv/bin/python benchmarks/fieldreader/synth_benchmark.py train --arm A --lr 5e-5 --tag _lr5e-05
    .venv/bin/python benchmarks/fieldreader/synth_benchmark.py train --arm B --lr 5e-5 --tag _lr5e-05
    .venv/bin/python benchmarks/fieldreader/synth_benchmark.py score --tags "" _lr5e-05 --note "..."

Both arms start from a copy of the trained reader (``--base``, never written) and run the same
number of optimizer steps: arm A ``--epochs`` epochs over the fit forms' real lines; arm B the real
lines plus ``--per-line`` synthetic lines per real line for ``epochs / (1 + per_line)`` epochs (with
the defaults: A 3 epochs over N real lines, B 2 epochs over N real + N/2 synthetic lines — 3N lines
each). The glyph bank is cut from the fit forms only (the first 1,300 train forms); the last 100
train forms are held out (early stopping inside each arm, and the choice of the default), validation
(199 forms) is only reported. Arms are saved to data/06_models/synth_armA and synth_armB with the
base model's lexicon and calibration (all three read with the same decoding settings).

``score`` reads the held-out train forms and validation with the base model and each pair of arms
(beam search + the lexicon saved with the model, as the engine reads; each model's scores are
cached in data/07_model_output/synth_scores/ until its model changes, ``--models`` fills that cache
for some models only) and writes benchmarks/results/fieldreader_synth.{json,md}. Synthetic lines
are on by default only if arm B reads the held-out train forms better than arm A in every pair.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import RESULTS, SHARED, load_split, machine, write_results  # noqa: E402 (benchmarks/common.py)
from fieldreader_eval import readings_to_rows, score  # noqa: E402
from style_benchmark import style_errors  # noqa: E402

BASE = ROOT / "data" / "06_models" / "benchmark_fieldreader"  # what fieldreader_benchmark.py train writes
MODELS = ROOT / "data" / "06_models"
CACHE = ROOT / "data" / "07_model_output" / "synth_scores"


def arm_dir(arm: str) -> Path:
    """``A``, ``B``, or with a tag (``A_lr5e-05``): where an arm's model is saved."""
    return MODELS / f"synth_arm{arm}"


def split(train: list, holdout: int) -> tuple[list, list]:
    return train[: len(train) - holdout], train[len(train) - holdout:]


def train(args: argparse.Namespace) -> int:
    import torch

    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.training import prepare_lines, train_reader

    torch.set_num_threads(args.threads)
    reader = FieldReader.load(args.base, with_torch=True)
    reader.net.freeze_before(args.freeze)
    train_forms, _ = load_split(Path(args.train_dir))
    n_hold = int(reader.config.summary.get("holdout_forms", 100)) or 100
    fit, hold = split(train_forms, n_hold)
    started = time.time()
    real, held = prepare_lines(fit, reader.config.lines), prepare_lines(hold, reader.config.lines)
    lines, epochs, synth_info = list(real), args.epochs, {}
    if args.arm == "B":
        from handwriting_pipeline.config import SyntheticLinesSettings
        from handwriting_pipeline.fieldreader.synthlines import synthetic_lines

        settings = SyntheticLinesSettings(per_line=args.per_line, seed=args.seed)
        t0 = time.time()
        synth = synthetic_lines(reader, real, settings)
        synth_info = {"synthetic_lines": len(synth), "generation_minutes": round((time.time() - t0) / 60, 2),
                      "settings": settings.to_dict()}
        lines += synth
        epochs = max(1, round(args.epochs / (1 + args.per_line)))
    trainer = {"epochs": epochs, "batch_size": 16, "learning_rate": args.lr, "weight_decay": 0.01, "warmup_ratio": 0.05,
               "augment": 1.0, "max_minutes": args.max_minutes, "patience": 3, "min_delta": 0.0,
               "gradient_clip_val": 1.0, "seed": args.seed, "progress_bar": False}
    history, reason = train_reader(reader, lines, held, trainer, checkpoint_dir=MODELS / f"synth_arm{args.arm}{args.tag}_ckpt")
    summary = {"arm": args.arm, "base": str(args.base), "real_lines": len(real), "train_lines": len(lines),
               "epochs": len(history), "stop_reason": reason, "minutes": round((time.time() - started) / 60, 1),
               "trainer": trainer, "freeze": args.freeze, "threads": args.threads, **synth_info, **machine()}
    reader.config.summary = {**reader.config.summary, "holdout_forms": n_hold, "synth_benchmark": summary}
    reader.save(arm_dir(args.arm + args.tag))
    (arm_dir(args.arm + args.tag) / "synth_history.json").write_text(json.dumps({**summary, "history": history}, indent=2))
    print(json.dumps(summary, indent=2))
    return 0


def read_scores(model: Path, forms: list, labels, threads: int) -> dict:
    from handwriting_pipeline.fieldreader.lexicon import Lexicon
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.predict import read_lines
    from handwriting_pipeline.forms.lines import cut_lines

    reader = FieldReader.load(model, threads=threads)
    lexicon = Lexicon.from_json(reader.config.lexicon) if reader.config.lexicon else None
    cut = [cut_lines(image, reader.config.lines) for _, image, _ in forms]
    readings = read_lines(reader, cut, rerank=lexicon.rerank if lexicon else None)
    names = [n for n, _, _ in forms]
    result = score(labels[labels.file_name.isin(names)], readings_to_rows(names, readings))
    result["style_errors"] = style_errors(result)
    return result


def score_arms(args: argparse.Namespace) -> int:
    train_forms, train_labelled = load_split(Path(args.train_dir))
    val, val_labelled = load_split(Path(args.val_dir))
    models = {"base": ("base (trained reader, unchanged)", Path(args.base))}
    for tag in args.tags:
        lr = f" (lr {tag.split('_lr', 1)[1]})" if "_lr" in tag else ""
        models[f"A{tag}"] = (f"A{tag}: real lines only{lr}", arm_dir(f"A{tag}"))
        models[f"B{tag}"] = (f"B{tag}: real + synthetic lines{lr}", arm_dir(f"B{tag}"))
    keys = args.models or list(models)
    n_hold = int(json.loads((Path(args.base) / "fieldreader.json").read_text())["summary"].get("holdout_forms", 100))
    _, hold = split(train_forms, n_hold)
    results = {**machine(), "base": str(args.base), "holdout_forms": len(hold), "n": len(val), "rows": {}}
    if args.note:
        results["machine"]["note"] = args.note
    for key in keys:
        name, folder = models[key]
        if not (folder / "fieldreader.json").is_file():
            raise SystemExit(f"{folder} holds no model: run `synth_benchmark.py train --arm {key}` first")
        config = json.loads((folder / "fieldreader.json").read_text())
        # readings of one saved model are scored once (a later `score` of the other models reuses them)
        cache = CACHE / f"{key}.json"
        stamp = (folder / "model.onnx").stat().st_mtime
        cached = json.loads(cache.read_text()) if cache.is_file() else {}
        if cached.get("stamp") != stamp:
            cached = {"stamp": stamp, "holdout": read_scores(folder, hold, train_labelled.labels, args.threads),
                      "validation": read_scores(folder, val, val_labelled.labels, args.threads)}
            CACHE.mkdir(parents=True, exist_ok=True)
            cache.write_text(json.dumps(cached))
        held, valid = cached["holdout"], cached["validation"]
        results["rows"][name] = {"holdout": held, "validation": valid,
                                 "training": config.get("summary", {}).get("synth_benchmark", {})}
        print(f"{name:34s} held-out FLA {held['FLA']:6.2f} | validation FLA {valid['FLA']:6.2f} CBA {valid['CBA']:6.2f}"
              f" nocase {valid['FLA_ignoring_case']:6.2f} style errors {valid['style_errors']}")
    if set(keys) != set(models):
        return 0  # a partial run only fills the cache
    pairs = {tag: (results["rows"][models[f"A{tag}"][0]]["holdout"]["FLA"],
                   results["rows"][models[f"B{tag}"][0]]["holdout"]["FLA"]) for tag in args.tags}
    helps = all(b > a for a, b in pairs.values())
    results["decision"] = (f"synthetic lines {'on' if helps else 'off'} by default: held-out train FLA with vs without "
                           + "; ".join(f"{b:.2f} vs {a:.2f}{(' (' + tag.lstrip('_') + ')') if tag else ''}"
                                       for tag, (a, b) in pairs.items()))
    write_results(RESULTS / "fieldreader_synth", results, markdown(results))
    print(results["decision"])
    return 0


def markdown(results: dict) -> str:
    rows = ["| model | held-out train FLA | held-out CBA | held-out style errors | validation FLA | validation CBA | "
            "validation FLA ignoring case | validation case/dots/spacing-only errors | training lines | epochs | minutes |",
            "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]
    for name, r in results["rows"].items():
        h, v, t = r["holdout"], r["validation"], r["training"]
        rows.append(f"| {name} | {h['FLA']:.2f} | {h['CBA']:.2f} | {h['style_errors']} | {v['FLA']:.2f} | {v['CBA']:.2f} | "
                    f"{v['FLA_ignoring_case']:.2f} | {v['style_errors']} | {t.get('train_lines', '-')} | "
                    f"{t.get('epochs', '-')} | {t.get('minutes', '-')} |")
    host = results["machine"]
    note = f" Note: {host['note']}" if host.get("note") else ""
    return f"""# Field reader: real-glyph synthetic lines (issue #20, lever 4)

{results['date']}, {host['cpu_count']} CPUs, {host['platform']}.

Base: `{results['base']}`. Arms fine-tuned from it for the same number of optimizer steps; the glyph
bank comes from the fit forms only. Held-out train forms ({results['holdout_forms']}) decide the default;
validation ({results['n']} forms, one form = {100 / results['n']:.2f} FLA points, 95 % interval about ±7) only
reported. Decoding: beam search + the base model's lexicon (as the engine reads).{note}

{chr(10).join(rows)}

Decision: {results['decision']}.
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--base", default=str(BASE))
    parser.add_argument("--train-dir", default=str(SHARED / "train"))
    parser.add_argument("--val-dir", default=str(SHARED / "validation"))
    parser.add_argument("--threads", type=int, default=1)
    sub = parser.add_subparsers(dest="command", required=True)
    t = sub.add_parser("train")
    t.add_argument("--arm", choices=("A", "B"), required=True)
    t.add_argument("--epochs", type=int, default=3, help="epochs of arm A (arm B: the same number of steps)")
    t.add_argument("--per-line", type=float, default=0.5, help="arm B: synthetic lines per real line")
    t.add_argument("--lr", type=float, default=2e-4)
    t.add_argument("--freeze", type=float, default=0.4)
    t.add_argument("--seed", type=int, default=42)
    t.add_argument("--max-minutes", type=float, default=60)
    t.add_argument("--tag", default="", help="suffix of the arm's folder (a second pair of arms, e.g. _lr5e-05)")
    s = sub.add_parser("score")
    s.add_argument("--note", default="", help="e.g. what else ran on the machine")
    s.add_argument("--tags", nargs="+", default=[""], help="arm pairs to score (train --tag), e.g. '' _lr5e-05")
    s.add_argument("--models", nargs="+", default=None,
                   help="score only these (base, A, B, A_lr5e-05 ...); the results files are written when all are scored")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    return train(args) if args.command == "train" else score_arms(args)


if __name__ == "__main__":
    sys.exit(main())
