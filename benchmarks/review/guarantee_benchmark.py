"""Which fields can be loaded without looking, and how sure is that? The risk-controlled thresholds
of the offline vote, fitted on train forms and checked on validation forms.

Reads the engines' outputs for the shared **train** forms (where the thresholds are fitted) and
**validation** forms (only reported): by default the recorded Textract and Azure runs
(``ocr_outputs/*.csv`` through the ``recorded_*`` engines' settings in
conf/base/parameters_extract.yml); ``--predictions NAME=path.csv[:scale]`` adds (or replaces)
any engine's predictions table, e.g. out-of-fold readings of the field reader or RapidOCR.
Each form is voted with ``ensemble.vote`` of conf/base/parameters_ensemble.yml (its calibration
included) and :func:`~handwriting_pipeline.ensemble.trust.trust_rows` gives one row per field:
the confidence as written and in value, and whether the vote was right in each.

For each accepted error rate alpha (0.5, 1, 2, 5 %) and ``--delta`` (0.1), on the **value** level
(the normalized value is right) and the **writing** level (the text as written is right), per
field and for all fields together, the threshold is fitted on the train rows only
(:func:`~handwriting_pipeline.ensemble.trust.field_thresholds`, Learn then Test with
Clopper-Pearson bounds). On validation: the share of fields marked sure, the errors among them,
the realized error rate with its exact 95 % Clopper-Pearson interval, whether it is at most alpha,
the share sent to review, and - a person fixing exactly the fields not marked sure - the % of
normalized fields right and the FLA (% of forms with all four fields right as written).

    python benchmarks/review/guarantee_benchmark.py
    python benchmarks/review/guarantee_benchmark.py --report   # rewrite the .md from the JSON

Writes ``benchmarks/results/guarantee_recorded.{json,md}`` (``--out``).
"""

from __future__ import annotations

import argparse
import json
import re
import sys
import time
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import RESULTS, ROOT, SHARED, machine, rewrite_report, write_results  # noqa: E402

from handwriting_pipeline.fields import KEYS  # the form spec's field names

ALPHAS = (0.005, 0.01, 0.02, 0.05)
LEVELS = ("value", "writing")
#: the targets the table is read against: (level, minimum % right after review, maximum % reviewed)
SCOPES = {"all": "per-field thresholds", "all_one_threshold": "one threshold"}
TARGETS = {"value": ("normalized fields right", 99.5, 10.0), "writing": ("FLA", 95.0, 15.0)}
DEFAULT_ENGINES = "recorded_textract,recorded_azure_form_recognizer"


# --- inputs ---------------------------------------------------------------------------------------

def recorded_table(name: str) -> pd.DataFrame:
    """A recorded engine's predictions table, read with its ``extract.<name>`` settings (path
    relative to the repository root, confidence scale) by the project's outputs-CSV reader."""
    from handwriting_pipeline.engines.recorded import RecordedEngine
    from handwriting_pipeline.recorded_csv import read_predictions_csv

    extract = yaml.safe_load((ROOT / "conf/base/parameters_extract.yml").read_text())["extract"]
    settings = RecordedEngine.settings_for(name, extract.get(name))
    path = Path(settings["path"])
    return read_predictions_csv(path if path.is_absolute() else ROOT / path, settings["confidence_scale"])


def predictions_table(spec: str) -> tuple[str, pd.DataFrame]:
    """``NAME=path.csv[:scale]``: an outputs / predictions CSV read as engine NAME."""
    from handwriting_pipeline.recorded_csv import read_predictions_csv

    name, _, rest = spec.partition("=")
    path, scale = rest, 1.0
    if re.search(r":[0-9.]+$", rest):
        path, _, scale_text = rest.rpartition(":")
        scale = float(scale_text)
    if not name or not path:
        raise SystemExit(f"--predictions {spec!r}: expected NAME=path.csv[:scale]")
    return name, read_predictions_csv(Path(path), scale)


def settings() -> tuple[dict[str, Any], dict[str, Any]]:
    """``ensemble.vote`` (calibration included) and ``evaluation.normalize`` of conf/base."""
    vote = yaml.safe_load((ROOT / "conf/base/parameters_ensemble.yml").read_text())["ensemble"]["vote"]
    normalize = yaml.safe_load((ROOT / "conf/base/parameters_evaluation.yml").read_text())["evaluation"]["normalize"]
    return vote, normalize


