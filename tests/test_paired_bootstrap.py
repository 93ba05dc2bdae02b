"""The paired bootstrap interval over forms (selection.paired_bootstrap): it covers a known
difference, excludes 0 when the difference is large, includes 0 when there is none."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from handwriting_pipeline.selection import PairedInterval, paired_bootstrap, switch_on


def _forms(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).binomial(4, 0.7, size=n).astype(float)  # fields right per form


def test_a_large_known_difference_is_covered_and_switches_on():
    rng = np.random.default_rng(1)
    baseline = _forms(1400, 0)
    candidate = baseline + rng.binomial(1, 0.2, size=1400)  # one more field right on 20 % of the forms
    interval = paired_bootstrap(candidate, baseline, resamples=4000, seed=0)
    assert isinstance(interval, PairedInterval) and interval.forms == 1400 and interval.resamples == 4000
    assert interval.low < 0.2 < interval.high and interval.low > 0
    assert interval.mean == pytest.approx(float(np.mean(candidate - baseline)))
    assert interval.better and switch_on(candidate, baseline, resamples=4000)
    assert not switch_on(baseline, candidate, resamples=4000)  # the other way round: never
    assert "1400 forms" in str(interval)


def test_no_difference_includes_zero_and_stays_off():
    rng = np.random.default_rng(2)
    baseline = _forms(1400, 3)
    candidate = baseline + rng.choice([-1.0, 0.0, 0.0, 1.0], size=1400)  # as often better as worse
    interval = paired_bootstrap(candidate, baseline, resamples=4000, seed=0)
    assert interval.low < 0 < interval.high
    assert not interval.better and not switch_on(candidate, baseline, resamples=4000)
    assert paired_bootstrap(baseline, baseline, resamples=200).high == 0.0  # identical scores: exactly 0


def test_seeded_paired_by_form_and_about_95_percent_coverage():
    baseline, candidate = _forms(300, 4), _forms(300, 5)
    a = paired_bootstrap(candidate, baseline, resamples=2000, seed=7)
    assert a == paired_bootstrap(candidate, baseline, resamples=2000, seed=7)
    assert a != paired_bootstrap(candidate, baseline, resamples=2000, seed=8)
    # two Series are paired by form name, whatever their order
    names = [f"f{i:04d}_00.png" for i in range(300)]
    shuffled = pd.Series(baseline, index=names).sample(frac=1.0, random_state=0)
    assert paired_bootstrap(pd.Series(candidate, index=names), shuffled, resamples=2000, seed=7) == a
    with pytest.raises(ValueError, match="not on the same forms"):
        paired_bootstrap(pd.Series(candidate, index=names), shuffled.iloc[1:], resamples=10)
    with pytest.raises(ValueError, match="paired per-form scores"):
        paired_bootstrap(candidate, baseline[1:], resamples=10)
    # repeated experiments with a true difference of 0.1: the 95 % interval covers it about 95 % of the time
    rng, covered = np.random.default_rng(9), 0
    for trial in range(200):
        base = rng.binomial(4, 0.7, size=200).astype(float)
        cand = base + rng.choice([-1.0, 0.0, 1.0], p=[0.2, 0.5, 0.3], size=200)
        interval = paired_bootstrap(cand, base, resamples=500, seed=trial)
        covered += interval.low <= 0.1 <= interval.high
    assert 0.88 <= covered / 200 <= 0.99


def test_plain_lists_are_paired_by_position():
    """A Python list has an ``index`` method: it is a sequence, paired by position like an array."""
    exact = [1.0, 0.0, 1.0, 1.0]
    from_lists = paired_bootstrap(exact, [0.0] * 4)
    assert from_lists == paired_bootstrap(np.array(exact), np.zeros(4))
    assert from_lists.mean == pytest.approx(0.75) and 0.0 <= from_lists.low <= 0.75 <= from_lists.high <= 1.0
