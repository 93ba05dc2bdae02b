"""Does a confidence model with richer features know better when a field is wrong? Chosen on the
out-of-fold train forms, only reported on validation.

The fields come from digitize's cascade simulated as training fits its guarantee
(:func:`handwriting_pipeline.digitize.guarantee.fit_guarantees`): the field reader ensemble's
out-of-fold readings of the 1,400 train forms (each form read by a fold reader that never saw it)
and of the validation forms, RapidOCR reading the forms the cascade escalates. Each field's
confidence that it is right **as written** (``written_conf``) and **in value** (``value_conf``)
is compared between:

* ``vote``: the vote's own confidence (what digitize used before);
* ``logistic: basic``: :mod:`handwriting_pipeline.ensemble.recalibrate` on the seven features it
  had (vote confidence, engines agreeing case-folded, validator, gazetteer, best engine);
* ``logistic: all``: the same with the new features (engines agreeing exactly, how the chosen
  text is written: mixed case, look-alike letters, dots, spaces, length, digits), fitted outside
  the vote;
* ``as digitize applies it``: the product's path - the recalibration inside the vote, fitted per
  engine set by :func:`~handwriting_pipeline.ensemble.recalibrate.crossfit_recalibration` (the
  vote's gazetteer factor left to the regression), exactly what training saves with the reader;
* ``gradient boosting: all``: scikit-learn's HistGradientBoostingClassifier on the same features;
* ``logistic: all + ambiguity``: plus the output of an **ambiguity model** - a logistic regression
  trained on the train forms to predict that the authors' two labelling passes
  (``second_annotation.csv``) disagree on the field, from the same features.

On the train forms every model is cross-fitted (5 folds over forms: a form's confidence comes
from a model fitted on the other folds; the ambiguity model is cross-fitted inside each fold);
on validation the models fitted on all train forms are applied. Per model: the area under the ROC
curve of right vs wrong fields, **FLA after a person reviews the 15 % least sure fields** (writing
level) and **% of normalized fields right after 10 % reviewed** (value level), with a paired 95 %
bootstrap interval over forms against ``vote`` on the train forms (the choice) and on validation.

Then where the guarantee's test sequence starts (``digitize.review.start_rate``): the train forms
split in two halves (5 random splits), thresholds fitted on one half (Learn then Test,
Clopper-Pearson, alpha value 1 % / writing 5 %, delta 10 %) and the share of fields marked sure
and their error rate measured on the other, per start rate. Last, the guarantee digitize fits
(``fit_guarantees``: thresholds on the cross-fitted confidences) checked on validation, before
(vote's confidence, start rate 0) and after (the product's defaults).

    python benchmarks/review/confidence_model_benchmark.py \\
        --fast fieldreader_ensemble=data/07_model_output/oof_ensemble/fieldreader_ensemble.csv \\
        --slow rapidocr=data/07_model_output/oof_ensemble/rapidocr.csv --model data/06_models/fieldreader_ensemble
    python benchmarks/review/confidence_model_benchmark.py --report   # rewrite the .md from the JSON

The tables come from ``benchmarks/review/guarantee_benchmark.py``'s inputs (the oof_ensemble
folder is written by ``benchmarks/fieldreader/oof_ensemble_benchmark.py``). Writes
``benchmarks/results/confidence_model.{json,md}``.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import sys
import time
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # benchmarks/: common.py
from common import RESULTS, ROOT, SHARED, machine, rewrite_report, write_results  # noqa: E402

OUT = RESULTS / "confidence_model.json"
BASIC = ("logit_conf", "agree", "none", "invalid", "contradicted", "confirmed", "best_p")
SHARES = {"writing": 15, "value": 10}
ALPHAS = {"value": 0.01, "writing": 0.05}
START_RATES = (0.0, 0.25, 0.5, 0.75)
GUARANTEE_ALPHAS = (0.005, 0.01, 0.02, 0.05)
FOLDS = 5


# --- inputs ---------------------------------------------------------------------------------------

def settings() -> tuple[dict[str, Any], dict[str, Any]]:
    """``ensemble`` and ``evaluation.normalize`` of conf/base."""
    ensemble = yaml.safe_load((ROOT / "conf/base/parameters_ensemble.yml").read_text())["ensemble"]
    normalize = yaml.safe_load((ROOT / "conf/base/parameters_evaluation.yml").read_text())["evaluation"]["normalize"]
    return ensemble, normalize


def cascade_read(fast: str, tables: Mapping[str, pd.DataFrame], vote: Any, ensemble: Mapping[str, Any]
                 ) -> dict[str, pd.DataFrame]:
    """The cascade's readings: ``fast`` reads every form, the others the forms it escalates."""
    from handwriting_pipeline.ensemble.cascade import cascade_tables, replay
    from handwriting_pipeline.ensemble.settings import EnsembleSettings

    return cascade_tables(replay(tables), tables[fast]["file_name"].tolist(), [fast], [m for m in tables if m != fast],
                          vote, EnsembleSettings.from_params(ensemble).cascade)


