"""The vote's validator and gazetteer factors, measured on the out-of-fold train forms (not a test).

The factors were chosen on the single field reader's 100 held-out train forms. Here they are
varied one at a time around the configured ones (``ensemble.vote`` of conf/base) and each
setting is scored on the 1,400 train forms read out of fold (the field reader ensemble's
readings, each form by a fold reader that never saw it, and RapidOCR; the tables of
``benchmarks/fieldreader/oof_ensemble_benchmark.py``), for the two ways digitize merges them:
the vote over both engines on every form, and the cascade (RapidOCR only on the forms the
ensemble escalates). Per setting: FLA and its gain over the configured factors with a 95 %
paired bootstrap interval over forms; validation FLA only reported. A setting replaces the
configured one only when its interval lies above 0.

Usage (after ``oof_ensemble_benchmark.py``; a few minutes)::

    .venv/bin/python benchmarks/ensemble/vote_factors_benchmark.py

Writes ``benchmarks/results/vote_factors_oof.{json,md}``.
"""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import machine, oof_arguments, oof_vote_inputs, write_results  # noqa: E402

NAME = "vote_factors_oof"


def settings_grid(vote: Any) -> dict[str, Any]:
    """Name -> the vote settings: the configured ones, then one factor changed at a time."""
    grid = {"configured": vote}
    for scale in (0.3, 3.0):
        factors = {k: min(1.0, round(v * scale, 4)) for k, v in vote.validator_factor.items()}
        grid[f"validator factors x{scale:g}"] = dataclasses.replace(vote, validator_factor=factors)
    grid["no validator factors"] = dataclasses.replace(vote, validator_factor=dict.fromkeys(vote.validator_factor, 1.0))
    for key, values in (("state_match", (1.0, 2.0, 8.0)), ("city_match", (1.0, 2.0, 8.0)),
                        ("state_mismatch", (0.4, 1.0))):
        for value in values:
            grid[f"gazetteer {key} {value:g}"] = dataclasses.replace(vote, gazetteer={**vote.gazetteer, key: value})
    return grid


def _markdown(result: dict) -> str:
    lines = [f"# The vote's factors on the out-of-fold forms ({result['date']})", "",
             f"`{result['command']}` — {result['machine']['cpu_count']} CPU cores. Engines: {', '.join(result['engines'])}. "
             f"{result['forms']['train']} out-of-fold train forms (one form = {100 / result['forms']['train']:.2g} FLA "
             f"point; the choice), {result['forms']['validation']} validation forms (only reported). Configured: "
             f"validator factors {result['configured']['validator_factor']}, gazetteer {result['configured']['gazetteer']}.",
             ""]
    for method, rows in result["methods"].items():
        lines += [f"## {method}", "", "| setting | FLA out of fold | gain vs configured [95 % paired] | FLA validation |",
                  "|---|--:|---|--:|"]
        for row in rows:
            lines.append(f"| {row['setting']} | {row['FLA_oof']:.2f} | {row['gain']:+.2f} [{row['low']:+.2f}, "
                         f"{row['high']:+.2f}] | {row['FLA_val']:.2f} |")
        lines.append("")
    lines += [result["verdict"], ""]
    return "\n".join(lines)


def main() -> int:
    args = oof_arguments(__doc__, NAME)
    from handwriting_pipeline.ensemble.cascade import cascade_vote
    from handwriting_pipeline.ensemble.vote import vote
    from handwriting_pipeline.metrics import score_forms
    from handwriting_pipeline.selection import paired_bootstrap

    ensemble, configured, tables, splits = oof_vote_inputs(args.ensemble, args.fast)
    merges = {"vote (both engines on every form)": lambda part, params: vote(part, params)[0],
              "cascade (RapidOCR on the escalated forms)":
                  lambda part, params: cascade_vote(part, [args.fast], params, ensemble.cascade)[0]}
    grid = settings_grid(configured)
    out, verdicts = {}, []
    for method, merge in merges.items():
        per_form, rows = {}, []
        for name, params in grid.items():
            row = {"setting": name}
            for split, labels in splits.items():
                names = set(labels["file_name"])
                part = {m: t[t["file_name"].isin(names)].reset_index(drop=True) for m, t in tables.items()}
                scores = score_forms(labels, merge(part, params)).set_index("file_name")["exact"]
                per_form[(split, name)] = scores
                row["FLA_oof" if split == "train" else "FLA_val"] = round(100 * float(scores.mean()), 2)
            rows.append(row)
        for row in rows:
            gain = paired_bootstrap(per_form[("train", row["setting"])], per_form[("train", "configured")])
            row.update(gain=round(100 * gain.mean, 2), low=round(100 * gain.low, 2), high=round(100 * gain.high, 2))
        better = [r["setting"] for r in rows if r["low"] > 0]
        verdicts.append(f"{method}: " + (f"better with an interval above 0: {', '.join(better)}" if better else
                                         "no setting beats the configured factors with an interval above 0"))
        out[method] = rows
    result = {**machine(), "command": "python benchmarks/ensemble/vote_factors_benchmark.py " + " ".join(sys.argv[1:]),
              "engines": sorted(tables), "configured": {"validator_factor": configured.validator_factor,
                                                        "gazetteer": configured.gazetteer},
              "forms": {"train": len(splits["train"]), "validation": len(splits["validation"])},
              "methods": out, "verdict": "; ".join(verdicts) + "."}
    write_results(args.results, result, _markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
