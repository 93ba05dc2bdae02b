"""The article's metrics, in one place: FLA, CBA (total and per key) and coverage.

* FLA  - % of forms whose four values all equal the gold values exactly.
* CBA  - per form ``100 - 100 * sum_k lev(gold_k, pred_k) / sum_k max(len(gold_k), len(pred_k))``
  (the article's ``dict_distance`` with ``nltk.edit_distance``), averaged over forms.
* coverage - % of forms whose prediction has all four keys with a value other than "None".

Every function takes the form's fields as ``keys`` (a form spec's ``keys``; default: the HSF
form's four, :data:`handwriting_pipeline.fields.KEYS`), so the same metrics and tables
(:func:`metric_columns`) serve any form. Normalized fields: the HSF form's columns
(:func:`score_forms_normalized`) or, on any form, per field type (:func:`score_forms_typed`).

Values are compared after :func:`handwriting_pipeline.fields.clean_fields` (surrounding spaces
stripped, runs of whitespace -> one space, empty/missing -> "None"; case and punctuation kept),
the same cleaning every predictions table and every label goes through.

This module also holds what the evaluation pipeline and ``python -m handwriting_pipeline.score``
share: matching predictions to labelled forms
(:func:`evaluate_method`), the per-field error table and the metrics table (:data:`METRIC_COLUMNS`).

Floor 1. May import: floor 0 (``fields``, ``registry``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
from nltk import edit_distance

from handwriting_pipeline.fields import KEYS, NONE, clean_fields
from handwriting_pipeline.fields.formspec import FormSpec
from handwriting_pipeline.fields.normalize import NORMALIZED_COLUMNS, NORMALIZED_FIELD, normalize_record
from handwriting_pipeline.fields.types import form_context, type_of
from handwriting_pipeline.registry import (  # noqa: F401 - re-exported
    all_methods,
    engine_methods,
    ensemble_methods,
    method_list,
    predictions_dataset,
)

# --------------------------------------------------------------------------- methods
# The method lists live in :mod:`handwriting_pipeline.registry`; ``ENGINE_METHODS``,
# ``ENSEMBLE_METHODS`` and ``METHODS`` are read from it when asked (an engine registered later,
# e.g. by a test, is included).


def __getattr__(name: str) -> Any:
    if name == "ENGINE_METHODS":
        return engine_methods()
    if name == "ENSEMBLE_METHODS":
        return ensemble_methods()
    if name == "METHODS":
        return all_methods()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --------------------------------------------------------------------------- one form
def _pair(gold: Mapping[str, str], pred: Mapping[str, str], key: str) -> tuple[int, int]:
    g, p = str(gold[key]).strip(), str(pred[key]).strip()
    return edit_distance(g, p), max(len(g), len(p))


def cba(gold: Mapping[str, str], pred: Mapping[str, str], keys: tuple[str, ...] = KEYS,
        form_keys: tuple[str, ...] = KEYS) -> float:
    """Character-based accuracy of one form over ``keys``, in percent (100 = identical);
    ``form_keys``: the form's fields (default the HSF form's four)."""
    gold, pred = clean_fields(gold, form_keys), clean_fields(pred, form_keys)
    dist = total = 0
    for key in keys:
        d, n = _pair(gold, pred, key)
        dist, total = dist + d, total + n
    return 100.0 if total == 0 else 100.0 - 100.0 * dist / total


def exact(gold: Mapping[str, str], pred: Mapping[str, str], keys: tuple[str, ...] = KEYS) -> bool:
    """All the form's fields (default the HSF form's four) exactly equal (after stripping
    surrounding spaces)."""
    gold, pred = clean_fields(gold, keys), clean_fields(pred, keys)
    return all(gold[k] == pred[k] for k in keys)


def covered(pred: Mapping[str, str], keys: tuple[str, ...] = KEYS) -> bool:
    """All the form's keys present with a value other than "None"."""
    pred = clean_fields(pred, keys)
    return all(pred[k] != NONE for k in keys)