def field_rows(labels: pd.DataFrame, tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any],
               options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """:func:`trust_rows` of these labelled forms, with the vote's text (``pred``) and the label
    (``gold``) beside it (to tell what kind of error a wrong field is)."""
    from handwriting_pipeline.ensemble.trust import trust_rows
    from handwriting_pipeline.ensemble.vote import vote
    from handwriting_pipeline.fields import clean_fields

    names = set(labels["file_name"])
    tables = {m: t[t["file_name"].isin(names)].reset_index(drop=True) for m, t in tables.items()}
    rows = trust_rows(labels, tables, params, options)
    voted = vote(tables, params)[0].drop_duplicates("file_name").set_index("file_name")
    gold = {r["file_name"]: clean_fields({k: r[k] for k in KEYS}) for r in labels.to_dict("records")}
    rows["pred"] = [clean_fields({k: voted.at[n, k] for k in KEYS})[f] for n, f in zip(rows["file_name"], rows["field"])]
    rows["gold"] = [gold[n][f] for n, f in zip(rows["file_name"], rows["field"])]
    return rows


# --- the table ------------------------------------------------------------------------------------

def error_kind(pred: str, gold: str) -> str:
    """``case`` (differs in letter case only), ``dots/spaces`` (also in punctuation or spaces
    only) or ``other``."""
    if pred.lower() == gold.lower():
        return "case"
    def loose(s: str) -> str:
        return re.sub(r"[\s.,\-'/]", "", s.lower())
    return "dots/spaces" if loose(pred) == loose(gold) else "other"


def exact_ci(errors: int, n: int) -> list[float | None]:
    """Exact (Clopper-Pearson) two-sided 95 % interval of errors / n (None when n is 0)."""
    from handwriting_pipeline.trust import exact_interval

    return exact_interval(errors, n)


def fit(rows: pd.DataFrame, alpha: float, delta: float, level: str) -> dict[str, Any]:
    """The thresholds fitted on ``rows`` (train): per field, and one for all fields together."""
    from handwriting_pipeline.ensemble.trust import field_thresholds
    from handwriting_pipeline.trust import risk_threshold

    per_field = field_thresholds(rows, alpha, delta, on=level)
    col = "value" if level == "value" else "written"
    pooled = risk_threshold(rows[f"{col}_conf"].astype(float).to_numpy(), rows[f"{col}_right"].to_numpy(bool),
                            alpha, delta)
    stops = {k: stop_point(rows[rows["field"] == k], alpha, delta, level) for k in KEYS}
    return {"per_field": {k: t.to_dict() for k, t in per_field.items()}, "all_one_threshold": pooled.to_dict(),
            "stopped_at": {**stops, "all_one_threshold": stop_point(rows, alpha, delta, level)}}


def stop_point(rows: pd.DataFrame, alpha: float, delta: float, level: str) -> dict[str, Any] | None:
    """What keeps the threshold of these (train) rows from going lower: the first threshold of
    the fixed sequence whose bound exceeds ``alpha`` (as :func:`risk_threshold` tests them), the
    fields at or above it, the wrong ones among them and their kinds. None: never stopped."""
    from handwriting_pipeline.trust import DEFAULT_GRID, error_upper_bound, min_fields

    col = "value" if level == "value" else "written"
    conf = rows[f"{col}_conf"].astype(float).fillna(0.0).to_numpy()
    wrong = ~rows[f"{col}_right"].to_numpy(bool)
    need = min_fields(alpha, delta)
    for t in sorted(set(DEFAULT_GRID), reverse=True):
        sure = conf >= t
        k, e = int(sure.sum()), int((sure & wrong).sum())
        if k < need:
            continue
        if float(error_upper_bound(e, k, delta)) > alpha:
            part = rows[sure & wrong]
            kinds = {"case": 0, "dots/spaces": 0, "other": 0}
            for p, g in zip(part["pred"], part["gold"]):
                kinds[error_kind(p, g)] += 1
            return {"threshold": float(t), "sure": k, "errors": e, "errors_by_kind": kinds,
                    "examples": [f"{p} / {g}" for p, g in list(zip(part["pred"], part["gold"]))[:5]]}
    return None


