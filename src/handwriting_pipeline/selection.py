"""Which forms choose and which forms report: the one rule for honest selection.

Everything that is *chosen* — a checkpoint (early stopping), a decoding setting (δ, joint
weights, style-layer weights), a vote calibration — is chosen on **held-out train forms**: the last
``n`` forms of the train split, never trained on. The validation (and test) forms are only
*reported* on. The field reader, the Donut stage of the train pipeline and every benchmark use
:func:`holdout_names` / :func:`split_for_selection`, so they hold out the same forms (the last
100 of the shared train split).

A choice is worth making only when it carries to new forms: :func:`paired_bootstrap` gives the
mean difference of two methods' per-form scores on the same forms (e.g. the out-of-fold readings
of all train forms, :mod:`handwriting_pipeline.fieldreader.crossfit`) with its 95 % percentile
interval over resamples of the forms, and :func:`switch_on` says yes only when its lower bound
is above 0.

Floor 0 (ground). May import: nothing from this project (any room may use it).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

#: held-out train forms (the field reader's 100; ``train_fieldreader.holdout_forms``)
HOLDOUT_FORMS = 100


def holdout_count(n_names: int, holdout_forms: int = HOLDOUT_FORMS, holdout_share: float | None = None) -> int:
    """How many of ``n_names`` train forms are held out: ``holdout_forms``, at most
    ``holdout_share`` of them (small synthetic runs; at least one), never all of them."""
    if n_names < 2:
        raise ValueError(f"{n_names} train form(s): choosing on held-out train forms needs at least 2")
    n = int(holdout_forms)
    if holdout_share is not None:
        n = min(n, max(1, round(n_names * float(holdout_share))))
    if n < 1:
        raise ValueError("holdout_forms must be >= 1: checkpoints, settings and calibrations are chosen on "
                         "held-out train forms, never on the forms that are reported")
    return min(n, n_names - 1)


def holdout_names(names: list[str], holdout_forms: int = HOLDOUT_FORMS,
                  holdout_share: float | None = None) -> dict[str, list[str]]:
    """``{"fit": names to learn from, "holdout": the last n names, to choose on}``."""
    n = holdout_count(len(names), holdout_forms, holdout_share)
    return {"fit": list(names[: len(names) - n]), "holdout": list(names[len(names) - n:])}


@dataclass
class Selection:
    """Form sets of one benchmark run: ``fit`` (train on), ``choose`` (held-out train forms:
    checkpoints, settings, calibrations) and ``report`` (validation: only measured)."""

    fit: Any
    choose: Any
    report: Any

    def check(self) -> "Selection":
        """Raise when a reported form is also used to fit or to choose."""
        report = set(_names(self.report))
        for role in ("fit", "choose"):
            shared = report & set(_names(getattr(self, role)))
            if shared:
                raise ValueError(f"{len(shared)} reported form(s) are also used to {role}, e.g. {sorted(shared)[0]}")
        if set(_names(self.fit)) & set(_names(self.choose)):
            raise ValueError("held-out forms are also trained on")
        return self


def _names(forms: Any) -> list[str]:
    return forms.labels["file_name"].tolist()


def split_for_selection(train_forms: Any, report_forms: Any, holdout_forms: int = HOLDOUT_FORMS,
                        limit_train: int = 0, limit_report: int = 0) -> Selection:
    """The three form sets of a benchmark from the train split and the reported split
    (``LabelledForms``-like: ``labels`` with ``file_name`` and ``subset``).

    The held-out forms are the last ``holdout_forms`` of the whole train split (so a smoke run
    with ``limit_train`` chooses on the same forms as a full one); ``limit_train`` /
    ``limit_report`` keep the first N forms to fit on / report on.
    """
    split = holdout_names(_names(train_forms), holdout_forms)
    fit = split["fit"][: limit_train or None]
    report = _names(report_forms)[: limit_report or None]
    return Selection(train_forms.subset(fit), train_forms.subset(split["holdout"]),
                     report_forms.subset(report)).check()


@dataclass(frozen=True)
class PairedInterval:
    """Mean per-form difference (candidate - baseline) and its bootstrap percentile interval."""

    mean: float
    low: float
    high: float
    forms: int
    resamples: int
    level: float = 0.95

    @property
    def better(self) -> bool:
        """The candidate is better on new forms with confidence ``level``: the lower bound is > 0."""
        return self.low > 0

    def __str__(self) -> str:
        return (f"{self.mean:+.3f} [{self.low:+.3f}, {self.high:+.3f}] ({100 * self.level:.0f} % interval, "
                f"{self.forms} forms, {self.resamples} resamples)")


def _paired(candidate: Sequence[float] | Any, baseline: Sequence[float] | Any) -> np.ndarray:
    """candidate - baseline per form; two pandas Series are matched by their index (form names)."""
    if hasattr(candidate, "loc") and hasattr(baseline, "loc"):  # pandas (a list's .index is a method)
        if set(candidate.index) != set(baseline.index) or len(candidate) != len(baseline):
            raise ValueError("the two methods' scores are not on the same forms")
        baseline = baseline.loc[candidate.index]
    a, b = np.asarray(candidate, dtype=np.float64), np.asarray(baseline, dtype=np.float64)
    if a.shape != b.shape or a.ndim != 1:
        raise ValueError(f"paired per-form scores expected, got shapes {a.shape} and {b.shape}")
    if not len(a) or np.isnan(a).any() or np.isnan(b).any():
        raise ValueError("per-form scores must be given for every form (no NaN, at least one form)")
    return a - b


def paired_bootstrap(candidate: Sequence[float] | Any, baseline: Sequence[float] | Any, resamples: int = 10_000,
                     level: float = 0.95, seed: int = 0, chunk: int = 1000) -> PairedInterval:
    """The mean difference of two methods' per-form scores on the same forms (e.g. fields right
    per form, or 1 for a form read exactly right) and its ``level`` percentile interval over
    ``resamples`` resamples of the forms with replacement (seeded: the same inputs give the same
    interval). Two pandas Series are paired by their index; sequences by position."""
    diff = _paired(candidate, baseline)
    rng = np.random.default_rng(seed)
    means = np.concatenate([diff[rng.integers(0, len(diff), size=(min(chunk, resamples - start), len(diff)))].mean(axis=1)
                            for start in range(0, int(resamples), chunk)])
    tail = 100 * (1 - level) / 2
    low, high = np.percentile(means, [tail, 100 - tail])
    return PairedInterval(float(diff.mean()), float(low), float(high), len(diff), int(resamples), float(level))


def switch_on(candidate: Sequence[float] | Any, baseline: Sequence[float] | Any, **bootstrap: Any) -> bool:
    """Whether to switch a choice on: only when the lower bound of the paired bootstrap interval of
    (candidate - baseline) per form is above 0 (``bootstrap``: :func:`paired_bootstrap` options)."""
    return paired_bootstrap(candidate, baseline, **bootstrap).better


__all__ = ["HOLDOUT_FORMS", "PairedInterval", "Selection", "holdout_count", "holdout_names", "paired_bootstrap",
           "split_for_selection", "switch_on"]