def score_form(gold: Mapping[str, str], pred: Mapping[str, str], keys: tuple[str, ...] = KEYS) -> dict[str, float]:
    """Per-form scores: exact (0/1), CBA, CBA per key and coverage (0/1) over the form's ``keys``."""
    row = {"exact": float(exact(gold, pred, keys)), "CBA": cba(gold, pred, keys, keys),
           "covered": float(covered(pred, keys))}
    for key in keys:
        row[f"CBA_{key}"] = cba(gold, pred, keys=(key,), form_keys=keys)
    return row


def _fields(row: Mapping[str, object] | None, keys: tuple[str, ...] = KEYS) -> dict[str, object]:
    """Only the form's value columns of a table row (``DATE_conf`` & co. must never be read as
    a value: :func:`clean_fields` maps noisy keys, so ``DATE_conf`` would otherwise fill an
    empty DATE)."""
    if row is None:
        return {}
    return {k: row.get(k) for k in keys}


# --------------------------------------------------------------------------- many forms
def first_prediction_per_form(predictions: pd.DataFrame) -> dict[str, dict]:
    """file_name -> its first predictions row (a repeated name keeps its first answer)."""
    preds: dict[str, dict] = {}
    for row in predictions.to_dict("records"):
        preds.setdefault(row["file_name"], row)
    return preds


def score_forms(labels: pd.DataFrame, predictions: pd.DataFrame, keys: tuple[str, ...] = KEYS) -> pd.DataFrame:
    """Score every labelled form; forms without a prediction count as all "None".

    Args:
        labels: one row per form, columns ``file_name`` + ``keys``.
        predictions: one row per form, columns ``file_name`` + ``keys`` (extra columns ignored;
            when a name repeats, its first row is used).
        keys: the form's fields (default: the HSF form's four).

    Returns:
        ``labels.file_name`` order, columns file_name, has_prediction, exact, CBA, CBA_<KEY>,
        covered.
    """
    preds = first_prediction_per_form(predictions)
    rows = []
    for gold in labels.to_dict("records"):
        pred = preds.get(gold["file_name"])
        scores = score_form(_fields(gold, keys), _fields(pred, keys), keys)
        rows.append({"file_name": gold["file_name"], "has_prediction": pred is not None, **scores})
    columns = ["file_name", "has_prediction", "exact", "CBA", "covered", *(f"CBA_{k}" for k in keys)]
    return pd.DataFrame(rows, columns=columns)


def aggregate(per_form: pd.DataFrame, keys: tuple[str, ...] = KEYS) -> dict[str, float]:
    """FLA, CBA, CBA per key and coverage (percent) over the forms of :func:`score_forms`."""
    if per_form.empty:
        return {"n": 0, "FLA": float("nan"), "CBA": float("nan"),
                **{f"CBA_{k}": float("nan") for k in keys}, "coverage": float("nan")}
    out = {"n": int(len(per_form)), "FLA": 100.0 * per_form["exact"].mean(), "CBA": per_form["CBA"].mean()}
    for key in keys:
        out[f"CBA_{key}"] = per_form[f"CBA_{key}"].mean()
    out["coverage"] = 100.0 * per_form["covered"].mean()
    return out


# --------------------------------------------------------------------------- matching
@dataclass
class MatchReport:
    """How a predictions table lines up with the labelled forms.

    ``missing``: labelled forms with no prediction (scored as all "None");
    ``unknown``: predicted names that are not labelled forms (ignored);
    ``duplicates``: names predicted more than once (first row used).
    """

    n_labels: int
    n_predictions: int
    missing: list[str] = field(default_factory=list)
    unknown: list[str] = field(default_factory=list)
    duplicates: list[str] = field(default_factory=list)

    @property
    def matched(self) -> int:
        """Labelled forms that have a prediction."""
        return self.n_labels - len(self.missing)

    def summary(self, method: str = "", examples: int = 5) -> list[str]:
        """Human-readable lines about missing / unknown / duplicate names (empty when clean),
        each starting with ``method: `` when a method is given."""
        prefix = f"{method}: " if method else ""
        lines = []
        if self.missing:
            lines.append(
                f"{prefix}{self.matched} of {self.n_labels} labelled forms have a prediction; "
                f"{len(self.missing)} without one count as all \"None\"{_examples(self.missing, examples)}"
            )
        if self.unknown:
            lines.append(
                f"{prefix}{len(self.unknown)} predictions for forms not in the labels were ignored"
                f"{_examples(self.unknown, examples)}"
            )
        if self.duplicates:
            lines.append(
                f"{prefix}{len(self.duplicates)} file names predicted more than once, first row used"
                f"{_examples(self.duplicates, examples)}"
            )
        return lines


