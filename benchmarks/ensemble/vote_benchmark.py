"""Vote benchmark (not a test): the offline vote of the field reader and
RapidOCR (+ a saved Donut when one is given), and the vote with the recorded Textract / Azure
outputs as separate rows — every choice made on held-out train forms, validation only reported.

Usage (from the repository root; ~15 min on a loaded 2-core CPU, RapidOCR cached after the first run)::

    .venv/bin/python benchmarks/ensemble/vote_benchmark.py --model data/06_models/benchmark_fieldreader

Selection (:mod:`handwriting_pipeline.selection`): the last ``--holdout`` (100) train forms —
the field reader's held-out forms, never trained on — fit every engine's vote calibration
(:func:`handwriting_pipeline.ensemble.calibrate.fit_calibration`)
and choose which offline vote is "the" offline vote. The 199 validation forms are then read and
reported (one form = 0.5 FLA point; the 95 % interval of a rate near 55 % is about ±7 points).

Writes benchmarks/results/fieldreader_votes.{json,md}: per engine and per vote FLA / CBA (per key),
coverage, FLA ignoring case, normalized metrics, each vote's gain over its best single reader,
speed, date and machine. (Earlier runs also chose and measured test-time views of the field reader;
that experiment is retired: docs/results/dead-ends.md.)
"""

from __future__ import annotations

import argparse
import datetime as dt
import logging
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "hsf_top"
RESULTS = ROOT / "benchmarks" / "results"
sys.path.insert(0, str(ROOT / "benchmarks"))
from common import write_results  # noqa: E402 (benchmarks/common.py)

DEFAULT_MODEL = ROOT / "data" / "06_models" / "benchmark_fieldreader"  # what fieldreader_benchmark.py train writes
OFFLINE = ("fieldreader", "rapidocr", "donut")
PAID = ("recorded_textract", "recorded_azure_form_recognizer")
# the votes reported (inputs present only); the old rows of fieldreader_votes.json first
VOTES = (
    ("rapidocr", "fieldreader"),
    ("rapidocr", "fieldreader", "recorded_textract", "recorded_azure_form_recognizer"),
    ("rapidocr", "fieldreader", "donut"),
    ("fieldreader", "donut"),
)


def parse_args() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--model", default=str(DEFAULT_MODEL if DEFAULT_MODEL.is_dir()
                                               else ROOT / "data" / "06_models" / "benchmark_fieldreader"))
    parser.add_argument("--donut", default=None, help="a saved Donut model folder (joins the offline votes)")
    parser.add_argument("--train-dir", default=str(SHARED / "train"))
    parser.add_argument("--val-dir", default=str(SHARED / "validation"))
    parser.add_argument("--holdout", type=int, default=100, help="last N train forms: choose and calibrate on them")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--limit", type=int, default=0, help="smoke runs: N validation forms")
    parser.add_argument("--cache", default=str(ROOT / "data" / "02_intermediate" / "vote_benchmark_cache"),
                        help="response cache of the engines' readings (keyed by engine, settings, model weights "
                             "and image)")
    parser.add_argument("--note", default="2-core CPU shared with other jobs (say which)")
    parser.add_argument("--results", default=str(RESULTS / "fieldreader_votes"))
    return parser.parse_args()


def read_with(engine, names: list[str], images, cache=None):
    """The engine's predictions table over ``names`` and its seconds per form (cached forms: 0)."""
    from handwriting_pipeline.engines.runner import run_engine

    engine.check_ready()
    started = time.perf_counter()
    table = run_engine(engine, engine.forms_to_read(names), images, cache=cache, workers=1)
    return table, (time.perf_counter() - started) / max(1, len(names))


def registry_engine(method: str, extract: dict, **inputs):
    from handwriting_pipeline.registry import engine_class

    cls = engine_class(method)
    return cls.from_params(method, extract.get(method), **inputs)


