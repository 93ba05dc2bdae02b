"""The vote's confidence recalibrated from richer features, fitted on labelled (train) forms.

The vote's own confidence is a posterior share; whether a field is right also shows in how many
engines read the same value, whether the gazetteer confirms or contradicts CITY/STATE/ZIP, the
validators and the best engine's calibrated probability
(:func:`~handwriting_pipeline.ensemble.vote.confidence_features`). :func:`fit_recalibration` fits
one scikit-learn logistic regression per field on those features; the result goes under
``ensemble.vote.recalibration["<engine>+<engine>"]`` and the vote uses it for forms read by exactly
that engine set. Fit it on forms none of the engines trained on (the field reader's held-out
train forms): ``benchmarks/review_benchmark.py`` does.

Training with cross-fitting fits it on the out-of-fold forms instead
(:func:`crossfit_recalibration`, called by :mod:`handwriting_pipeline.digitize.guarantee`): one
recalibration per engine set the cascade meets, and - for the guarantee thresholds, which must
be fitted on confidences of forms the recalibration never saw - every form's fields voted with
the recalibration of the other folds' forms (cross-fitting, as the fold readers themselves).
Measured against the vote's own confidence in ``benchmarks/review/confidence_model_benchmark.py``.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from handwriting_pipeline.ensemble.settings import VoteSettings
from handwriting_pipeline.ensemble.vote import FEATURES, confidence_features, engine_fields, vote_form, vote_params
from handwriting_pipeline.fields import CONTRADICTION_FIELDS, KEYS, clean_fields
from handwriting_pipeline.predictions import readings_by_form


def feature_rows(labels: pd.DataFrame, tables: Mapping[str, pd.DataFrame], params: Mapping[str, Any]) -> pd.DataFrame:
    """One row per labelled form and field: the features, ``right`` (the vote's value equals the
    label exactly) and ``engines`` (the engine set that read the form)."""
    params = dataclasses.replace(vote_params(params), recalibration={},  # the confidence as vote_form sees it
                                 contradiction={kind: 1.0 for kind in CONTRADICTION_FIELDS})
    gold = {row["file_name"]: clean_fields({k: row[k] for k in KEYS}) for row in labels.to_dict("records")}
    rows = []
    for name, readings in readings_by_form({m: t for m, t in tables.items() if t is not None and len(t)}).items():
        if name not in gold or not readings:
            continue
        fields, conf, _ = vote_form(readings, params)
        features = confidence_features(engine_fields(readings, params), fields, conf, readings, params)
        for key in KEYS:
            rows.append({"file_name": name, "field": key, "engines": "+".join(sorted(readings)),
                         "right": fields[key] == gold[name][key], **features[key]})
    return pd.DataFrame(rows)


def fit_recalibration(rows: pd.DataFrame, c: float = 1.0, weighs_contradiction: bool = False) -> dict[str, dict[str, Any]]:
    """Per field: ``{"intercept": b, "coef": {feature: w}}`` of an L2 logistic regression
    (``C = c``) of ``right`` on :data:`FEATURES`; a field whose rows are all right or all wrong
    keeps a constant (its share, clipped). ``weighs_contradiction``: the vote then leaves out its
    contradiction factor for these fields (the regression weighs ``contradicted`` itself;
    multiplying the factor in as well counts the gazetteer twice)."""
    from sklearn.linear_model import LogisticRegression

    out = {}
    for key in KEYS:
        part = rows[rows["field"] == key]
        y = part["right"].astype(int).to_numpy()
        if len(set(y)) < 2:
            share = min(0.98, max(0.02, float(y.mean()) if len(y) else 0.5))
            out[key] = {"intercept": float(np.log(share / (1 - share))), "coef": {f: 0.0 for f in FEATURES}}
            continue
        model = LogisticRegression(C=c, max_iter=2000).fit(part[list(FEATURES)].to_numpy(float), y)
        out[key] = {"intercept": round(float(model.intercept_[0]), 4),
                    "coef": {f: round(float(w), 4) for f, w in zip(FEATURES, model.coef_[0])}}
    if weighs_contradiction:
        out = {key: {**model, "weighs_contradiction": True} for key, model in out.items()}
    return out


def fit_by_engine_set(rows: pd.DataFrame, c: float = 1.0) -> dict[str, dict[str, Any]]:
    """``{engine set: recalibration}``: :func:`fit_recalibration` on each engine set's rows of
    :func:`feature_rows` (the key :func:`~handwriting_pipeline.ensemble.vote.vote_form` looks up),
    weighing the gazetteer's contradiction itself."""
    return {engines: fit_recalibration(part, c, weighs_contradiction=True)
            for engines, part in rows.groupby("engines", sort=True)}


def form_folds(names: Sequence[str], folds: int = 5, seed: int = 0) -> dict[str, int]:
    """Each form's fold (0 .. folds-1), forms shuffled with ``seed``: fields of one form stay together."""
    from sklearn.model_selection import KFold

    unique = sorted(set(names))
    out = {}
    for fold, (_, test) in enumerate(KFold(folds, shuffle=True, random_state=seed).split(unique)):
        out.update({unique[i]: fold for i in test})
    return out


def crossfit_recalibration(labels: pd.DataFrame, read_as: Sequence[Mapping[str, pd.DataFrame]],
                           params: Mapping[str, Any] | VoteSettings, folds: int = 5, seed: int = 0,
                           c: float = 1.0) -> tuple[dict[str, Any], dict[int, dict[str, Any]], dict[str, int]]:
    """The recalibration of every engine set in ``read_as`` (each a ``{engine: table}`` of the
    labelled forms as that engine set reads them, e.g. the fast reader alone and the fast reader
    with the engines it escalates to), fitted on all forms, and per fold the one fitted on the
    other folds' forms.

    Returns ``(recalibration on all forms, {fold: recalibration without it}, {form: fold})``.
    """
    rows = pd.concat([feature_rows(labels, dict(tables), params) for tables in read_as], ignore_index=True)
    fold_of = form_folds(rows["file_name"].tolist(), folds, seed)
    rows["fold"] = rows["file_name"].map(fold_of)
    per_fold = {k: fit_by_engine_set(rows[rows["fold"] != k], c) for k in range(folds)}
    return fit_by_engine_set(rows, c), per_fold, fold_of