def _examples(names: Sequence[str], limit: int) -> str:
    if limit <= 0 or not names:
        return ""
    shown = ", ".join(names[:limit])
    return f" ({shown}{', ...' if len(names) > limit else ''})"


def match_predictions(labels: pd.DataFrame, predictions: pd.DataFrame) -> MatchReport:
    """Compare the ``file_name`` columns of labels and predictions (see :class:`MatchReport`)."""
    label_names = labels["file_name"].astype(str).tolist()
    pred_names = predictions["file_name"].astype(str).tolist()
    label_set, pred_set = set(label_names), set(pred_names)
    dup = predictions["file_name"].astype(str).duplicated()
    return MatchReport(
        n_labels=len(label_names),
        n_predictions=len(pred_names),
        missing=[n for n in label_names if n not in pred_set],
        unknown=sorted(pred_set - label_set),
        duplicates=sorted(set(predictions["file_name"].astype(str)[dup])),
    )


def evaluate_method(labels: pd.DataFrame, predictions: pd.DataFrame,
                    keys: tuple[str, ...] = KEYS) -> tuple[pd.DataFrame, MatchReport]:
    """Per-form scores of one method on the labelled forms, and how its names matched.

    The one entry point the pipeline and the ``score`` command share: predictions for unknown
    forms are ignored, labelled forms without a prediction count as all "None", a repeated name
    uses its first row. ``keys``: the form's fields (default: the HSF form's four).
    """
    report = match_predictions(labels, predictions)
    return score_forms(labels, predictions, keys), report


def form_errors(labels: pd.DataFrame, predictions: pd.DataFrame, method: str = "",
                keys: tuple[str, ...] = KEYS) -> pd.DataFrame:
    """Every field of the form's ``keys`` (default: the HSF form's four) a method got wrong:
    method, file_name, field, gold, predicted, edit_distance, error (the method's error text for
    that form, or "no prediction" when it has no row)."""
    keys = tuple(keys)
    preds = first_prediction_per_form(predictions)
    rows = []
    for gold_row in labels.to_dict("records"):
        name = gold_row["file_name"]
        pred_row = preds.get(name)
        gold, pred = clean_fields(_fields(gold_row, keys), keys), clean_fields(_fields(pred_row, keys), keys)
        error = "no prediction" if pred_row is None else pred_row.get("error")
        if isinstance(error, float) and math.isnan(error):
            error = None
        for key in keys:
            if gold[key] != pred[key]:
                rows.append({"method": method, "file_name": name, "field": key, "gold": gold[key],
                             "predicted": pred[key], "edit_distance": edit_distance(gold[key], pred[key]),
                             "error": error})
    columns = ["method", "file_name", "field", "gold", "predicted", "edit_distance", "error"]
    return pd.DataFrame(rows, columns=columns)


# --------------------------------------------------------------------------- the table
def metric_columns(keys: tuple[str, ...] = KEYS) -> list[str]:
    """metrics.csv columns, in order, for a form's fields (:data:`METRIC_COLUMNS` on the HSF form)."""
    return ["method", "n", "FLA", "CBA", *(f"CBA_{k}" for k in keys), "coverage", "cost_usd", "seconds_per_form"]


#: metrics.csv columns of the HSF form, in order.
METRIC_COLUMNS: list[str] = metric_columns(KEYS)
#: Decimals kept in the metrics table (any ``CBA_<KEY>`` column: 2, :func:`_decimals`).
_DECIMALS = {**{c: 2 for c in ["FLA", "CBA", *(f"CBA_{k}" for k in KEYS), "coverage"]},
             "cost_usd": 4, "seconds_per_form": 3}


