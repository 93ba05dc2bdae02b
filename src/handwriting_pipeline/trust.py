"""How sure is "sure"? A confidence threshold with a guaranteed error rate among the fields above it.

A user who loads fields into a database without looking wants: "among the fields you call sure,
at most ``alpha`` are wrong - and I want that promise to hold with probability ``1 - delta``".
:func:`risk_threshold` picks that threshold from calibration fields (their confidence and whether
they were right) with **Learn then Test** (Angelopoulos, Bates, Candès, Jordan & Lei 2021,
"Learn then Test: Calibrating Predictive Algorithms to Achieve Risk Control",
arXiv:2110.01052): every candidate threshold ``t`` is a null hypothesis "the error rate among
fields with confidence >= t exceeds alpha", tested with the exact binomial (Clopper-Pearson)
bound; the thresholds are tested from high to low (fixed-sequence testing, so no multiplicity
correction is needed) and the sequence stops at the first one that cannot be rejected. The
lowest rejected threshold is returned: with probability at least ``1 - delta`` over the
calibration draw, the error rate among sure fields of new forms from the same distribution is at
most ``alpha``.

The calibration fields must come from forms the engines never trained on (held-out train forms,
:mod:`handwriting_pipeline.selection`); thresholds fitted on training forms promise nothing.

Floor 1. May import: floor 0 (nothing of it is needed) and scipy / numpy.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
from scipy.stats import beta

#: the thresholds tried by default, from high to low, fixed before any data is seen
DEFAULT_GRID: tuple[float, ...] = tuple(float(t) for t in np.round(np.linspace(1.0, 0.0, 1001), 3))


@dataclass(frozen=True)
class RiskThreshold:
    """The result of :func:`risk_threshold`.

    ``threshold`` is None when the calibration data cannot support ``alpha`` at ``delta`` (then
    no field may be called sure). ``n`` calibration fields, ``sure`` of them at or above the
    threshold (``share_sure`` = sure / n), ``errors`` wrong among them, ``bound`` the
    Clopper-Pearson upper ``1 - delta`` bound on the error rate among sure fields.
    """

    threshold: float | None
    alpha: float
    delta: float
    n: int
    sure: int
    share_sure: float
    errors: int
    bound: float

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def error_upper_bound(errors: int | np.ndarray, n: int | np.ndarray, delta: float) -> np.ndarray | float:
    """One-sided Clopper-Pearson upper ``1 - delta`` bound on an error rate from ``errors`` of
    ``n`` (1 when ``n`` is 0 or every one is wrong)."""
    errors, n = np.asarray(errors, dtype=float), np.asarray(n, dtype=float)
    with np.errstate(invalid="ignore", divide="ignore"):
        bound = beta.ppf(1.0 - delta, errors + 1.0, np.maximum(n - errors, 1e-300))
    bound = np.where((n <= 0) | (errors >= n), 1.0, bound)
    return float(bound) if bound.ndim == 0 else bound


def min_fields(alpha: float, delta: float) -> int:
    """The fewest sure fields whose bound can reach ``alpha`` at all (all of them right):
    ``(1 - alpha)^n <= delta``."""
    return max(1, math.ceil(math.log(delta) / math.log1p(-alpha)))


def start_fields(alpha: float, delta: float, start_rate: float = 0.0) -> int:
    """Where the fixed sequence starts: the fewest sure fields whose bound reaches ``alpha`` when
    a share ``start_rate * alpha`` of them is wrong (``start_rate`` 0: all right, :func:`min_fields`).

    A sequence that starts at the very first testable threshold stops at the first wrong field
    among the few surest ones (one error in the top 45 fields ends a 5 % test); starting where
    some errors can pass makes the test robust to that. The start depends on the counts only,
    never on which fields are right, so the guarantee stays exact."""
    if start_rate <= 0.0:
        return min_fields(alpha, delta)
    n = min_fields(alpha, delta)
    while error_upper_bound(math.floor(start_rate * alpha * n), n, delta) > alpha:
        n += max(1, n // 50)
    return n


def risk_threshold(scores: Sequence[float] | np.ndarray, correct: Sequence[bool] | np.ndarray, alpha: float,
                   delta: float = 0.1, thresholds: Sequence[float] | None = None,
                   start_rate: float = 0.0) -> RiskThreshold:
    """The lowest confidence threshold whose error rate among fields at or above it is at most
    ``alpha`` with probability ``1 - delta`` (Learn then Test, fixed-sequence, Clopper-Pearson).

    Args:
        scores: calibration fields' confidences (NaN counts as 0: never sure).
        correct: whether each calibration field was right.
        alpha: the accepted error rate among sure fields (0 < alpha < 1).
        delta: the accepted chance that the promise fails (0 < delta < 1; 0.1 = 90 % sure).
        thresholds: the candidate thresholds (default :data:`DEFAULT_GRID`, 1.0 down to 0.0 in
            steps of 0.001); tested from high to low whatever their order here.

    Returns:
        :class:`RiskThreshold`; ``threshold`` None when no threshold passes.

    Thresholds at which fewer than :func:`min_fields` calibration fields are sure cannot be
    rejected by any outcome and are skipped instead of ending the sequence (which fields they
    hold depends on the scores only, never on correctness; the test at each threshold stays a
    valid binomial test given its count).
    """
    if not 0.0 < alpha < 1.0 or not 0.0 < delta < 1.0:
        raise ValueError(f"alpha and delta must lie in (0, 1); got alpha={alpha}, delta={delta}")
    s = np.nan_to_num(np.asarray(scores, dtype=float), nan=0.0)
    wrong = ~np.asarray(correct, dtype=bool)
    if s.shape != wrong.shape:
        raise ValueError(f"{s.size} scores but {wrong.size} correctness values")
    n = int(s.size)
    grid = np.sort(np.unique(np.asarray(DEFAULT_GRID if thresholds is None else thresholds, dtype=float)))[::-1]
    # sure count and errors at every threshold (fields with score >= t), from sorted scores
    order = np.argsort(-s, kind="stable")
    cum_wrong = np.concatenate([[0], np.cumsum(wrong[order])])
    sure = np.searchsorted(-s[order], -grid, side="right")  # count of scores >= t
    errors = cum_wrong[sure]
    bounds = error_upper_bound(errors, sure, delta)
    need = start_fields(alpha, delta, start_rate)
    best = None
    for i in range(grid.size):
        if sure[i] < need:
            continue  # untestable: skipped, the sequence goes on
        if bounds[i] > alpha:
            break     # fixed-sequence testing: the first threshold not rejected ends it
        best = i
    if best is None:
        return RiskThreshold(None, alpha, delta, n, 0, 0.0, 0, 1.0)
    return RiskThreshold(float(grid[best]), alpha, delta, n, int(sure[best]),
                         round(float(sure[best]) / n, 6) if n else 0.0, int(errors[best]), float(bounds[best]))


def exact_interval(errors: int, n: int, level: float = 0.95) -> list[float | None]:
    """Exact (Clopper-Pearson) two-sided interval of the error rate ``errors / n`` ([None, None]
    when ``n`` is 0): how a realized rate is reported next to the promised alpha."""
    from scipy.stats import binomtest

    if n == 0:
        return [None, None]
    ci = binomtest(int(errors), int(n)).proportion_ci(level, method="exact")
    return [round(float(ci.low), 5), round(float(ci.high), 5)]


__all__ = ["DEFAULT_GRID", "RiskThreshold", "error_upper_bound", "exact_interval", "min_fields", "risk_threshold"]