def field_rows(labels: pd.DataFrame, read: Mapping[str, pd.DataFrame], vote: Any, normalize: Mapping[str, Any],
               second: Mapping[str, Mapping[str, str]]) -> pd.DataFrame:
    """One row per form and field: the recalibration's features (:func:`feature_rows`), the vote's
    own ``written_conf`` / ``value_conf``, ``written_right`` / ``value_right`` and ``ambiguous``
    (the authors' two labelling passes differ on the field)."""
    from handwriting_pipeline.ensemble.recalibrate import feature_rows
    from handwriting_pipeline.ensemble.trust import trust_rows

    features = feature_rows(labels, read, vote)
    trust = trust_rows(labels, read, vote, dict(normalize))
    rows = features.merge(trust, on=["file_name", "field"], validate="one_to_one")
    first = labels.set_index("file_name")
    rows["ambiguous"] = [n in second and second[n][k] != first.at[n, k] for n, k in zip(rows["file_name"], rows["field"])]
    return rows


# --- the models -----------------------------------------------------------------------------------

def _logistic(c: float = 1.0) -> Any:
    from sklearn.linear_model import LogisticRegression

    return LogisticRegression(C=c, max_iter=5000)


def _boosting() -> Any:
    from sklearn.ensemble import HistGradientBoostingClassifier

    return HistGradientBoostingClassifier(max_depth=3, learning_rate=0.05, max_iter=200, min_samples_leaf=40,
                                          l2_regularization=1.0, random_state=0)


def fit_predict(train: pd.DataFrame, test: pd.DataFrame, columns: Sequence[str], target: str,
                make: Callable[[], Any]) -> np.ndarray:
    """P(target) of ``test`` rows from one model per field and engine set fitted on ``train``
    (as the recalibration is kept: per engine set and field)."""
    out = np.full(len(test), np.nan)
    for (field, engines), part in test.groupby(["field", "engines"]):
        fit = train[(train["field"] == field) & (train["engines"] == engines)]
        y = fit[target].astype(int).to_numpy()
        if len(set(y)) < 2:
            out[test.index.get_indexer(part.index)] = y.mean() if len(y) else 0.5
            continue
        model = make().fit(fit[list(columns)].to_numpy(float), y)
        out[test.index.get_indexer(part.index)] = model.predict_proba(part[list(columns)].to_numpy(float))[:, 1]
    return out


