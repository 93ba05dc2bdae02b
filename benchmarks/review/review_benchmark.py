"""The review curve of the offline vote, and the gazetteer-contradiction penalty (issue #23).

Reads the shared validation forms and the 100 held-out train forms (the last 100 of the train
split, which the field reader never trained on) with the offline engines (RapidOCR, and the field
reader when ``--fieldreader`` names a trained model), through the extract runner and its response
cache (a rerun reads nothing again). Then, with the ``ensemble.vote`` parameters of conf/base and
each trained engine's own calibration (as evaluate and digitize use them):

1. the vote without the contradiction penalty ("before") on both splits;
2. the penalty factors (``ensemble.vote.contradiction``) chosen on the held-out TRAIN forms only:
   the grid point with the largest mean FLA over the review curve (k = 0 … 30 % of fields reviewed);
3. the vote with them ("after");
4. a per-field logistic recalibration of the vote's confidence from richer features (engines
   agreeing, gazetteer confirming / contradicting, validators, the best engine's probability;
   :mod:`handwriting_pipeline.ensemble.recalibrate`), fitted on the same held-out train forms
   ("recalibrated"). Validation is only reported.

For each: the review curve (FLA/CBA after fixing the k % least-confident fields), the share of
fields to review for FLA 90 / 95 / 99, and what the 0.6 threshold sends to review. Writes
``benchmarks/results/review_curve.json`` (date, machine) and ``review_curve.md`` (its tables; ``--report``
rewrites them from the JSON).

    .venv/bin/python benchmarks/review/review_benchmark.py --fieldreader data/06_models/benchmark_fieldreader
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import sys
import time
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import machine, rewrite_report  # noqa: E402 (benchmarks/common.py)

ROOT = Path(__file__).resolve().parents[2]
SHARED = ROOT.parent / "shared" / "data" / "hsf_top"
RESULTS = ROOT / "benchmarks" / "results"
# a contradicted field must never pass as sure: every factor keeps a confidence of 1 below the
# review threshold 0.6 (issue #23), the fit picks among them
GRID = (0.55, 0.45, 0.35, 0.25, 0.15, 0.1, 0.05)


def load(split: str, last: int = 0):
    from handwriting_pipeline.datasets.forms import read_donut_folder

    forms, _ = read_donut_folder(SHARED / split, split=split)
    labels = forms.labels.tail(last) if last else forms.labels
    return labels.reset_index(drop=True), forms.images


def engines(args: argparse.Namespace) -> dict[str, Any]:
    from handwriting_pipeline.engines.rapidocr_engine import RapidOCREngine

    extract = yaml.safe_load((ROOT / "conf/base/parameters_extract.yml").read_text())["extract"]
    out = {"rapidocr": RapidOCREngine(**{**dict(extract.get("rapidocr") or {}), "threads": args.threads})}
    if args.fieldreader:
        from handwriting_pipeline.engines.fieldreader import FieldReaderEngine

        settings = {k: v for k, v in dict(extract.get("fieldreader") or {}).items() if k not in ("workers",)}
        out["fieldreader"] = FieldReaderEngine.from_model(args.fieldreader, **{**settings, "threads": args.threads})
    return out


def read(engs: dict[str, Any], labels: pd.DataFrame, images: Any, workers: int) -> dict[str, pd.DataFrame]:
    from handwriting_pipeline.datasets.cache import ResponseCache
    from handwriting_pipeline.engines.runner import run_engine

    cache = ResponseCache(ROOT / "data" / "02_intermediate" / "extract_cache")
    names = labels["file_name"].tolist()
    return {m: run_engine(e, names, images, cache=cache, workers=workers) for m, e in engs.items()}


def vote_params(engs: dict[str, Any]) -> dict[str, Any]:
    params = yaml.safe_load((ROOT / "conf/base/parameters_ensemble.yml").read_text())["ensemble"]["vote"]
    own = {m: e.vote_calibration(model=e.model_ref) for m, e in engs.items() if hasattr(e, "model_ref")}
    params["calibration"] = {**params.get("calibration", {}), **{m: c for m, c in own.items() if c}}
    return params


def summary(labels: pd.DataFrame, table: pd.DataFrame, threshold: float) -> dict[str, Any]:
    from handwriting_pipeline.review.curve import field_table, review_curve, share_to_reach, threshold_review

    fields = field_table(labels, table)
    curve = review_curve(fields)
    return {"curve": curve.to_dict("records"), "mean_FLA_0_30": round(float(curve["FLA"].mean()), 3),
            "to_reach": share_to_reach(fields), "threshold": threshold_review(fields, threshold)}


def penalised(table: pd.DataFrame, factors: dict[str, float]) -> pd.DataFrame:
    """The vote's table with the contradiction factors applied (what ``vote_form`` does)."""
    from handwriting_pipeline.fields import CONTRADICTION_FIELDS, gazetteer_contradiction

    out = table.copy()
    for i, row in out.iterrows():
        kind = gazetteer_contradiction({k: row[k] for k in ("CITY", "STATE", "ZIP")})
        for key in CONTRADICTION_FIELDS.get(kind, ()):
            out.at[i, f"{key}_conf"] = row[f"{key}_conf"] * factors[kind]
    return out