def sure_mask(rows: pd.DataFrame, thresholds: Mapping[str, float | None], level: str) -> pd.Series:
    """Fields at or above their field's threshold (None: no threshold, nothing sure)."""
    col = "value_conf" if level == "value" else "written_conf"
    conf = rows[col].astype(float).fillna(0.0)
    limit = rows["field"].map(lambda f: thresholds.get(f)).astype(float)  # None -> NaN: never sure
    return (conf >= limit).fillna(False).astype(bool)


def report(rows: pd.DataFrame, sure: pd.Series, level: str, alpha: float) -> dict[str, Any]:
    """Validation figures of one set of sure fields."""
    right = rows["value_right" if level == "value" else "written_right"].astype(bool)
    n, k = len(rows), int(sure.sum())
    wrong = sure & ~right
    errors = int(wrong.sum())
    realized = errors / k if k else None
    kinds = {"case": 0, "dots/spaces": 0, "other": 0}
    for p, g in zip(rows.loc[wrong, "pred"], rows.loc[wrong, "gold"]):
        kinds[error_kind(p, g)] += 1
    # a person fixes exactly the fields not marked sure
    value_after = (~sure | rows["value_right"].astype(bool))
    written_after = (~sure | rows["written_right"].astype(bool))
    forms = written_after.groupby(rows["file_name"]).all()
    return {"n": n, "sure": k, "sure_pct": round(100 * k / n, 2) if n else None,
            "review_pct": round(100 * (n - k) / n, 2) if n else None, "errors": errors,
            "realized": None if realized is None else round(realized, 5), "ci95": exact_ci(errors, k),
            "alpha": alpha, "holds": None if realized is None else bool(realized <= alpha),
            "errors_by_kind": kinds,
            "normalized_right_after_pct": round(100 * float(value_after.mean()), 2) if n else None,
            "FLA_after": round(100 * float(forms.mean()), 2) if n else None}


def guarantee(train: pd.DataFrame, validation: pd.DataFrame, alphas: Sequence[float] = ALPHAS,
              delta: float = 0.1) -> dict[str, Any]:
    """The whole table: thresholds fitted on the ``train`` rows only, reported on ``validation``
    (rows of :func:`field_rows`). Returns ``{"levels": {level: [one entry per alpha]}}``; each
    entry holds ``thresholds`` (the train fit), ``train`` and ``validation`` reports per field,
    ``all`` (per-field thresholds together) and ``all_one_threshold`` (one pooled threshold)."""
    out: dict[str, Any] = {"delta": delta, "alphas": list(alphas), "levels": {}}
    for level in LEVELS:
        entries = []
        for alpha in alphas:
            fitted = fit(train, alpha, delta, level)
            per_field = {k: t["threshold"] for k, t in fitted["per_field"].items()}
            pooled = fitted["all_one_threshold"]["threshold"]
            entry: dict[str, Any] = {"alpha": alpha, "thresholds": fitted}
            for split, rows in (("train", train), ("validation", validation)):
                sure = sure_mask(rows, per_field, level)
                part = {k: report(rows[rows["field"] == k], sure[rows["field"] == k], level, alpha) for k in KEYS}
                part["all"] = report(rows, sure, level, alpha)
                part["all_one_threshold"] = report(rows, sure_mask(rows, dict.fromkeys(KEYS, pooled), level),
                                                   level, alpha)
                entry[split] = part
            entries.append(entry)
        out["levels"][level] = entries
    out["targets"] = targets(out)
    return out


def targets(table: Mapping[str, Any]) -> dict[str, Any]:
    """Each target read off the validation rows of all fields (per-field thresholds, or one
    threshold): met at some alpha, or by how much the closest point misses it (the most right
    within the review budget; none within it: the least reviewed)."""
    out = {}
    for level, (metric, want, budget) in TARGETS.items():
        key = "normalized_right_after_pct" if level == "value" else "FLA_after"
        points = [{"alpha": e["alpha"], "scope": scope, "review_pct": e["validation"][scope]["review_pct"],
                   "right": e["validation"][scope][key], "errors_by_kind": e["validation"][scope]["errors_by_kind"],
                   "errors": e["validation"][scope]["errors"]}
                  for e in table["levels"][level] for scope in ("all", "all_one_threshold")]
        met = [p for p in points if p["right"] is not None and p["right"] >= want and p["review_pct"] <= budget]
        within = [p for p in points if p["review_pct"] is not None and p["review_pct"] <= budget]
        closest = max(within, key=lambda p: p["right"]) if within else min(points, key=lambda p: p["review_pct"])
        out[level] = {"metric": metric, "want": want, "budget_pct": budget, "met": bool(met),
                      "met_at": [(p["alpha"], p["scope"]) for p in met], "closest": closest,
                      "short_by": None if met else round(want - closest["right"], 2),
                      "review_over_by": None if met else round(max(0.0, closest["review_pct"] - budget), 2)}
    return out


