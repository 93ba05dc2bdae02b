"""The review curve: how much a person's work buys.

Sort every field of every form by the method's confidence, let a person fix the least confident
ones (the simulated reviewer types the gold value), and measure FLA and CBA after each share
``k`` % of the fields (k = 0 … 30). The inverse question - what share of the fields must be
reviewed to reach FLA 90 / 95 / 99 - is answered from the same ordering.

Pure functions over a *field table* (:func:`field_table`: one row per form and field of the
form's fields - the HSF form's by default - with gold, prediction and confidence); the evaluation
report, digitize's summary and the benchmarks call them. Ties in confidence are broken by form
and field name, so every number is deterministic.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import pandas as pd
from nltk import edit_distance

from handwriting_pipeline.fields import KEYS, NONE, clean_fields

SHARES: tuple[int, ...] = tuple(range(0, 31))   # % of fields reviewed
FLA_TARGETS: tuple[float, ...] = (90.0, 95.0, 99.0)
FIELD_COLUMNS = ["file_name", "field", "gold", "pred", "confidence", "distance", "length", "gold_length"]


def _confidence(value: Any) -> float:
    try:
        value = float(value)
    except (TypeError, ValueError):
        return math.nan
    return value


def field_table(labels: pd.DataFrame, predictions: pd.DataFrame, keys: Sequence[str] | None = None) -> pd.DataFrame:
    """One row per labelled form and field of ``keys`` (the form's fields; default the HSF
    form's): gold, pred, confidence (``<KEY>_conf``; NaN when the method gives none), edit
    distance and the CBA denominator. Forms without a prediction count as all "None" with
    confidence 0 (a person has to look at them first)."""
    keys = tuple(keys) if keys is not None else KEYS
    preds: dict[str, Mapping[str, Any]] = {}
    for row in predictions.to_dict("records"):
        preds.setdefault(row["file_name"], row)
    rows = []
    for label in labels.to_dict("records"):
        row = preds.get(label["file_name"])
        gold = clean_fields({k: label.get(k) for k in keys}, keys)
        pred = clean_fields({k: (row or {}).get(k) for k in keys}, keys)
        for key in keys:
            conf = _confidence((row or {}).get(f"{key}_conf")) if row is not None else 0.0
            g, p = gold[key], pred[key]
            rows.append({"file_name": label["file_name"], "field": key, "gold": g, "pred": p, "confidence": conf,
                         "distance": edit_distance(g, p), "length": max(len(g), len(p)), "gold_length": len(g)})
    return pd.DataFrame(rows, columns=FIELD_COLUMNS)


def has_confidences(fields: pd.DataFrame) -> bool:
    """Does the method give confidences? (A curve needs an order.) Yes when at least half of its
    read values (not "None") carry one; a field without one is reviewed first."""
    read = fields[fields["pred"] != NONE]
    return bool(len(read)) and read["confidence"].notna().mean() >= 0.5


def is_probability(fields: pd.DataFrame) -> bool:
    """Confidences on a 0-1 scale (a review threshold means something), not e.g. 0-100."""
    return bool(fields["confidence"].dropna().between(0.0, 1.0).all())


def review_order(fields: pd.DataFrame) -> pd.DataFrame:
    """The fields in the order a person reviews them: least confident first (missing = 0)."""
    order = fields.assign(_c=fields["confidence"].fillna(0.0))
    return order.sort_values(["_c", "file_name", "field"], kind="mergesort").drop(columns="_c").reset_index(drop=True)


class _Tally:
    """FLA and CBA of the forms while fields are fixed one by one."""

    def __init__(self, fields: pd.DataFrame) -> None:
        self.forms = sorted(set(fields["file_name"]))
        self.wrong = fields.groupby("file_name")["distance"].apply(lambda d: int((d > 0).sum())).to_dict()
        self.dist = fields.groupby("file_name")["distance"].sum().to_dict()
        self.length = fields.groupby("file_name")["length"].sum().to_dict()
        self.right = sum(1 for f in self.forms if self.wrong[f] == 0)
        self.cba_sum = sum(self._cba(f) for f in self.forms)

    def _cba(self, form: str) -> float:
        return 100.0 if self.length[form] == 0 else 100.0 - 100.0 * self.dist[form] / self.length[form]

    def fix(self, row: Mapping[str, Any]) -> None:
        form = row["file_name"]
        if row["distance"] == 0:
            return
        self.cba_sum -= self._cba(form)
        self.dist[form] -= row["distance"]
        self.length[form] += row["gold_length"] - row["length"]
        self.cba_sum += self._cba(form)
        self.wrong[form] -= 1
        self.right += self.wrong[form] == 0

    @property
    def fla(self) -> float:
        return 100.0 * self.right / len(self.forms) if self.forms else 0.0

    @property
    def cba(self) -> float:
        return self.cba_sum / len(self.forms) if self.forms else 0.0


def _steps(fields: pd.DataFrame) -> Iterable[tuple[int, _Tally, Mapping[str, Any] | None]]:
    """(fields fixed so far, the tally, the next field) for n = 0 … N."""
    tally = _Tally(fields)
    ordered = review_order(fields).to_dict("records")
    for n, row in enumerate(ordered):
        yield n, tally, row
        tally.fix(row)
    yield len(ordered), tally, None


def review_curve(fields: pd.DataFrame, shares: Sequence[float] = SHARES) -> pd.DataFrame:
    """FLA / CBA after a person fixes the ``k`` % least-confident fields, for each k in ``shares``.

    Returns columns ``review_pct, fields_reviewed, errors_fixed, errors_left, FLA, CBA``."""
    n_fields = len(fields)
    counts = {k: int(round(k / 100.0 * n_fields)) for k in shares}
    errors = int((fields["distance"] > 0).sum())
    at: dict[int, tuple[int, float, float]] = {}
    fixed = 0
    for n, tally, row in _steps(fields):
        if n in counts.values():
            at[n] = (fixed, round(tally.fla, 2), round(tally.cba, 2))
        if n >= max(counts.values(), default=0):
            break
        fixed += bool(row is not None and row["distance"] > 0)
    rows = [{"review_pct": k, "fields_reviewed": n, "errors_fixed": at[n][0], "errors_left": errors - at[n][0],
             "FLA": at[n][1], "CBA": at[n][2]} for k, n in counts.items()]
    return pd.DataFrame(rows, columns=["review_pct", "fields_reviewed", "errors_fixed", "errors_left", "FLA", "CBA"])


def share_to_reach(fields: pd.DataFrame, targets: Sequence[float] = FLA_TARGETS) -> dict[str, float | None]:
    """The smallest share (%) of fields a person reviews, least confident first, for FLA ≥ each
    target (``{"FLA_95": 12.4, ...}``; reviewing every field always reaches 100)."""
    out: dict[str, float | None] = {f"FLA_{t:g}": None for t in targets}
    n_fields = len(fields)
    if not n_fields:
        return out
    left = sorted(targets)
    for n, tally, _ in _steps(fields):
        while left and tally.fla >= left[0] - 1e-9:
            out[f"FLA_{left.pop(0):g}"] = round(100.0 * n / n_fields, 2)
        if not left:
            break
    return out


def threshold_review(fields: pd.DataFrame, threshold: float) -> dict[str, Any]:
    """What sending every field below ``threshold`` to a person gives: fields sent (count and
    %), wrong fields caught / missed, FLA and CBA before and after."""
    doubtful = fields["confidence"].fillna(0.0) < threshold
    wrong = fields["distance"] > 0
    tally = _Tally(fields)
    before = (tally.fla, tally.cba)
    for row in fields[doubtful].to_dict("records"):
        tally.fix(row)
    n = len(fields)
    return {"threshold": threshold, "fields": n, "fields_to_review": int(doubtful.sum()),
            "review_pct": round(100.0 * doubtful.sum() / n, 2) if n else 0.0,
            "errors": int(wrong.sum()), "errors_caught": int((wrong & doubtful).sum()),
            "errors_missed": int((wrong & ~doubtful).sum()),
            "FLA_before": round(before[0], 2), "CBA_before": round(before[1], 2),
            "FLA_after": round(tally.fla, 2), "CBA_after": round(tally.cba, 2)}


def review_load(confidences: Iterable[Any], threshold: float) -> dict[str, Any]:
    """Unlabelled forms (digitize): how many fields fall below ``threshold``, count and %."""
    values = [_confidence(c) for c in confidences]
    n = len(values)
    below = sum(1 for c in values if not c >= threshold)  # missing confidence: review
    return {"review_threshold": threshold, "fields": n, "fields_to_review": below,
            "fields_to_review_pct": round(100.0 * below / n, 2) if n else 0.0}


# --------------------------------------------------------------------------- many methods
def method_curves(labels: pd.DataFrame, predictions: Mapping[str, pd.DataFrame],
                  shares: Sequence[float] = SHARES, threshold: float | None = None,
                  keys: Sequence[str] | None = None) -> dict[str, dict[str, Any]]:
    """Every method that gives confidences: its curve (records of :func:`review_curve`), the shares
    for the FLA targets and (with ``threshold``, for 0-1 confidences) what it sends to review - plain JSON
    (the evaluation's review_curve.json). Methods without confidences are left out. ``keys``: the
    form's fields (default the HSF form's)."""
    out = {}
    for method, table in predictions.items():
        if table is None or table.empty:
            continue
        fields = field_table(labels, table, keys)
        if not has_confidences(fields):
            continue
        sent = threshold_review(fields, threshold) if threshold is not None and is_probability(fields) else None
        out[method] = {"curve": review_curve(fields, shares).to_dict("records"), "to_reach": share_to_reach(fields),
                       "threshold": sent}
    return out


def curves_markdown(curves: Mapping[str, Mapping[str, Any]], shown: Sequence[int] = (0, 5, 10, 15, 20, 25, 30)) -> str:
    """The review curves as markdown: FLA (CBA) per reviewed share, and the share for each target."""
    if not curves:
        return "No method gave per-field confidences, so there is no review curve.\n"
    lines = ["FLA (CBA) after a person fixes the k % least-confident fields (sorted by the method's own confidence):",
             "", "| method | " + " | ".join(f"{k} %" for k in shown) + " |", "|---|" + "--:|" * len(shown)]
    for method, item in curves.items():
        curve = pd.DataFrame(item["curve"]).set_index("review_pct")
        cells = [f"{curve.loc[k, 'FLA']:.1f} ({curve.loc[k, 'CBA']:.1f})" if k in curve.index else "" for k in shown]
        lines.append(f"| {method} | " + " | ".join(cells) + " |")
    targets = list(next(iter(curves.values()))["to_reach"])
    lines += ["", "Share of fields to review (least confident first) to reach:", "",
              "| method | " + " | ".join(t.replace("_", " ≥ ") for t in targets) + " | review threshold: fields sent"
              " | wrong fields caught |", "|---|" + "--:|" * (len(targets) + 2)]
    for method, item in curves.items():
        reach = [f"{item['to_reach'][t]:.1f} %" if item["to_reach"][t] is not None else "—" for t in targets]
        th = item.get("threshold")
        sent = f"{th['fields_to_review']} ({th['review_pct']:.1f} %) at < {th['threshold']:g}" if th else ""
        caught = f"{th['errors_caught']} of {th['errors']}" if th else ""
        lines.append(f"| {method} | " + " | ".join(reach) + f" | {sent} | {caught} |")
    return "\n".join(lines) + "\n"


def plot_curves(curves: Mapping[str, Mapping[str, Any]], targets: Sequence[float] = (95.0,)) -> Any:
    """FLA against the share of fields reviewed, one line per method (a matplotlib Figure)."""
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2))
    for method, item in curves.items():
        curve = pd.DataFrame(item["curve"])
        ax.plot(curve["review_pct"], curve["FLA"], marker=".", label=method)
    for target in targets:
        ax.axhline(target, color="grey", linestyle=":", linewidth=1)
    ax.set_xlabel("fields reviewed by a person, least confident first (%)")
    ax.set_ylabel("FLA after review (%)")
    ax.set_title("Review curve")
    ax.set_ylim(0, 100)
    ax.grid(alpha=0.3)
    if curves:
        ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    return fig