def _decimals(column: str) -> int | None:
    """Decimals kept for a metrics column (a per-field ``CBA_<KEY>`` of any form: 2)."""
    return _DECIMALS.get(column, 2 if column.startswith("CBA_") else None)


def metrics_row(method: str, per_form: pd.DataFrame, cost_usd: float = float("nan"),
                seconds_per_form: float = float("nan"), keys: tuple[str, ...] = KEYS) -> dict[str, object]:
    """One metrics.csv row: :func:`aggregate` of the per-form scores over the form's ``keys``
    (default: the HSF form's four) plus cost and time."""
    return {"method": method, **aggregate(per_form, keys), "cost_usd": cost_usd, "seconds_per_form": seconds_per_form}


def metrics_table(rows: Sequence[Mapping[str, object]], keys: tuple[str, ...] = KEYS) -> pd.DataFrame:
    """Rows of :func:`metrics_row` as a frame with exactly :func:`metric_columns` of the form's
    ``keys`` (:data:`METRIC_COLUMNS` on the HSF form), rounded."""
    columns = metric_columns(tuple(keys))
    table = pd.DataFrame(list(rows), columns=columns)
    table["method"] = table["method"].astype(str)
    table["n"] = pd.to_numeric(table["n"]).astype(int)
    for column in columns:
        decimals = _decimals(column)
        if decimals is not None:
            table[column] = pd.to_numeric(table[column], errors="coerce").astype(float).round(decimals)
    return table


def metrics_markdown(table: pd.DataFrame) -> str:
    """The metrics table as a GitHub markdown table (blank cells where cost/time are unknown)."""
    shown = table.astype(object)
    for column in shown.columns:
        decimals = _decimals(column)
        shown[column] = [None if pd.isna(v) else (f"{float(v):.{decimals}f}" if decimals is not None else str(v))
                         for v in shown[column]]
    align = ["left" if c == "method" else "right" for c in shown.columns]
    return shown.to_markdown(index=False, disable_numparse=True, missingval="", colalign=align)


# --------------------------------------------------------------------------- normalized fields
#: normalized_metrics.csv columns: as-written FLA, FLA ignoring case (``FLA_nocase``) and ignoring
#: case, punctuation and spaces (``FLA_loose``), % of forms whose normalized field equals the
#: normalized gold (DATE_iso, CITY_name, STATE_code, ZIP5), % of forms with all four right
#: (``FLA_normalized``) and % of forms whose predicted CITY, STATE and ZIP agree in the gazetteer
#: (``address_verified``).
NORMALIZED_METRIC_COLUMNS: list[str] = ["method", "n", "FLA", "FLA_nocase", "FLA_loose", "DATE_iso", "CITY_name",
                                        "STATE_code", "ZIP5", "FLA_normalized", "address_verified"]


def _loose(value: str) -> str:
    """A value with case, punctuation and spaces ignored ("Ky." == "KY", "St. Louis" == "ST LOUIS")."""
    return re.sub(r"[\W_]+", "", value.upper())


def exact_ignoring(gold: Mapping[str, str], pred: Mapping[str, str], punctuation: bool = False,
                   keys: tuple[str, ...] = KEYS) -> bool:
    """All the form's fields (default: the HSF form's four) equal ignoring case (and, with
    ``punctuation``, punctuation and spaces)."""
    gold, pred = clean_fields(gold, keys), clean_fields(pred, keys)
    key = _loose if punctuation else str.upper
    return all(key(gold[k]) == key(pred[k]) for k in keys)