def fit(labels: pd.DataFrame, table: pd.DataFrame) -> tuple[dict[str, float], list[dict[str, Any]]]:
    """The grid point with the largest mean FLA over k = 0 … 30 on these (train) forms; ties: the
    milder penalty."""
    from handwriting_pipeline.review.curve import field_table, review_curve

    kinds = ("unknown_zip", "state", "city")
    tried = []
    for combo in itertools.product(GRID, repeat=3):
        factors = dict(zip(kinds, combo))
        curve = review_curve(field_table(labels, penalised(table, factors)))
        tried.append({**factors, "mean_FLA_0_30": float(curve["FLA"].mean()),
                      "FLA_15": float(curve.set_index("review_pct").loc[15, "FLA"])})
    best = max(tried, key=lambda t: (round(t["mean_FLA_0_30"], 6), sum(t[k] for k in kinds)))
    return {k: best[k] for k in kinds}, sorted(tried, key=lambda t: -t["mean_FLA_0_30"])[:10]


def markdown(result: dict[str, Any]) -> str:
    """The review curves of a results JSON as markdown tables (written beside it as ``.md``)."""
    threshold = result["review_threshold"]
    names = {"vote_before": "the vote's posterior share", "vote_after": "+ contradiction penalty",
             "vote_recalibrated": "+ feature recalibration"}
    lines = [f"# Review curve ({result['date']}, {result['machine'].get('cpu_count')} CPUs)", "",
             f"`{result['command']}`. {result['note']}.", "",
             f"Engines {', '.join(result['engines'])}; FLA after a person fixes the k % least confident fields, "
             f"the share of fields to review to reach FLA 90 / 95 / 99, and what the {threshold} threshold sends. "
             f"Penalty and recalibration chosen on the {result['penalty_chosen_on']}."]
    for split, entry in result["splits"].items():
        lines += ["", f"## {split} ({entry['forms']} forms)", ""]
        head = " | ".join(f"{k} %" for k in (0, 5, 10, 15, 20, 30))
        lines += [f"| vote | {head} | FLA 90 | FLA 95 | FLA 99 | at {threshold}: sent / caught |", "|---|" + "--:|" * 10]
        for name in ("vote_before", "vote_after", "vote_recalibrated"):
            item = entry[name]
            curve = {row["review_pct"]: row for row in item["curve"]}
            cells = [f"{curve[k]['FLA']:.1f}" for k in (0, 5, 10, 15, 20, 30)]
            reach = [f"{item['to_reach'][t]}" for t in ("FLA_90", "FLA_95", "FLA_99")]
            th = item["threshold"]
            lines.append(f"| {names[name]} | " + " | ".join(cells + reach) +
                         f" | {th['fields_to_review']} ({th['review_pct']} %) / {th['errors_caught']} of {th['errors']} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fieldreader", default=None, help="a trained field reader folder")
    parser.add_argument("--holdout", type=int, default=100, help="last N train forms: where the penalty is chosen")
    parser.add_argument("--threads", type=int, default=1)
    parser.add_argument("--workers", type=int, default=1)
    parser.add_argument("--threshold", type=float, default=0.6)
    parser.add_argument("--read-only", action="store_true", help="only read (fill the cache)")
    parser.add_argument("--note", default="")
    parser.add_argument("--out", default=str(RESULTS / "review_curve.json"))
    parser.add_argument("--report", action="store_true", help="only rewrite the .md from the --out JSON")
    args = parser.parse_args()
    if args.report:
        return rewrite_report(args.out, markdown)
    from handwriting_pipeline.ensemble.vote import vote
    from handwriting_pipeline.metrics import aggregate, score_forms

    started = time.time()
    engs = engines(args)
    splits = {"heldout_train": load("train", args.holdout), "validation": load("validation")}
    tables = {s: read(engs, labels, images, args.workers) for s, (labels, images) in splits.items()}
    if args.read_only:
        return 0
    params = vote_params(engs)
    neutral = {**params, "contradiction": {"unknown_zip": 1.0, "state": 1.0, "city": 1.0}, "recalibration": {}}
    voted = {s: vote(tables[s], neutral)[0] for s in splits}
    heldout = splits["heldout_train"][0]
    factors_alone, _ = fit(heldout, voted["heldout_train"])   # the penalty on the plain vote
    from handwriting_pipeline.ensemble.recalibrate import feature_rows, fit_recalibration

    recal = {"+".join(sorted(engs)): fit_recalibration(feature_rows(heldout, tables["heldout_train"], neutral))}
    recal_neutral = {**neutral, "recalibration": recal}
    factors, top = fit(heldout, vote(tables["heldout_train"], recal_neutral)[0])  # the penalty after it
    runs = {"vote_before": neutral, "vote_after": {**neutral, "contradiction": factors_alone},
            "vote_recalibrated": {**recal_neutral, "contradiction": factors}}
    result: dict[str, Any] = {
        **machine(), "measured_utc": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "note": args.note or "2-core CPU shared with other developers' jobs (timings not comparable)",
        "command": "python benchmarks/review/review_benchmark.py"
                   + (f" --fieldreader {args.fieldreader}" if args.fieldreader else ""),
        "engines": list(engs), "fieldreader": args.fieldreader, "review_threshold": args.threshold,
        "penalty_chosen_on": f"last {args.holdout} shared train forms (held out from the field reader's training)",
        "contradiction_without_recalibration": factors_alone, "contradiction": factors, "grid_top10": top,
        "recalibration": recal, "splits": {},
    }
    for split, (labels, _) in splits.items():
        entry: dict[str, Any] = {"forms": len(labels)}
        for engine, table in tables[split].items():
            entry[engine] = {"alone": aggregate(score_forms(labels, table))}
        for name, run_params in runs.items():
            table = vote(tables[split], run_params)[0]
            entry[name] = {**summary(labels, table, args.threshold), "FLA_CBA": aggregate(score_forms(labels, table))}
        result["splits"][split] = entry
    result["minutes"] = round((time.time() - started) / 60, 1)
    Path(args.out).write_text(json.dumps(result, indent=2, default=float))
    Path(args.out).with_suffix(".md").write_text(markdown(result), encoding="utf-8")
    print(markdown(result))
    print(f"\ncontradiction factors (held-out train): alone {factors_alone}, after the recalibration {factors}")
    print(f"recalibration (held-out train): {json.dumps(recal)}\nwritten {args.out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
