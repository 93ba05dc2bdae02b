"""The risk-controlling threshold (Learn then Test with Clopper-Pearson bounds) on synthetic scores
whose error rate is known."""

from __future__ import annotations

import numpy as np
import pytest

from handwriting_pipeline.trust import error_upper_bound, min_fields, risk_threshold, start_fields


def _draw(rng: np.random.Generator, n: int) -> tuple[np.ndarray, np.ndarray]:
    """Scores uniform on [0, 1]; a field with score s is wrong with probability 0.3 * (1 - s)
    (error rate among scores >= t: 0.15 * (1 - t))."""
    scores = rng.uniform(0.0, 1.0, n)
    correct = rng.uniform(0.0, 1.0, n) >= 0.3 * (1.0 - scores)
    return scores, correct


def _true_risk(t: float) -> float:
    return 0.15 * (1.0 - t)


def test_clopper_pearson_bound_matches_the_exact_binomial():
    from scipy.stats import binom

    bound = error_upper_bound(3, 100, 0.1)
    assert binom.cdf(3, 100, bound) == pytest.approx(0.1, abs=1e-6)  # the tail at the bound is delta
    assert error_upper_bound(0, 0, 0.1) == 1.0 and error_upper_bound(5, 5, 0.1) == 1.0
    assert min_fields(0.05, 0.1) == 45  # 0.95^45 < 0.1 < 0.95^44


@pytest.mark.parametrize("start_rate", [0.0, 0.5])
def test_the_promise_holds_in_all_but_about_delta_of_the_draws(start_rate):
    rng = np.random.default_rng(0)
    alpha, delta, draws, failures, found = 0.1, 0.1, 400, 0, 0
    for _ in range(draws):
        result = risk_threshold(*_draw(rng, 1000), alpha=alpha, delta=delta, start_rate=start_rate)
        if result.threshold is None:
            continue
        found += 1
        fresh_scores, fresh_correct = _draw(rng, 20000)
        sure = fresh_scores >= result.threshold
        failures += float(np.mean(~fresh_correct[sure])) > alpha
    assert found >= 0.8 * draws  # an early error high up ends the sequence: then nothing is called sure
    assert failures / draws <= delta + 0.03
    # and it is not vacuous: the exact risk at the chosen thresholds is close to alpha
    assert _true_risk(result.threshold) > 0.5 * alpha


def test_a_threshold_is_returned_with_its_numbers():
    scores, correct = _draw(np.random.default_rng(1), 2000)
    result = risk_threshold(scores, correct, alpha=0.05, delta=0.1)
    assert result.threshold is not None and 0.0 < result.threshold < 1.0
    sure = scores >= result.threshold
    assert result.n == 2000 and result.sure == int(sure.sum()) and result.errors == int((~correct[sure]).sum())
    assert result.share_sure == pytest.approx(sure.mean(), abs=1e-6)
    assert result.bound <= 0.05
    # one grid step lower is either not tested or its bound exceeds alpha: the lowest passing threshold
    lower = scores >= result.threshold - 0.001
    assert error_upper_bound(int((~correct[lower]).sum()), int(lower.sum()), 0.1) > 0.05


def test_no_threshold_when_the_data_cannot_support_alpha():
    rng = np.random.default_rng(2)
    scores = rng.uniform(0, 1, 500)
    correct = rng.uniform(0, 1, 500) >= 0.2           # 20 % wrong at every score
    assert risk_threshold(scores, correct, alpha=0.05, delta=0.1).threshold is None
    few = risk_threshold([0.99] * 10, [True] * 10, alpha=0.05, delta=0.1)  # 10 fields cannot show 5 %
    assert few.threshold is None and few.sure == 0 and few.bound == 1.0


def test_monotone_in_alpha_and_delta():
    scores, correct = _draw(np.random.default_rng(3), 3000)
    by_alpha = [risk_threshold(scores, correct, alpha=a, delta=0.1) for a in (0.02, 0.05, 0.1, 0.2)]
    thresholds = [r.threshold if r.threshold is not None else 1.1 for r in by_alpha]
    assert thresholds == sorted(thresholds, reverse=True)           # more accepted error, lower threshold
    assert [r.sure for r in by_alpha] == sorted(r.sure for r in by_alpha)
    by_delta = [risk_threshold(scores, correct, alpha=0.05, delta=d).threshold for d in (0.01, 0.05, 0.1, 0.3)]
    assert by_delta == sorted(by_delta, reverse=True)                # less confidence asked, lower threshold


def test_order_of_the_candidate_thresholds_does_not_matter_and_bad_input_fails():
    scores, correct = _draw(np.random.default_rng(4), 1000)
    grid = list(np.linspace(0, 1, 101))
    assert risk_threshold(scores, correct, 0.05, 0.1, grid) == risk_threshold(scores, correct, 0.05, 0.1, grid[::-1])
    with pytest.raises(ValueError, match="alpha"):
        risk_threshold(scores, correct, alpha=0.0)
    with pytest.raises(ValueError, match="correctness"):
        risk_threshold(scores, correct[:-1], alpha=0.05)


def test_the_sequence_starts_where_some_errors_can_pass_and_survives_an_early_one():
    assert start_fields(0.05, 0.1) == min_fields(0.05, 0.1) == 45
    at_half = start_fields(0.05, 0.1, 0.5)
    assert at_half > 45 and error_upper_bound(int(0.025 * at_half), at_half, 0.1) <= 0.05
    # the surest field is wrong, the next 999 right: starting at the first testable threshold
    # stops at once; starting at 0.5 alpha gets past it
    scores = np.linspace(1.0, 0.5, 1000)
    correct = np.ones(1000, dtype=bool)
    correct[0] = False
    assert risk_threshold(scores, correct, 0.05, 0.1).threshold is None
    robust = risk_threshold(scores, correct, 0.05, 0.1, start_rate=0.5)
    assert robust.threshold is not None and robust.sure == 1000 and robust.errors == 1