def score_forms_normalized(labels: pd.DataFrame, predictions: pd.DataFrame,
                           options: Mapping[str, Any] | None = None) -> pd.DataFrame:
    """Per form: the prediction as written and normalized, the normalized gold, and what matches.

    Forms without a prediction count as all "None" (like :func:`score_forms`). Columns:
    file_name, has_prediction, exact, exact_nocase, exact_loose, the four written predicted
    fields, the predicted normalized columns (``normalize.NORMALIZED_COLUMNS``), the gold's
    normalized values as ``gold_<column>``, ``right_<column>`` for DATE_iso, CITY_name,
    STATE_code, ZIP5, ``right_normalized`` (all four) and ``address_verified``.
    """
    preds = first_prediction_per_form(predictions)
    rows = []
    for gold_row in labels.to_dict("records"):
        pred_row = preds.get(gold_row["file_name"])
        gold, pred = clean_fields(_fields(gold_row)), clean_fields(_fields(pred_row))
        norm_gold, norm_pred = normalize_record(gold, options), normalize_record(pred, options)
        right = {f"right_{c}": float(norm_gold[c] == norm_pred[c]) for c in NORMALIZED_FIELD.values()}
        rows.append({
            "file_name": gold_row["file_name"], "has_prediction": pred_row is not None,
            "exact": float(exact(gold, pred)), "exact_nocase": float(exact_ignoring(gold, pred)),
            "exact_loose": float(exact_ignoring(gold, pred, punctuation=True)), **pred, **norm_pred,
            **{f"gold_{c}": norm_gold[c] for c in NORMALIZED_COLUMNS if not c.endswith("_verified")},
            **right, "right_normalized": float(all(right.values())),
            "address_verified": float(all(norm_pred[f"{k}_verified"] for k in ("CITY", "STATE", "ZIP"))),
        })
    columns = ["file_name", "has_prediction", "exact", "exact_nocase", "exact_loose", *KEYS, *NORMALIZED_COLUMNS,
               *(f"gold_{c}" for c in NORMALIZED_COLUMNS if not c.endswith("_verified")),
               *(f"right_{c}" for c in NORMALIZED_FIELD.values()), "right_normalized", "address_verified"]
    return pd.DataFrame(rows, columns=columns)


def normalized_metrics_row(method: str, per_form: pd.DataFrame) -> dict[str, object]:
    """One normalized_metrics.csv row (percent) from :func:`score_forms_normalized`'s table."""
    def pct(column: str) -> float:
        return 100.0 * per_form[column].mean() if len(per_form) else float("nan")

    return {"method": method, "n": len(per_form), "FLA": pct("exact"), "FLA_nocase": pct("exact_nocase"),
            "FLA_loose": pct("exact_loose"), **{c: pct(f"right_{c}") for c in NORMALIZED_FIELD.values()},
            "FLA_normalized": pct("right_normalized"), "address_verified": pct("address_verified")}


def normalized_metrics_table(rows: Sequence[Mapping[str, object]]) -> pd.DataFrame:
    """Rows of :func:`normalized_metrics_row` as a frame with :data:`NORMALIZED_METRIC_COLUMNS`,
    rounded to 2 decimals."""
    table = pd.DataFrame(list(rows), columns=NORMALIZED_METRIC_COLUMNS)
    table["method"] = table["method"].astype(str)
    table["n"] = pd.to_numeric(table["n"]).astype(int)
    for column in NORMALIZED_METRIC_COLUMNS[2:]:
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float).round(2)
    return table


# --------------------------------------------------------------------------- normalized fields of any form
# The HSF form has the columns above (ISO date, gazetteer city, USPS code, ZIP5/ZIP4, the address
# check). Any other form is normalized per field type (:func:`handwriting_pipeline.fields.types.type_of`):
# one ``<KEY>_norm`` column per field.
def typed_metric_columns(keys: Sequence[str]) -> list[str]:
    """normalized_metrics.csv columns of a form normalized per field type: as-written FLA,
    ``FLA_nocase``, ``FLA_loose``, ``<KEY>_norm`` (% of forms whose field normalized by its type
    equals the normalized label) and ``FLA_normalized`` (every field)."""
    return ["method", "n", "FLA", "FLA_nocase", "FLA_loose", *(f"{k}_norm" for k in keys), "FLA_normalized"]