def scores(labels, table, method: str) -> tuple[dict, dict]:
    """(metrics row, normalized row) of one predictions table on the labelled forms."""
    from handwriting_pipeline.metrics import metrics_row, normalized_metrics_row, score_forms, score_forms_normalized

    def clean(row: dict) -> dict:
        return {k: (round(float(v), 2) if isinstance(v, float) else v) for k, v in row.items()}

    row = clean(metrics_row(method, score_forms(labels, table)))
    row.pop("cost_usd", None)
    row.pop("seconds_per_form", None)
    return row, clean(normalized_metrics_row(method, score_forms_normalized(labels, table)))


def vote_rows(tables: dict, calibration: dict, params: dict, choose_labels, report_labels) -> dict:
    """Every vote of :data:`VOTES` whose inputs are all present, on the held-out and the reported forms."""
    from handwriting_pipeline.ensemble.vote import vote

    out = {}
    vote_params = {**params, "calibration": calibration}
    for combo in VOTES:
        if not all(e in tables for e in combo):
            continue
        voted, _ = vote({e: tables[e] for e in combo}, vote_params)
        singles = {e: scores(report_labels, tables[e], e)[0]["FLA"] for e in combo}
        metrics, normalized = scores(report_labels, voted, "vote")
        out[";".join(combo)] = {
            "holdout": scores(choose_labels, voted, "vote")[0], "metrics": metrics, "normalized": normalized,
            "offline": not any(e in PAID for e in combo),
            "best_single": max(singles, key=singles.get),
            "gain_over_best_single_FLA": round(metrics["FLA"] - max(singles.values()), 2)}
    return out


def main() -> int:
    args = parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    import yaml

    from handwriting_pipeline.datasets.cache import ResponseCache
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.engines.fieldreader import FieldReaderEngine
    from handwriting_pipeline.fieldreader.model import FieldReader
    from handwriting_pipeline.selection import split_for_selection
    from handwriting_pipeline.training.calibration import fit_calibration

    started = dt.datetime.now(dt.timezone.utc)
    selection = split_for_selection(read_donut_folder(args.train_dir, split="train")[0],
                                     read_donut_folder(args.val_dir, split="validation")[0],
                                     args.holdout, limit_report=args.limit)
    choose_names = selection.choose.labels["file_name"].tolist()
    report_names = selection.report.labels["file_name"].tolist()
    names = choose_names + report_names
    images = {**{n: selection.choose.images[n] for n in choose_names},
              **{n: selection.report.images[n] for n in report_names}}
    extract = yaml.safe_load((ROOT / "conf/base/parameters_extract.yml").read_text())["extract"]
    params = yaml.safe_load((ROOT / "conf/base/parameters_ensemble.yml").read_text())["ensemble"]["vote"]
    cache = ResponseCache(args.cache)
    reader = FieldReader.load(args.model, threads=args.threads)
    holdout_n = int(reader.config.summary.get("holdout_forms", args.holdout))
    if holdout_n != args.holdout:
        logging.warning("the model held out %d train forms, this run chooses on the last %d", holdout_n, args.holdout)

    tables, seconds = {}, {}
    engines = {
        "fieldreader": FieldReaderEngine.from_model(args.model, threads=args.threads),
        "rapidocr": registry_engine("rapidocr", extract),
        **{m: registry_engine(m, extract) for m in PAID},
    }
    if args.donut:
        from handwriting_pipeline.engines.donut import DonutEngine

        engines["donut"] = DonutEngine.from_model(args.donut, batch_size=16, device="cpu")
    for method, engine in engines.items():
        tables[method], seconds[method] = read_with(engine, names, images, cache)

    # every engine's vote calibration, fitted on the held-out train forms only
    calibration = fit_calibration(selection.choose.labels, {
        e: t[t["file_name"].isin(choose_names)] for e, t in tables.items()})
    report = {e: t[t["file_name"].isin(report_names)] for e, t in tables.items()}
    choose = {e: t[t["file_name"].isin(choose_names)] for e, t in tables.items()}
    votes = vote_rows(tables, calibration, params, selection.choose.labels, selection.report.labels)
    offline = {k: v for k, v in votes.items() if v["offline"]}
    chosen_vote = max(offline, key=lambda k: (offline[k]["holdout"]["FLA"], offline[k]["holdout"]["CBA"]))

    result = {
        "benchmark": "vote_benchmark",
        "date": started.strftime("%Y-%m-%d %H:%M UTC"),
        "machine": {"platform": platform.platform(), "processor": platform.processor() or platform.machine(),
                    "cpu_count": os.cpu_count(), "threads": args.threads, "gpu": None, "note": args.note},
        "command": "python benchmarks/ensemble/vote_benchmark.py " + " ".join(sys.argv[1:]),
        "model": args.model, "model_training": reader.config.summary,
        "selection": {"holdout_train_forms": len(choose_names), "validation_forms": len(report_names),
                      "chosen_on_holdout": ["every engine's vote calibration",
                                            "the offline vote reported as 'the' offline vote"],
                      "vote_parameters": "conf/base/parameters_ensemble.yml ensemble.vote (validators, "
                                         "gazetteer: chosen on train forms), calibration replaced by the held-out fit"},
        "engines": {e: {"validation": scores(selection.report.labels, report[e], e)[0],
                        "normalized": scores(selection.report.labels, report[e], e)[1],
                        "holdout": scores(selection.choose.labels, choose[e], e)[0],
                        "seconds_per_form": round(seconds[e], 4)} for e in tables},
        "calibration": calibration,
        "votes": votes,
        "chosen_offline_vote": chosen_vote,
        "runs": {k: {"metrics": [*(scores(selection.report.labels, report[e], e)[0] for e in k.split(";")),
                                 v["metrics"]],
                     "normalized": [*(scores(selection.report.labels, report[e], e)[1] for e in k.split(";")),
                                    v["normalized"]]} for k, v in votes.items()},
    }
    write_results(args.results, result, markdown(result))
    return 0


