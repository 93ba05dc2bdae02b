"""The vote's confidence recalibrated from richer features, fitted on labelled (train) forms.

The vote's own confidence is a posterior share; whether a field is right also shows in how many
engines read the same value, whether the gazetteer confirms or contradicts CITY/STATE/ZIP, the
validators and the best engine's calibrated probability
(:func:`~handwriting_pipeline.ensemble.vote.confidence_features`). :func:`fit_recalibration` fits
one scikit-learn logistic regression per field on those features; the result goes under
``ensemble.vote.recalibration["<engine>+<engine>"]`` and the vote uses it for forms read by exactly
that engine set. Fit it on forms none of the engines trained on (the field reader's held-out
train forms): ``benchmarks/review_benchmark.py`` does.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd

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


def fit_recalibration(rows: pd.DataFrame, c: float = 1.0) -> dict[str, dict[str, Any]]:
    """Per field: ``{"intercept": b, "coef": {feature: w}}`` of an L2 logistic regression
    (``C = c``) of ``right`` on :data:`FEATURES`; a field whose rows are all right or all wrong
    keeps a constant (its share, clipped)."""
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
    return out
