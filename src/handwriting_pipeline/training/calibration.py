"""Per-field confidence calibration for the vote, fitted on labelled training forms.

:func:`fit_calibration` turns an engine's per-field confidences into P(value right apart from
letter case) (logistic regression) plus P(right | the engine said "None") and P(case kept);
written into ``ensemble.vote.calibration`` or shipped with a trained model (the field reader's
``fieldreader.json``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
import pandas as pd

from handwriting_pipeline.fields import KEYS, NONE, clean_fields, repair_fields, row_fields
from handwriting_pipeline.fields.formspec import FormSpec, is_hsf_layout


def _logistic_fit(x: np.ndarray, y: np.ndarray, l2: float = 1e-2) -> tuple[float, float]:
    """Intercept and slope of P(y=1|x) = sigmoid(a + b x) with a small L2 penalty on both.

    scikit-learn's ``LogisticRegression`` on the columns [1, x] without its own (unpenalised)
    intercept, ``C = 1 / l2``: the objective of the Newton fit used before (log-loss +
    l2/2 * (a^2 + b^2)); refitting the train forms gives the committed calibration to the digit.
    """
    from sklearn.linear_model import LogisticRegression

    if len(np.unique(y)) < 2:  # every reading right (or every one wrong): sklearn cannot fit that
        p = (float(np.sum(y)) + 1.0) / (len(y) + 2.0)  # the smoothed rate, independent of the confidence
        return float(np.log(p / (1.0 - p))), 0.0
    X = np.column_stack([np.ones_like(x), x])
    model = LogisticRegression(C=1.0 / l2, fit_intercept=False, tol=1e-12, max_iter=1000).fit(X, y)
    return float(model.coef_[0, 0]), float(model.coef_[0, 1])


def _fields_of(form: FormSpec | None) -> tuple[tuple[str, ...], Callable[[Mapping[str, Any]], dict[str, str]]]:
    """(the fields calibrated, a row's values of them): the HSF form's four
    (:func:`row_fields`), else every field of the spec."""
    if is_hsf_layout(form):
        return KEYS, row_fields
    keys = form.keys
    return keys, lambda row: clean_fields({k: row.get(k) for k in keys}, keys)


def fit_calibration(labels: pd.DataFrame, predictions: Mapping[str, pd.DataFrame], repair: bool = True,
                    form: FormSpec | None = None) -> dict:
    """Per engine and field: P(value right apart from letter case) as a logistic function of
    its confidence, and how often the engine keeps the writer's case.

    Args:
        labels: labelled forms (``file_name`` + the form's fields), e.g. the train split.
        predictions: ``{engine: predictions table}`` on (some of) those forms.
        repair: score the repaired values (:func:`repair_fields`), as the vote will use them
            (the HSF layout; another form's values are scored as read).
        form: the form spec read (None: the HSF form); every field of the spec is calibrated.

    Returns:
        ``{engine: {KEY: {"a": .., "b": .., "p_none": .., "case": .., "n": ..}}}`` for
        ``ensemble.vote.calibration``; ``p_none`` is the smoothed share of right answers when the
        engine said "None", ``case`` the smoothed P(exact case | right apart from case).
    """
    keys, fields_of = _fields_of(form)
    repaired = repair and is_hsf_layout(form)
    gold = {r["file_name"]: fields_of(r) for r in labels.to_dict("records")}
    out: dict[str, dict] = {}
    for engine, frame in predictions.items():
        rows = [r for r in frame.to_dict("records") if r["file_name"] in gold]
        if not rows:
            continue
        out[engine] = {}
        read = {r["file_name"]: repair_fields(fields_of(r)) if repaired else fields_of(r) for r in rows}
        for key in keys:
            found_x, found_y, none_y, exact_y = [], [], [], []
            for r in rows:
                value = read[r["file_name"]][key]
                truth = gold[r["file_name"]][key]
                conf = r.get(f"{key}_conf")
                if value == NONE:
                    none_y.append(float(truth == NONE))
                else:
                    found_x.append(np.nan if conf is None else float(conf))
                    found_y.append(float(value.upper() == truth.upper()))
                    if found_y[-1]:
                        exact_y.append(float(value == truth))
            x = np.asarray(found_x, dtype=float)
            x = np.where(np.isnan(x), np.nanmean(x) if np.isfinite(x).any() else 0.5, x)
            a, b = _logistic_fit(x, np.asarray(found_y, dtype=float)) if len(x) >= 10 else (0.0, 0.0)
            out[engine][key] = {
                "a": round(a, 4), "b": round(b, 4),
                "p_none": round((sum(none_y) + 1) / (len(none_y) + 2), 4),
                "case": round((sum(exact_y) + 1) / (len(exact_y) + 2), 4), "n": len(rows),
            }
    return out
