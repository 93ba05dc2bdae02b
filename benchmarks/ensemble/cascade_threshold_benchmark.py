"""The cascade's threshold, measured on the out-of-fold train forms (not a test).

Digitize's cascade once the field reader ensemble is trained: the ensemble reads every form, the
slower engines (RapidOCR) read the forms where some field's voted confidence is below
``ensemble.cascade.threshold`` (or a field fails its validator, ``escalate_invalid``). Replayed on
the 1,400 train forms read out of fold (each by the fold reader that never saw it; the tables of
``oof_ensemble_benchmark.py``) and on the validation forms (only reported), for a grid of
thresholds: FLA, the share of forms escalated, and each threshold's gain over the configured one
with its 95 % paired bootstrap interval (forms resampled) on the out-of-fold forms.

Usage (after ``benchmarks/fieldreader/oof_ensemble_benchmark.py``; a minute)::

    .venv/bin/python benchmarks/ensemble/cascade_threshold_benchmark.py

Writes ``benchmarks/results/cascade_threshold_oof.{json,md}``.
"""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import machine, oof_arguments, oof_vote_inputs, write_results  # noqa: E402

NAME = "cascade_threshold_oof"
GRID = (0.0, 0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.01)


def _markdown(result: dict) -> str:
    lines = [f"# The cascade's threshold on the out-of-fold forms ({result['date']})", "",
             f"`{result['command']}` — {result['machine']['cpu_count']} CPU cores. Fast stage `{result['fast']}`, slower "
             f"{', '.join(result['slow'])}; escalate_invalid {result['escalate_invalid']}; configured threshold "
             f"{result['configured']}. {result['forms']['train']} out-of-fold train forms (one form = "
             f"{100 / result['forms']['train']:.2g} FLA point), {result['forms']['validation']} validation forms "
             "(only reported).", "",
             "| threshold | FLA out of fold | escalated % | gain vs configured [95 % paired] | FLA validation | "
             "escalated % |", "|--:|--:|--:|---|--:|--:|"]
    for row in result["rows"]:
        gain = f"{row['gain']:+.2f} [{row['low']:+.2f}, {row['high']:+.2f}]"
        lines.append(f"| {row['threshold']} | {row['FLA_oof']} | {row['escalated_oof']} | {gain} | {row['FLA_val']} | "
                     f"{row['escalated_val']} |")
    lines += ["", result["verdict"]]
    return "\n".join(lines) + "\n"


def main() -> int:
    args = oof_arguments(__doc__, NAME)
    import dataclasses

    from handwriting_pipeline.ensemble.cascade import cascade_vote
    from handwriting_pipeline.metrics import score_forms
    from handwriting_pipeline.selection import paired_bootstrap

    ensemble, vote, tables, splits = oof_vote_inputs(args.ensemble, args.fast)
    per_form, rows = {}, []
    for threshold in GRID:
        settings = dataclasses.replace(ensemble.cascade, threshold=threshold)
        row = {"threshold": threshold}
        for split, labels in splits.items():
            names = set(labels["file_name"])
            part = {m: t[t["file_name"].isin(names)].reset_index(drop=True) for m, t in tables.items()}
            merged, share = cascade_vote(part, [args.fast], vote, settings)
            scores = score_forms(labels, merged).set_index("file_name")["exact"]
            per_form[(split, threshold)] = scores
            key = "oof" if split == "train" else "val"
            row[f"FLA_{key}"] = round(100 * float(scores.mean()), 2)
            row[f"escalated_{key}"] = round(100 * share, 2)
        rows.append(row)
    configured = float(ensemble.cascade.threshold)
    base = per_form[("train", configured)]
    for row in rows:
        gain = paired_bootstrap(per_form[("train", row["threshold"])], base)
        row.update(gain=round(100 * gain.mean, 2), low=round(100 * gain.low, 2), high=round(100 * gain.high, 2))
    better = [r for r in rows if r["low"] > 0]
    verdict = (f"Thresholds whose gain over {configured} has an interval above 0: "
               + ", ".join(f"{r['threshold']} ({r['gain']:+.2f})" for r in better) if better else
               f"No threshold beats the configured {configured} with an interval above 0 on the out-of-fold forms: "
               "it stays.")
    result = {**machine(), "command": "python benchmarks/ensemble/cascade_threshold_benchmark.py " + " ".join(sys.argv[1:]),
              "fast": args.fast, "slow": sorted(m for m in tables if m != args.fast),
              "escalate_invalid": ensemble.cascade.escalate_invalid, "configured": configured,
              "forms": {"train": len(splits["train"]), "validation": len(splits["validation"])}, "rows": rows,
              "verdict": verdict}
    write_results(args.results, result, _markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