# --- markdown -------------------------------------------------------------------------------------

def _pct(x: float | None, digits: int = 2) -> str:
    return "–" if x is None else f"{100 * x:.{digits}f}"


def markdown(result: Mapping[str, Any]) -> str:
    """The validation tables of a results JSON."""
    table = result["table"]
    lines = [f"# Which fields can be loaded without looking ({result['date']}, "
             f"{result['machine'].get('cpu_count')} CPUs)", "",
             f"`{result['command']}`", "",
             f"Engines: {', '.join(result['engines'])}. Thresholds fitted on the {result['forms']['train']} train forms "
             f"(Learn then Test, Clopper-Pearson, δ = {table['delta']}: with 90 % probability the error rate among "
             f"sure fields is at most α); reported on the {result['forms']['validation']} validation forms, "
             "which played no part in any fit."
             + ("".join(f" {result['forms_labelled'][s] - result['forms'][s]} of the {result['forms_labelled'][s]} "
                        f"labelled {s} forms have no output from any engine and are left out (they would go to "
                        "review whole)." for s in ("train", "validation")
                        if result.get("forms_labelled", {}).get(s, 0) > result["forms"][s])), "",
             f"Calibration set: {result['calibration_set']}", "",
             *([f"Method: digitize's cascade simulated (`--cascade`): the other engines read only the forms the fast "
                f"reader escalates ({', '.join(f'{s} {v} %' for s, v in result['escalated_pct'].items())} of the forms); "
                f"the thresholds are those of `digitize.review.guarantees` key `{result['digitize_guarantees']['key']}`.", ""]
              if result.get("method") == "cascade" else []),
             "Columns: α promised; t the train-fitted threshold (– none possible: every field goes to review); "
             "sure % of validation fields; errors among sure / sure; realized error % [exact 95 % interval]; "
             "≤ α: realized at most α; review % of fields sent to a person; after review (a person fixes exactly "
             "the fields not marked sure): % of normalized fields right, FLA (% of forms with all four fields "
             "right as written)."]
    names = {"value": "Value level (the normalized value is right: ISO date, USPS code, ZIP, gazetteer city)",
             "writing": "Writing level (the text is right exactly as written, case and dots included)"}
    for level in LEVELS:
        lines += ["", f"## {names[level]}", "",
                  "| α % | field | t | sure % | errors / sure | realized % [95 % CI] | ≤ α | review % "
                  "| normalized right % | FLA |",
                  "|--:|---|--:|--:|--:|---|:-:|--:|--:|--:|"]
        for entry in table["levels"][level]:
            alpha = entry["alpha"]
            for scope in (*KEYS, "all", "all_one_threshold"):
                v = entry["validation"][scope]
                if scope in KEYS:
                    t = entry["thresholds"]["per_field"].get(scope, {}).get("threshold")
                    label = scope
                elif scope == "all":
                    t, label = None, "**all** (per-field t)"
                else:
                    t, label = entry["thresholds"]["all_one_threshold"]["threshold"], "all (one t)"
                t_text = "" if scope == "all" else ("–" if t is None else f"{t:.3f}")
                lo, hi = v["ci95"]
                realized = "–" if v["realized"] is None else f"{_pct(v['realized'])} [{_pct(lo)}, {_pct(hi)}]"
                holds = "–" if v["holds"] is None else ("yes" if v["holds"] else "**no**")
                fla = f"{v['FLA_after']:.1f}" if scope in ("all", "all_one_threshold") else ""
                lines.append(f"| {100 * alpha:g} | {label} | {t_text} | {v['sure_pct']:.1f} | {v['errors']} / {v['sure']} "
                             f"| {realized} | {holds} | {v['review_pct']:.1f} | {v['normalized_right_after_pct']:.2f} "
                             f"| {fla} |")
    lines += ["", "## What stops each threshold (train forms)", "",
              "Learn then Test tries thresholds from 1 down and stops at the first whose bound exceeds α: "
              "that threshold, the train fields at or above it, and the wrong ones among them by kind (case only, "
              "dots/spaces only, other). A field stopped near 1 gets no threshold at all.", ""]
    for level in LEVELS:
        lines += [f"| {level} | " + " | ".join(f"α {100 * e['alpha']:g} %" for e in table["levels"][level]) + " |",
                  "|---|" + "---|" * len(table["levels"][level])]
        for scope in (*KEYS, "all_one_threshold"):
            cells = []
            for e in table["levels"][level]:
                stop = e["thresholds"]["stopped_at"].get(scope)
                if stop is None:
                    cells.append("never stopped")
                    continue
                k = stop["errors_by_kind"]
                cells.append(f"t {stop['threshold']:.3f}: {stop['errors']} / {stop['sure']} wrong "
                             f"({k['case']} case, {k['dots/spaces']} dots/spaces, {k['other']} other)")
            lines.append(f"| {'all (one t)' if scope == 'all_one_threshold' else scope} | " + " | ".join(cells) + " |")
        lines.append("")
    lines += ["## Targets", ""]
    for level, t in table["targets"].items():
        c = t["closest"]
        head = f"- **{t['metric']} ≥ {t['want']:g} % after reviewing ≤ {t['budget_pct']:g} % of fields** ({level} level): "
        if t["met"]:
            lines.append(head + "met at " + ", ".join(f"α = {100 * a:g} % ({SCOPES[s]})" for a, s in t["met_at"]) + ".")
            continue
        kinds = ", ".join(f"{n} {k}" for k, n in c["errors_by_kind"].items())
        entry = next(e for e in table["levels"][level] if e["alpha"] == c["alpha"])
        stops = [entry["thresholds"]["stopped_at"].get(k) for k in
                 (("all_one_threshold",) if c["scope"] == "all_one_threshold" else KEYS)]
        total = {k: sum(st["errors_by_kind"][k] for st in stops if st) for k in ("case", "dots/spaces", "other")}
        stopped = ", ".join(f"{n} {k}" for k, n in total.items())
        over = f", and it still reviews {t['review_over_by']:g} points more than allowed" if t["review_over_by"] else ""
        lines.append(head + f"**missed**. Closest: α = {100 * c['alpha']:g} % ({SCOPES[c['scope']]}) reviews "
                     f"{c['review_pct']:.1f} % and "
                     f"reaches {c['right']:.2f} %, {t['short_by']:g} points short{over}. What limits it: the "
                     f"{c['errors']} wrong fields marked sure there ({kinds}); on the train forms "
                     f"the thresholds at α = {100 * c['alpha']:g} % stop where {stopped} wrong fields sit among "
                     "the surest (table above): confidently wrong readings the confidences do not tell from "
                     "right ones, so a lower α only sends more fields to review.")
    return "\n".join(lines) + "\n"