def with_ambiguity(train: pd.DataFrame, test: pd.DataFrame, columns: Sequence[str]) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Both tables with ``logit_ambiguity``: the ambiguity model's P(two passes disagree), fitted on
    ``train`` (cross-fitted inside it, so its own rows get out-of-fold values)."""
    from handwriting_pipeline.ensemble.recalibrate import form_folds

    train, test = train.copy(), test.copy()
    inner = train["file_name"].map(form_folds(train["file_name"].tolist(), FOLDS, seed=1))
    values = np.full(len(train), np.nan)
    for k in range(FOLDS):
        part = train[inner == k].reset_index(drop=True)
        values[(inner == k).to_numpy()] = fit_predict(train[inner != k].reset_index(drop=True), part, columns,
                                                     "ambiguous", _logistic)
    train["ambiguity"] = values
    test["ambiguity"] = fit_predict(train, test, columns, "ambiguous", _logistic)
    for table in (train, test):
        p = table["ambiguity"].clip(1e-4, 1 - 1e-4)
        table["logit_ambiguity"] = np.log(p / (1 - p))
    return train, test


def model_scores(train: pd.DataFrame, test: pd.DataFrame, columns: Sequence[str], make: Callable[[], Any],
                 ambiguity: bool = False) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """Per level, (cross-fitted train confidences, validation confidences)."""
    from handwriting_pipeline.ensemble.recalibrate import form_folds

    folds = train["file_name"].map(form_folds(train["file_name"].tolist(), FOLDS))
    out = {}
    for level, target in (("writing", "written_right"), ("value", "value_right")):
        crossfit = np.full(len(train), np.nan)
        for k in range(FOLDS):
            fit, held = train[folds != k].reset_index(drop=True), train[folds == k].reset_index(drop=True)
            cols = list(columns)
            if ambiguity:
                fit, held = with_ambiguity(fit, held, columns)
                cols.append("logit_ambiguity")
            crossfit[(folds == k).to_numpy()] = fit_predict(fit, held, cols, target, make)
        fit, held, cols = train, test, list(columns)
        if ambiguity:
            fit, held = with_ambiguity(train, test, columns)
            cols.append("logit_ambiguity")
        out[level] = (crossfit, fit_predict(fit, held, cols, target, make))
    return out


def digitize_scores(fast: str, rows: Mapping[str, pd.DataFrame], labels: Mapping[str, pd.DataFrame],
                    tables: Mapping[str, Mapping[str, pd.DataFrame]], vote: Any, ensemble: Mapping[str, Any],
                    normalize: Mapping[str, Any]) -> dict[str, tuple[np.ndarray, np.ndarray]]:
    """The confidences digitize gives with the recalibration training fits (the product path:
    :func:`crossfit_recalibration` inside the vote): cross-fitted on train, fitted on all train
    forms for validation; per level, aligned with ``rows``."""
    from handwriting_pipeline.digitize.guarantee import cascade_trust_rows
    from handwriting_pipeline.ensemble.recalibrate import crossfit_recalibration

    train = tables["train"]
    recal, per_fold, fold_of = crossfit_recalibration(labels["train"], [{fast: train[fast]}, dict(train)], vote)
    found = {"train": cascade_trust_rows(labels["train"], cascade_read(fast, train, vote, ensemble), vote, normalize,
                                         per_fold, fold_of)}
    final = dataclasses.replace(vote, recalibration={**vote.recalibration, **recal})
    found["validation"] = cascade_trust_rows(labels["validation"], cascade_read(fast, tables["validation"], final, ensemble),
                                             final, normalize)
    keys = ["file_name", "field"]
    aligned = {split: rows[split][keys].merge(found[split], on=keys, how="left", validate="one_to_one")
               for split in found}
    return {level: tuple(aligned[split][f"{col}_conf"].astype(float).to_numpy() for split in ("train", "validation"))
            for level, col in (("writing", "written"), ("value", "value"))}


# --- the measures ---------------------------------------------------------------------------------

def after_review(rows: pd.DataFrame, conf: np.ndarray, level: str) -> pd.Series:
    """Per form, after a person fixes the least sure ``SHARES[level]`` % of fields: writing 1 when
    every field is right as written, value the share of fields right in value."""
    right = rows["written_right" if level == "writing" else "value_right"].astype(bool).to_numpy().copy()
    order = np.argsort(np.nan_to_num(conf, nan=-1.0), kind="stable")
    right[order[: int(round(len(rows) * SHARES[level] / 100))]] = True
    per_form = pd.Series(right, index=rows.index).groupby(rows["file_name"])
    return per_form.all().astype(float) if level == "writing" else per_form.mean()


def measure(rows: pd.DataFrame, conf: np.ndarray, baseline: np.ndarray, level: str) -> dict[str, Any]:
    from sklearn.metrics import roc_auc_score

    from handwriting_pipeline.selection import paired_bootstrap

    right = rows["written_right" if level == "writing" else "value_right"].astype(bool)
    mine, base = after_review(rows, conf, level), after_review(rows, baseline, level)
    gain = paired_bootstrap(mine, base)
    return {"auc": round(float(roc_auc_score(right, np.nan_to_num(conf, nan=0.0))), 4),
            "after_review": round(100 * float(mine.mean()), 2),
            "gain": [round(100 * x, 2) for x in (gain.mean, gain.low, gain.high)]}


def start_rate_split(rows: pd.DataFrame, conf: Mapping[str, np.ndarray], name: str, splits: int = 5
                     ) -> list[dict[str, Any]]:
    """Per start rate and level, thresholds fitted on half of the train forms, measured on the other."""
    from handwriting_pipeline.ensemble.recalibrate import form_folds
    from handwriting_pipeline.ensemble.trust import check_guarantee, field_thresholds

    out = []
    for rate in START_RATES:
        for level, alpha in ALPHAS.items():
            col = "written" if level == "writing" else "value"
            table = rows.assign(**{f"{col}_conf": conf[level]})
            sure, errors, fields = 0, 0, 0
            for seed in range(splits):
                half = table["file_name"].map(form_folds(table["file_name"].tolist(), 2, seed))
                fit, check = table[half == 0], table[half == 1]
                found = field_thresholds(fit, alpha, 0.1, on=level, start_rate=rate)
                entry = {"alpha": alpha, "fields": {k: {"threshold": t.threshold} for k, t in found.items()}}
                result = check_guarantee(check, entry, level)["all"]
                sure, errors, fields = sure + result["sure"], errors + result["errors"], fields + result["n"]
            out.append({"confidence": name, "start_rate": rate, "level": level, "alpha": alpha,
                        "sure_pct": round(100 * sure / fields, 2),
                        "realized_pct": round(100 * errors / sure, 3) if sure else None})
    return out


def guarantee_check(fast: str, tables: Mapping[str, Mapping[str, pd.DataFrame]], calibration: Mapping[str, Any],
                    labels: Mapping[str, pd.DataFrame], ensemble: Mapping[str, Any], normalize: Mapping[str, Any],
                    recalibrate: bool, start_rate: float, alpha: float) -> dict[str, Any]:
    """The guarantee training fits at ``alpha`` on both levels (``fit_guarantees`` on the train
    forms, as ``fit_fieldreader_ensemble_guarantees`` does), checked on validation: per level, per
    field and for all fields, and the FLA / normalized fields right after a person fixes the
    fields not marked sure."""
    from handwriting_pipeline.digitize.guarantee import fit_guarantees
    from handwriting_pipeline.ensemble.settings import EnsembleSettings
    from handwriting_pipeline.ensemble.trust import check_guarantee, trust_rows

    train = tables["train"]
    fitted = fit_guarantees(fast, train[fast], calibration, labels["train"], {m: t for m, t in train.items() if m != fast},
                            ensemble, {"value": alpha, "writing": alpha}, 0.1, normalize, start_rate, recalibrate)
    vote = EnsembleSettings.from_params(ensemble).vote
    vote = dataclasses.replace(vote, calibration={**vote.calibration, fast: dict(calibration)},
                               recalibration={**vote.recalibration, **fitted["recalibration"]})
    read = cascade_read(fast, tables["validation"], vote, ensemble)
    rows = trust_rows(labels["validation"], read, vote, dict(normalize))
    [entry] = fitted["guarantees"].values()
    out = {"confidence": "recalibrated" if fitted["recalibration"] else "vote", "start_rate": start_rate,
           "alpha": alpha, "choice": fitted["choice"].row() if fitted["choice"] else None, "levels": {}}
    for level, fit in entry.items():
        checked = check_guarantee(rows, fit, level)
        right = rows["written_right" if level == "writing" else "value_right"].astype(bool)
        limits = {k: (f or {}).get("threshold") for k, f in fit["fields"].items()}
        bar = rows["field"].map(limits).astype(float)
        conf = rows["written_conf" if level == "writing" else "value_conf"].astype(float).fillna(0.0)
        fixed = right | ~(conf >= bar).fillna(False).astype(bool)
        checked["after_review"] = {"fla": round(100 * float(fixed.groupby(rows["file_name"]).all().mean()), 2),
                                   "right_pct": round(100 * float(fixed.mean()), 2)}
        out["levels"][level] = checked
    return out


# --- report ---------------------------------------------------------------------------------------

NAMES = {"vote": "vote's own confidence", "digitize": "**as digitize applies it** (logistic: all, in the vote)",
         "logistic_basic": "logistic: basic (7 features)",
         "logistic_all": "logistic: all features (outside the vote)", "boosting_all": "gradient boosting: all features",
         "logistic_all_ambiguity": "logistic: all + ambiguity model"}


def _auc(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def _interval(gain: Sequence[float]) -> str:
    return f"{gain[0]:+.2f} [{gain[1]:+.2f}, {gain[2]:+.2f}]"


def markdown(result: Mapping[str, Any]) -> str:
    lines = [f"# Confidence model: does it know when a field is wrong? ({result['date']}, "
             f"{result['machine']['cpu_count']} CPUs)", "", f"`{result['command']}`", "",
             f"Fields of digitize's cascade ({result['fast']} out of fold, {', '.join(result['slow'])} on the forms it "
             f"escalates): {result['forms']['train']} train forms (cross-fitted, {FOLDS} folds: every choice) and "
             f"{result['forms']['validation']} validation forms (only reported; one form = "
             f"{100 / result['forms']['validation']:.1f} FLA points). Writing: the text is right as written (case and "
             f"dots included); value: its normalized value is right. After review: a person fixes the "
             f"{SHARES['writing']} % (writing) / {SHARES['value']} % (value) least sure fields. Gain: against the "
             "vote's own confidence, paired 95 % bootstrap interval over forms.", ""]
    for level, label in (("writing", f"FLA after {SHARES['writing']} % reviewed"),
                         ("value", f"% normalized fields right after {SHARES['value']} % reviewed")):
        lines += [f"## {level.capitalize()} level", "",
                  f"| model | AUC train | {label}, train | gain, train | AUC validation | {label}, validation | "
                  "gain, validation |", "|---|--:|--:|---|--:|--:|---|"]
        for name, m in result["models"].items():
            t, v = m["train"][level], m["validation"][level]
            lines.append(f"| {NAMES[name]} | {t['auc']:.3f} | {t['after_review']:.2f} | {_interval(t['gain'])} | "
                         f"{v['auc']:.3f} | {v['after_review']:.2f} | {_interval(v['gain'])} |")
        lines.append("")
    amb = result["ambiguity"]
    lines += ["## The ambiguity model", "",
              f"Trained on the train forms to predict that the two labelling passes disagree on a field "
              f"({amb['train_share']:.1f} % of train fields, {amb['validation_share']:.1f} % of validation fields). "
              "AUC of its prediction (train cross-fitted / validation) per field: "
              + ", ".join(f"{k} {_auc(a['train'])} / {_auc(a['validation'])}" for k, a in amb["auc"].items()) + ".", "",
              "## Where the guarantee's test sequence starts (train forms, half fits, half checks, 5 splits)", "",
              "| confidence | start rate | level | α % | sure % on the other half | realized error % |",
              "|---|--:|---|--:|--:|--:|"]
    for r in result["start_rate"]:
        realized = "–" if r["realized_pct"] is None else f"{r['realized_pct']:.2f}"
        lines.append(f"| {r['confidence']} | {r['start_rate']:g} | {r['level']} | {100 * r['alpha']:g} | "
                     f"{r['sure_pct']:.2f} | {realized} |")
    lines += ["", "## The guarantee digitize fits, checked on validation", "",
              "Fitted on the train forms (thresholds per field, Learn then Test, Clopper-Pearson, δ = 10 %); on "
              "validation: fields reviewed, errors among the sure ones, the realized error with its exact 95 % interval, "
              "and after a person fixes every field not marked sure: FLA and % of fields right (as written / in value).",
              "", "| level | α % | confidence | start rate | field | threshold | reviewed % | errors / sure | "
              "realized % [95 % CI] | ≤ α | FLA after review | % right after review |",
              "|---|--:|---|--:|---|--:|--:|--:|---|:-:|--:|--:|"]
    for level in ("value", "writing"):
        for g in result["guarantees"]:
            c = g["levels"][level]
            parts = [("**all**", c["all"], None)]
            if g["confidence"] == "recalibrated":
                parts += [(k, f, c["thresholds"].get(k)) for k, f in c["fields"].items()]
            for name, a, t in parts:
                ci = ("–" if a["realized"] is None else
                      f"{100 * a['realized']:.2f} [{100 * a['ci95'][0]:.2f}, {100 * a['ci95'][1]:.2f}]")
                holds = "–" if a["holds"] is None else ("yes" if a["holds"] else "no")
                after = (f"{c['after_review']['fla']:.2f} | {c['after_review']['right_pct']:.2f}" if name == "**all**"
                         else " | ")
                lines.append(f"| {level} | {100 * g['alpha']:g} | {g['confidence']} | {g['start_rate']:g} | {name} | "
                             f"{'' if name == '**all**' else ('–' if t is None else f'{t:.3f}')} | {a['review_pct']:.1f} | "
                             f"{a['errors']} / {a['sure']} | {ci} | {holds} | {after} |")
    choice = next((g["choice"] for g in result["guarantees"] if g["choice"]), None)
    if choice:
        lines += ["", f"Training's choice (on the train forms): recalibration {'on' if choice['on'] else 'off'}, "
                      f"FLA after {SHARES['writing']} % reviewed {choice['fla_without']:.2f} -> {choice['fla_with']:.2f}, "
                      f"gain {choice['gain']:+.2f} [{choice['low']:+.2f}, {choice['high']:+.2f}] on {choice['forms']} forms."]
    lines += ["", f"Measured in {result['minutes']:.1f} min.", ""]
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--fast", required=False, metavar="NAME=predictions.csv",
                        help="the fast reader's readings (out of fold on the train forms)")
    parser.add_argument("--slow", action="append", default=[], metavar="NAME=predictions.csv")
    parser.add_argument("--model", help="the fast reader's model folder (its vote calibration)")
    parser.add_argument("--out", default=str(OUT))
    parser.add_argument("--report", action="store_true", help="only rewrite the .md from the --out JSON")
    args = parser.parse_args(argv)
    if args.report:
        return rewrite_report(args.out, markdown)
    if not args.fast or not args.model:
        parser.error("--fast and --model are needed")
    from handwriting_pipeline.ensemble.settings import EnsembleSettings
    from handwriting_pipeline.fieldreader.labels import read_second_annotation
    from handwriting_pipeline.recorded_csv import read_predictions_csv
    from handwriting_pipeline.score import read_labels

    started = time.time()
    fast, _, path = args.fast.partition("=")
    tables = {fast: read_predictions_csv(Path(path), 1.0)}
    tables.update({n: read_predictions_csv(Path(p), 1.0) for n, _, p in (s.partition("=") for s in args.slow)})
    ensemble, normalize = settings()
    calibration = json.loads((Path(args.model) / "fieldreader.json").read_text())["calibration"]
    vote = EnsembleSettings.from_params(ensemble).vote
    vote = dataclasses.replace(vote, calibration={**vote.calibration, fast: calibration})
    second = read_second_annotation(SHARED / "second_annotation.csv")
    labels, split_tables, rows = {}, {}, {}
    for split in ("train", "validation"):
        table = read_labels(SHARED / split)
        names = set(table["file_name"]) & set(tables[fast]["file_name"])
        labels[split] = table[table["file_name"].isin(names)].reset_index(drop=True)
        split_tables[split] = {m: t[t["file_name"].isin(names)].reset_index(drop=True) for m, t in tables.items()}
        rows[split] = field_rows(labels[split], cascade_read(fast, split_tables[split], vote, ensemble), vote,
                                 normalize, second)
    from handwriting_pipeline.ensemble.vote import FEATURES

    train, validation = rows["train"], rows["validation"]
    own = {"writing": (train["written_conf"].astype(float).to_numpy(), validation["written_conf"].astype(float).to_numpy()),
           "value": (train["value_conf"].astype(float).to_numpy(), validation["value_conf"].astype(float).to_numpy())}
    candidates = {"vote": own, "digitize": digitize_scores(fast, rows, labels, split_tables, vote, ensemble, normalize),
                  "logistic_basic": model_scores(train, validation, BASIC, _logistic),
                  "logistic_all": model_scores(train, validation, FEATURES, _logistic),
                  "boosting_all": model_scores(train, validation, FEATURES, _boosting),
                  "logistic_all_ambiguity": model_scores(train, validation, FEATURES, _logistic, ambiguity=True)}
    models = {name: {split: {level: measure(rows[split], scores[level][i], own[level][i], level) for level in SHARES}
                     for i, split in enumerate(("train", "validation"))}
              for name, scores in candidates.items()}
    amb_train, amb_validation = with_ambiguity(train, validation, FEATURES)
    from sklearn.metrics import roc_auc_score

    def auc(table: pd.DataFrame) -> float | None:
        if table["ambiguous"].nunique() < 2:
            return None
        return round(float(roc_auc_score(table["ambiguous"], table["ambiguity"])), 4)

    ambiguity = {"train_share": 100 * float(train["ambiguous"].mean()),
                 "validation_share": 100 * float(validation["ambiguous"].mean()),
                 "auc": {k: {"train": auc(amb_train[amb_train["field"] == k]),
                             "validation": auc(amb_validation[amb_validation["field"] == k])}
                         for k in train["field"].unique()}}
    product = {"writing": candidates["logistic_all"]["writing"][0], "value": candidates["logistic_all"]["value"][0]}
    guarantees = [guarantee_check(fast, split_tables, calibration, labels, ensemble, normalize, recalibrate, rate, alpha)
                  for alpha in GUARANTEE_ALPHAS for recalibrate, rate in ((False, 0.0), (True, 0.5))]
    command = ("python benchmarks/review/confidence_model_benchmark.py --fast " + args.fast
               + "".join(f" --slow {s}" for s in args.slow) + f" --model {args.model}")
    result = {**machine(), "command": command, "fast": fast, "slow": [s.partition("=")[0] for s in args.slow],
              "forms": {s: int(r["file_name"].nunique()) for s, r in rows.items()}, "models": models,
              "ambiguity": ambiguity, "start_rate": start_rate_split(train, product, "recalibrated") + start_rate_split(
                  train, {"writing": own["writing"][0], "value": own["value"][0]}, "vote"),
              "guarantees": guarantees, "minutes": round((time.time() - started) / 60, 2)}
    write_results(Path(args.out), result, markdown(result))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
