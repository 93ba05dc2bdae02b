"""The review-and-retrain loop, simulated (issue #23): do reviewed forms teach the reader?

The validation split plays "new scans": half A (the first ``--a-forms``) is read by the offline
vote (field reader + RapidOCR, as in ``review_benchmark.py``), a simulated reviewer (the labels)
fixes every field below the review threshold and leaves the others as the machine read them -
so A's labels carry the errors the reviewer never saw, as in real use. A copy of the trained field
reader is then fine-tuned briefly on a sample of its own train forms plus the reviewed A forms,
and, as a control, on the same train sample alone (same steps, same seed): the difference
between the two on half B (never reviewed, never trained on) is what the reviewed forms taught.
Early stopping watches the 100 held-out train forms (never validation). Writes
``benchmarks/results/review_loop.json`` (date, machine).

    .venv/bin/python benchmarks/review/review_loop.py --fieldreader data/06_models/benchmark_fieldreader --epochs 1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import shutil
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd

sys.path.insert(0, str(Path(__file__).resolve().parent))
from review_benchmark import RESULTS, ROOT, load, machine, read, rewrite_report, vote_params  # noqa: E402
from review_benchmark import engines as all_engines  # noqa: E402


def reviewed_labels(labels: pd.DataFrame, voted: pd.DataFrame, threshold: float) -> tuple[pd.DataFrame, dict[str, int]]:
    """A's labels after the simulated review: gold below the threshold, the machine's value above."""
    from handwriting_pipeline.fields import KEYS

    machine_rows = voted.set_index("file_name")
    out, counts = [], {"fields_reviewed": 0, "machine_errors_left": 0}
    for row in labels.to_dict("records"):
        read_row = machine_rows.loc[row["file_name"]]
        new = {"file_name": row["file_name"]}
        for key in KEYS:
            if float(read_row[f"{key}_conf"]) < threshold:
                new[key] = row[key]
                counts["fields_reviewed"] += 1
            else:
                new[key] = read_row[key]
                counts["machine_errors_left"] += int(read_row[key] != row[key])
        out.append(new)
    return pd.DataFrame(out), counts


def fine_tune(model: str, forms: list[tuple[str, Any, dict[str, str]]], held: list, out: Path, args) -> dict[str, Any]:
    import torch

    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.fieldreader.training import prepare_lines, train_reader

    torch.set_num_threads(args.threads)
    reader = FieldReader.load(model, with_torch=True)
    reader.net.freeze_before(args.freeze)
    started = time.time()
    settings = {"epochs": args.epochs, "batch_size": 16, "learning_rate": args.lr, "weight_decay": 0.01,
                "warmup_ratio": 0.05, "augment": True, "max_minutes": args.max_minutes, "patience": 3,
                "min_delta": 0.0, "gradient_clip_val": 1.0, "seed": 0, "progress_bar": False}
    history, reason = train_reader(reader, prepare_lines(forms, reader.config.lines),
                                   prepare_lines(held, reader.config.lines), settings)
    if out.exists():
        shutil.rmtree(out)
    reader.save(out)
    return {"minutes": round((time.time() - started) / 60, 1), "stop_reason": reason, "history": history,
            "lines": 2 * len(forms)}


def evaluate(folder: str, labels: pd.DataFrame, images: Any, rapid: pd.DataFrame, threshold: float, args) -> dict:
    from handwriting_pipeline.engines.fieldreader import FieldReaderEngine
    from handwriting_pipeline.ensemble.vote import vote
    from handwriting_pipeline.metrics import aggregate, score_forms
    from handwriting_pipeline.review.curve import field_table, review_curve, share_to_reach

    engine = FieldReaderEngine.from_model(folder, threads=args.threads)
    table = read({"fieldreader": engine}, labels, images, 1)["fieldreader"]
    voted = vote({"fieldreader": table, "rapidocr": rapid}, vote_params({"fieldreader": engine}))[0]
    fields = field_table(labels, voted)
    return {"fieldreader": aggregate(score_forms(labels, table)), "vote": aggregate(score_forms(labels, voted)),
            "vote_curve": review_curve(fields, (0, 5, 10, 15, 20, 30)).to_dict("records"),
            "vote_to_reach": share_to_reach(fields)}


def markdown(result: dict[str, Any]) -> str:
    """The loop's table on the B forms (written beside the results JSON as ``.md``)."""
    names = {"original": "the trained field reader",
             "with_reviewed_A": f"fine-tuned on {result['train_sample']} train forms + reviewed A",
             "control_train_only": f"control: fine-tuned on the {result['train_sample']} train forms alone"}
    review = result["simulated_review"]
    lines = [f"# Review loop, simulated ({result['date']}, {result['machine'].get('cpu_count')} CPUs)", "",
             f"`{result['command']}`. {result['note']}.", "",
             f"Validation split in two: A = the first {result['a_forms']} forms as new scans, B = the other "
             f"{result['b_forms']} (never reviewed or trained on). The vote read A; the simulated reviewer (the labels) "
             f"fixed the {review['fields_reviewed']} fields below {result['review_threshold']} "
             f"({review['machine_errors_left']} wrong fields left as read). Settings: {result['settings']}.", "",
             "| on B | field reader FLA | CBA | vote FLA | vote FLA after 15 % reviewed | fields to review for FLA 95 |",
             "|---|--:|--:|--:|--:|--:|"]
    for name, item in result["B"].items():
        curve = {row["review_pct"]: row for row in item["vote_curve"]}
        lines.append(f"| {names.get(name, name)} | {item['fieldreader']['FLA']:.1f} | {item['fieldreader']['CBA']:.1f} | "
                     f"{item['vote']['FLA']:.1f} | {curve[15]['FLA']:.1f} | {item['vote_to_reach']['FLA_95']:.1f} % |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fieldreader", help="the trained field reader folder (required unless --report)")
    parser.add_argument("--a-forms", type=int, default=100)
    parser.add_argument("--train-sample", type=int, default=300, help="own train forms mixed in (from the fit part)")
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--max-minutes", type=float, default=12)
    parser.add_argument("--lr", type=float, default=1e-4)
    parser.add_argument("--freeze", type=float, default=0.4)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--out", default=str(RESULTS / "review_loop.json"))
    parser.add_argument("--report", action="store_true", help="only rewrite the .md from the --out JSON")
    args = parser.parse_args()
    if args.report:
        return rewrite_report(args.out, markdown)
    if not args.fieldreader:
        parser.error("--fieldreader is required")
    from handwriting_pipeline.ensemble.vote import vote

    started = time.time()
    val_labels, val_images = load("validation")
    a, b = val_labels.head(args.a_forms).reset_index(drop=True), val_labels.iloc[args.a_forms:].reset_index(drop=True)
    train_labels, train_images = load("train")
    held = train_labels.tail(100)
    fit_part = train_labels.iloc[: len(train_labels) - 100]
    sample = fit_part.sample(n=min(args.train_sample, len(fit_part)), random_state=0)
    engines = all_engines(argparse.Namespace(fieldreader=args.fieldreader, threads=args.threads))
    tables_a = read(engines, a, val_images, 1)
    voted_a = vote(tables_a, vote_params(engines))[0]
    a_reviewed, counts = reviewed_labels(a, voted_a, args.threshold)
    rapid_b = read({"rapidocr": engines["rapidocr"]}, b, val_images, 1)["rapidocr"]

    def triples(labels, images):
        return [(r["file_name"], images[r["file_name"]], {k: r[k] for k in ("DATE", "CITY", "STATE", "ZIP")})
                for r in labels.to_dict("records")]

    held_forms = triples(held, train_images)
    base = triples(sample, train_images)
    models = ROOT / "data" / "06_models"
    result: dict[str, Any] = {
        **machine(), "measured_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "note": "2-core CPU shared with other developers' jobs; one seed, one short fine-tune each: a small effect "
                "is inside the noise (one B form = 1 FLA point)",
        "command": " ".join(["python benchmarks/review/review_loop.py", *sys.argv[1:]]), "fieldreader": args.fieldreader,
        "a_forms": len(a), "b_forms": len(b), "review_threshold": args.threshold, "simulated_review": counts,
        "train_sample": len(sample), "settings": {"epochs": args.epochs, "lr": args.lr, "freeze": args.freeze,
                                                  "max_minutes": args.max_minutes},
        "B": {"original": evaluate(args.fieldreader, b, val_images, rapid_b, args.threshold, args)},
    }
    for name, forms in (("with_reviewed_A", base + triples(a_reviewed, val_images)), ("control_train_only", base)):
        folder = models / f"review_loop_{name}"
        result[f"training_{name}"] = fine_tune(args.fieldreader, forms, held_forms, folder, args)
        result["B"][name] = evaluate(str(folder), b, val_images, rapid_b, args.threshold, args)
        Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    result["minutes"] = round((time.time() - started) / 60, 1)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    Path(args.out).with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    for name, item in result["B"].items():
        print(f"B {name}: field reader FLA {item['fieldreader']['FLA']:.1f} CBA {item['fieldreader']['CBA']:.1f}; "
              f"vote FLA {item['vote']['FLA']:.1f}; FLA 95 after {item['vote_to_reach']['FLA_95']} % reviewed")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
