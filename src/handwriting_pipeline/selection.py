"""Which forms choose and which forms report: the one rule for honest selection.

Everything that is *chosen* — a checkpoint (early stopping), a decoding setting (δ, joint
weights, style-layer weights), a vote calibration — is chosen on **held-out train forms**: the last
``n`` forms of the train split, never trained on. The validation (and test) forms are only
*reported* on. The field reader, the Donut stage of the train pipeline and every benchmark use
:func:`holdout_names` / :func:`split_for_selection`, so they hold out the same forms (the last
100 of the shared train split).

Floor 0 (ground). May import: nothing from this project (any room may use it).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

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


__all__ = ["HOLDOUT_FORMS", "Selection", "holdout_count", "holdout_names", "split_for_selection"]