# --- main -----------------------------------------------------------------------------------------

def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--engines", default=DEFAULT_ENGINES, help="recorded engines (comma-separated; '' for none)")
    parser.add_argument("--predictions", action="append", default=[], metavar="NAME=path.csv[:scale]",
                        help="another engine's predictions table (out-of-fold readings), repeatable")
    parser.add_argument("--calibration", action="append", default=[], metavar="NAME=model_folder",
                        help="the vote's calibration of engine NAME from a trained model folder (fieldreader.json)")
    parser.add_argument("--cascade", default="", metavar="FAST",
                        help="simulate digitize's cascade: the other engines read only the forms engine FAST "
                             "escalates (ensemble.cascade of conf/base)")
    parser.add_argument("--alphas", default=",".join(f"{a:g}" for a in ALPHAS))
    parser.add_argument("--delta", type=float, default=0.1)
    parser.add_argument("--out", default=str(RESULTS / "guarantee_recorded.json"))
    parser.add_argument("--report", action="store_true", help="only rewrite the .md from the --out JSON")
    args = parser.parse_args(argv)
    if args.report:
        return rewrite_report(args.out, markdown)
    from handwriting_pipeline.score import read_labels

    started = time.time()
    tables = {name: recorded_table(name) for name in filter(None, args.engines.split(","))}
    tables.update(predictions_table(spec) for spec in args.predictions)
    if not tables:
        raise SystemExit("no engines: give --engines or --predictions")
    params, options = settings()
    models = {}
    for spec in args.calibration:  # a trained model's own calibration wins, as in the pipelines
        from handwriting_pipeline.datasets.model import FieldReaderRef

        name, _, folder = spec.partition("=")
        saved = json.loads((Path(folder) / "fieldreader.json").read_text())["calibration"]
        params["calibration"] = {**params.get("calibration", {}), name: saved}
        models[name] = FieldReaderRef.from_path(folder).fingerprint  # the guarantee holds for these weights
    method = "vote"
    if args.cascade:  # the slower engines read only what the fast reader escalates
        from handwriting_pipeline.ensemble.cascade import cascade_tables, replay
        from handwriting_pipeline.ensemble.settings import EnsembleSettings

        cascade = EnsembleSettings.from_params(yaml.safe_load((ROOT / "conf/base/parameters_ensemble.yml").read_text())
                                               ["ensemble"]).cascade
        tables = cascade_tables(replay(tables), tables[args.cascade]["file_name"].tolist(), [args.cascade],
                                [m for m in tables if m != args.cascade], params, cascade)
        sent = set().union(*(set(t["file_name"]) for m, t in tables.items() if m != args.cascade))
        method = "cascade"
        # only the forms some engine read (out-of-fold readings may cover part of the train forms)
    seen = set().union(*(set(t["file_name"]) for t in tables.values()))
    labels = {split: read_labels(SHARED / split) for split in ("train", "validation")}
    labels = {split: table[table["file_name"].isin(seen)].reset_index(drop=True) for split, table in labels.items()}
    rows = {split: field_rows(labels[split], tables, params, options) for split in labels}
    alphas = [float(a) for a in args.alphas.split(",")]
    command = "python benchmarks/review/guarantee_benchmark.py" + "".join(
        f" {flag}" for flag in ([f"--engines '{args.engines}'"] if args.engines != DEFAULT_ENGINES else [])
        + [f"--predictions {p}" for p in args.predictions] + [f"--calibration {c}" for c in args.calibration]
        + ([f"--delta {args.delta:g}"] if args.delta != 0.1 else []))
    recorded = all(name.startswith("recorded_") for name in tables)
    command += f" --cascade {args.cascade}" if args.cascade else ""
    result = {
        **machine(), "command": command, "engines": list(tables),
        "forms": {split: int(r["file_name"].nunique()) for split, r in rows.items()},
        "forms_labelled": {split: len(labels[split]) for split in labels},
        "calibration_set": (
            "the thresholds are fitted on the shared train forms and only reported on the validation forms. "
            + ("The recorded engines (Textract, Azure Form Recognizer) never trained on any of these forms, but the "
               "vote's calibration (ensemble.vote.calibration in conf/base/parameters_ensemble.yml) and its "
               "validator / gazetteer factors were fitted on the same train forms, so the thresholds are fitted on "
               "the forms that calibration saw; the validation forms saw neither."
               if recorded else "Engines given by --predictions must be out-of-fold on the train forms.")),
        "method": method, "normalize": options,
        "table": guarantee(rows["train"], rows["validation"], alphas, args.delta),
        "minutes": round((time.time() - started) / 60, 2),
    }
    if args.cascade:
        result["escalated_pct"] = {split: round(100 * len(set(r["file_name"]) & sent) / max(r["file_name"].nunique(), 1),
                                                2) for split, r in rows.items()}
    result["digitize_guarantees"] = digitize_entries(result, method, list(tables), models)
    write_results(Path(args.out), result, markdown(result))
    return 0


def digitize_entries(result: Mapping[str, Any], method: str, engines: Sequence[str],
                     models: Mapping[str, str | None] | None = None) -> dict[str, Any]:
    """Per level and alpha, the ``digitize.review.guarantees`` entry these thresholds make (key
    ``<method>:<engines>``): what conf/base/parameters_digitize.yml takes."""
    key = f"{method}:{'+'.join(sorted(engines))}"
    out: dict[str, Any] = {"key": key, "levels": {}}
    for level, entries in result["table"]["levels"].items():
        for entry in entries:
            fields = {k: {f: t[f] for f in ("threshold", "n", "sure", "errors", "bound")}
                      for k, t in entry["thresholds"]["per_field"].items()}
            out["levels"].setdefault(level, {})[f"{entry['alpha']:g}"] = {
                "alpha": entry["alpha"], "delta": result["table"]["delta"],
                "fitted_on": f"{result['forms']['train']} train forms ({result['command']})",
                **({"models": dict(models)} if models else {}), "fields": fields}
    return out


if __name__ == "__main__":
    raise SystemExit(main())
