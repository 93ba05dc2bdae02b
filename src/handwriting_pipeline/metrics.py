"""The article's metrics, in one place: FLA, CBA (total and per key) and coverage.

* FLA  - % of forms whose four values all equal the gold values exactly.
* CBA  - per form ``100 - 100 * sum_k lev(gold_k, pred_k) / sum_k max(len(gold_k), len(pred_k))``
  (the article's ``dict_distance`` with ``nltk.edit_distance``), averaged over forms.
* coverage - % of forms whose prediction has all four keys with a value other than "None".
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd
from nltk import edit_distance

from handwriting_pipeline.fields import KEYS, NONE, clean_fields


def _pair(gold: Mapping[str, str], pred: Mapping[str, str], key: str) -> tuple[int, int]:
    g, p = str(gold[key]).strip(), str(pred[key]).strip()
    return edit_distance(g, p), max(len(g), len(p))


def cba(gold: Mapping[str, str], pred: Mapping[str, str], keys: tuple[str, ...] = KEYS) -> float:
    """Character-based accuracy of one form, in percent (100 = identical)."""
    gold, pred = clean_fields(gold), clean_fields(pred)
    dist = total = 0
    for key in keys:
        d, n = _pair(gold, pred, key)
        dist, total = dist + d, total + n
    return 100.0 if total == 0 else 100.0 - 100.0 * dist / total


def exact(gold: Mapping[str, str], pred: Mapping[str, str]) -> bool:
    """All four fields exactly equal (after stripping surrounding spaces)."""
    gold, pred = clean_fields(gold), clean_fields(pred)
    return all(gold[k] == pred[k] for k in KEYS)


def covered(pred: Mapping[str, str]) -> bool:
    """All four keys present with a value other than "None"."""
    pred = clean_fields(pred)
    return all(pred[k] != NONE for k in KEYS)


def score_form(gold: Mapping[str, str], pred: Mapping[str, str]) -> dict[str, float]:
    """Per-form scores: exact (0/1), CBA, CBA per key and coverage (0/1)."""
    row = {"exact": float(exact(gold, pred)), "CBA": cba(gold, pred), "covered": float(covered(pred))}
    for key in KEYS:
        row[f"CBA_{key}"] = cba(gold, pred, keys=(key,))
    return row


def score_forms(labels: pd.DataFrame, predictions: pd.DataFrame) -> pd.DataFrame:
    """Score every labelled form; forms without a prediction count as all "None".

    Args:
        labels: one row per form, columns ``file_name`` + KEYS.
        predictions: one row per form, columns ``file_name`` + KEYS (extra columns ignored).

    Returns:
        ``labels.file_name`` order, columns file_name, has_prediction, exact, CBA, CBA_<KEY>,
        covered.
    """
    preds = {row["file_name"]: row for row in predictions.to_dict("records")}
    rows = []
    for gold in labels.to_dict("records"):
        pred = preds.get(gold["file_name"])
        scores = score_form(gold, pred if pred is not None else {})
        rows.append({"file_name": gold["file_name"], "has_prediction": pred is not None, **scores})
    return pd.DataFrame(rows)


def aggregate(per_form: pd.DataFrame) -> dict[str, float]:
    """FLA, CBA, CBA per key and coverage (percent) over the forms of :func:`score_forms`."""
    if per_form.empty:
        return {"n": 0, "FLA": float("nan"), "CBA": float("nan"),
                **{f"CBA_{k}": float("nan") for k in KEYS}, "coverage": float("nan")}
    out = {"n": int(len(per_form)), "FLA": 100.0 * per_form["exact"].mean(), "CBA": per_form["CBA"].mean()}
    for key in KEYS:
        out[f"CBA_{key}"] = per_form[f"CBA_{key}"].mean()
    out["coverage"] = 100.0 * per_form["covered"].mean()
    return out
