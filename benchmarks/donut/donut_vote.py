"""Offline vote with and without the text-line Donut (not a test; issue #14).

Reads the validation crops with the field reader, RapidOCR and a saved Donut, then votes
(:func:`handwriting_pipeline.ensemble.vote.vote`, the ``ensemble.vote`` parameters of conf/base:
RapidOCR calibrated on train forms; the field reader and Donut with the calibration saved in their
model folders, fitted on held-out train forms they never trained on; uncalibrated: ``weight x
confidence``) over {field reader, RapidOCR} and {field reader, RapidOCR, Donut}; writes
benchmarks/results/donut_text_lines_vote.{json,md}.

    .venv/bin/python benchmarks/donut/donut_vote.py --donut data/06_models/benchmark_lines_cpu \\
        --fieldreader ../main/data/06_models/benchmark_fieldreader
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import platform
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "hsf_top"


def read(engine, names, images, batch: int = 16) -> tuple:
    import pandas as pd

    started = time.perf_counter()
    rows = []
    for b in range(0, len(images), batch):
        results = engine.read_batch(images[b: b + batch], names[b: b + batch])
        rows += [r.to_record(n) for r, n in zip(results, names[b: b + batch])]
    return pd.DataFrame(rows), time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--donut", default=str(ROOT / "data" / "06_models" / "benchmark_lines_cpu"))
    parser.add_argument("--fieldreader", default=str(ROOT.parent / "main" / "data" / "06_models" /
                                                     "benchmark_fieldreader"))
    parser.add_argument("--val-dir", default=str(SHARED / "validation"))
    parser.add_argument("--limit", type=int, default=0)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--results", default=str(ROOT / "benchmarks" / "results" / "donut_text_lines_vote"))
    args = parser.parse_args()
    import torch
    import yaml

    torch.set_num_threads(args.threads)
    from handwriting_pipeline.datasets.forms import read_donut_folder
    from handwriting_pipeline.engines.donut import DonutEngine
    from handwriting_pipeline.engines.fieldreader import FieldReaderEngine
    from handwriting_pipeline.engines.rapidocr_engine import RapidOCREngine
    from handwriting_pipeline.ensemble.vote import vote
    from handwriting_pipeline.metrics import aggregate, score_forms

    forms, _ = read_donut_folder(args.val_dir, split="validation")
    names = forms.labels["file_name"].tolist()[: args.limit or None]
    labels = forms.labels[forms.labels["file_name"].isin(names)]
    images = [forms.images[n] for n in names]
    params = yaml.safe_load((ROOT / "conf/base/parameters_ensemble.yml").read_text())["ensemble"]["vote"]
    extract = yaml.safe_load((ROOT / "conf/base/parameters_extract.yml").read_text()).get("extract", {})
    tables, seconds = {}, {}
    engines = {
        "fieldreader": FieldReaderEngine.from_model(args.fieldreader, threads=args.threads),
        "rapidocr": RapidOCREngine(**{**dict(extract.get("rapidocr", {}) or {}), "threads": args.threads}),
        "donut": DonutEngine.from_model(args.donut, batch_size=16, device="cpu"),
    }
    for name, engine in engines.items():
        tables[name], seconds[name] = read(engine, names, images)
    # trained engines bring their own calibration (fitted on held-out train forms), as in the pipeline
    own = {name: engine.vote_calibration(model=engine.model_ref) for name, engine in engines.items()
           if hasattr(engine, "model_ref")}
    params = {**params, "calibration": {**params.get("calibration", {}), **{k: v for k, v in own.items() if v}}}

    def metrics(table):
        agg = aggregate(score_forms(labels, table))
        return {k: round(float(v), 2) for k, v in agg.items() if isinstance(v, (int, float))}

    result = {"date": dt.date.today().isoformat(), "machine": f"{os.cpu_count()}-core CPU, {platform.platform()}",
              "n": len(names), "donut": os.path.relpath(args.donut, ROOT),
              "fieldreader": os.path.relpath(args.fieldreader, ROOT),
              "calibration": {e: e in params.get("calibration", {}) for e in engines},
              "seconds": {k: round(v, 1) for k, v in seconds.items()}, "engines": {}, "votes": {}}
    for name, table in tables.items():
        result["engines"][name] = metrics(table)
    for combo in (("fieldreader", "rapidocr"), ("fieldreader", "rapidocr", "donut"), ("fieldreader", "donut")):
        voted, _ = vote({e: tables[e] for e in combo}, params)
        result["votes"][" + ".join(combo)] = metrics(voted)
    results = Path(args.results)
    results.with_suffix(".json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    md = [f"# Offline vote with the text-line Donut ({result['date']}, {result['machine'].split(',')[0]})", "",
          f"Validation forms: {len(names)}. Calibrated on train forms: "
          + ", ".join(f"{e} {'yes' if c else 'no (weight x confidence)'}" for e, c in result["calibration"].items())
          + " (RapidOCR: conf/base; field reader and Donut: their held-out train forms, saved with the model).", "",
          "| readings | FLA | CBA | CBA DATE | CBA CITY | CBA STATE | CBA ZIP |", "|---|---|---|---|---|---|---|"]
    for name, r in {**result["engines"], **{f"vote: {k}": v for k, v in result["votes"].items()}}.items():
        md.append(f"| {name} | {r['FLA']:.1f} | {r['CBA']:.1f} | {r['CBA_DATE']:.1f} | {r['CBA_CITY']:.1f} | "
                  f"{r['CBA_STATE']:.1f} | {r['CBA_ZIP']:.1f} |")
    results.with_suffix(".md").write_text("\n".join(md) + "\n", encoding="utf-8")
    print("\n".join(md))
    return 0


if __name__ == "__main__":
    sys.exit(main())