def _typed_values(spec: FormSpec, fields: Mapping[str, str]) -> dict[str, str | None]:
    """Each field normalized by its type, in the context of the form's other fields (None: no
    canonical form)."""
    context = form_context(spec, fields)
    return {f.name: type_of(f).normalize(fields[f.name], context) for f in spec.fields}


def _typed_right(gold: str, pred: str, norm_gold: str | None, norm_pred: str | None) -> bool:
    """Normalized values equal; where neither has a canonical form (blank, unreadable), the values
    as written must be equal (a blank label is matched by a blank reading only)."""
    if norm_gold is None and norm_pred is None:
        return gold == pred
    return norm_gold == norm_pred


def score_forms_typed(labels: pd.DataFrame, predictions: pd.DataFrame, spec: FormSpec) -> pd.DataFrame:
    """Per form of a form spec (:class:`~handwriting_pipeline.fields.formspec.FormSpec`): the
    prediction as written and normalized per field type, the normalized gold, and what matches.

    Forms without a prediction count as all "None" (like :func:`score_forms`). Columns:
    file_name, has_prediction, exact, exact_nocase, exact_loose, the written predicted fields,
    ``<KEY>_norm`` (the prediction normalized by its type, "" when it has no canonical form),
    ``gold_<KEY>_norm``, ``right_<KEY>`` (:func:`_typed_right`) and ``right_normalized`` (all).
    """
    keys = tuple(spec.keys)
    preds = first_prediction_per_form(predictions)
    rows = []
    for gold_row in labels.to_dict("records"):
        pred_row = preds.get(gold_row["file_name"])
        gold, pred = clean_fields(_fields(gold_row, keys), keys), clean_fields(_fields(pred_row, keys), keys)
        norm_gold, norm_pred = _typed_values(spec, gold), _typed_values(spec, pred)
        right = {f"right_{k}": float(_typed_right(gold[k], pred[k], norm_gold[k], norm_pred[k])) for k in keys}
        rows.append({
            "file_name": gold_row["file_name"], "has_prediction": pred_row is not None,
            "exact": float(exact(gold, pred, keys)), "exact_nocase": float(exact_ignoring(gold, pred, keys=keys)),
            "exact_loose": float(exact_ignoring(gold, pred, punctuation=True, keys=keys)), **pred,
            **{f"{k}_norm": norm_pred[k] or "" for k in keys}, **{f"gold_{k}_norm": norm_gold[k] or "" for k in keys},
            **right, "right_normalized": float(all(right.values())),
        })
    columns = ["file_name", "has_prediction", "exact", "exact_nocase", "exact_loose", *keys,
               *(f"{k}_norm" for k in keys), *(f"gold_{k}_norm" for k in keys), *(f"right_{k}" for k in keys),
               "right_normalized"]
    return pd.DataFrame(rows, columns=columns)


def typed_metrics_row(method: str, per_form: pd.DataFrame, keys: Sequence[str]) -> dict[str, object]:
    """One normalized_metrics.csv row (percent) from :func:`score_forms_typed`'s table."""
    def pct(column: str) -> float:
        return 100.0 * per_form[column].mean() if len(per_form) else float("nan")

    return {"method": method, "n": len(per_form), "FLA": pct("exact"), "FLA_nocase": pct("exact_nocase"),
            "FLA_loose": pct("exact_loose"), **{f"{k}_norm": pct(f"right_{k}") for k in keys},
            "FLA_normalized": pct("right_normalized")}


def typed_metrics_table(rows: Sequence[Mapping[str, object]], keys: Sequence[str]) -> pd.DataFrame:
    """Rows of :func:`typed_metrics_row` as a frame with :func:`typed_metric_columns`, rounded to 2
    decimals."""
    columns = typed_metric_columns(keys)
    table = pd.DataFrame(list(rows), columns=columns)
    table["method"] = table["method"].astype(str)
    table["n"] = pd.to_numeric(table["n"]).astype(int)
    for column in columns[2:]:
        table[column] = pd.to_numeric(table[column], errors="coerce").astype(float).round(2)
    return table