def interval(n: int, rate: float = 0.55) -> float:
    """Half-width (points) of the 95 % normal interval of a rate measured on n forms."""
    return 196.0 * (rate * (1 - rate) / max(1, n)) ** 0.5


def markdown(result: dict) -> str:
    n = result["selection"]["validation_forms"]
    rows = ["| reading (validation) | FLA | CBA | CBA DATE | CBA CITY | CBA STATE | CBA ZIP | FLA ignoring case | "
            "held-out FLA | gain over best single |", "|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|"]

    def line(name: str, m: dict, norm: dict, held: dict, gain: str) -> str:
        return (f"| {name} | {m['FLA']:.2f} | {m['CBA']:.2f} | {m['CBA_DATE']:.2f} | {m['CBA_CITY']:.2f} | "
                f"{m['CBA_STATE']:.2f} | {m['CBA_ZIP']:.2f} | {norm['FLA_nocase']:.2f} | {held['FLA']:.1f} | {gain} |")

    for e, r in result["engines"].items():
        rows.append(line(e, r["validation"], r["normalized"], r["holdout"], ""))
    for k, v in result["votes"].items():
        name = "vote: " + " + ".join(k.split(";")) + (" **(chosen offline vote)**" if k == result["chosen_offline_vote"]
                                                       else "")
        rows.append(line(name, v["metrics"], v["normalized"], v["holdout"],
                         f"{v['gain_over_best_single_FLA']:+.2f} (vs {v['best_single']})"))
    speed = ", ".join(f"{e} {1 / r['seconds_per_form']:.1f}" for e, r in result["engines"].items()
                      if r["seconds_per_form"] > 0.001)
    return f"""# Vote benchmark ({result['date']}, {result['machine']['cpu_count']}-core CPU, no GPU)

`{result['command']}` — model `{result['model']}`. {result['machine']['note']}.
Chosen on the last {result['selection']['holdout_train_forms']} train forms (held out from training):
every engine's vote calibration and the offline vote to report
(**{result['chosen_offline_vote'].replace(';', ' + ')}**). Validation: {n} forms, only reported (one form =
{100 / max(1, n):.2f} FLA points; 95 % interval of a rate near 55 % about ±{interval(n):.0f} points).

{chr(10).join(rows)}

Forms/s as measured here (held-out + validation forms, cached readings excluded): {speed}.
"""


if __name__ == "__main__":
    sys.exit(main())
