"""Split-conformal thresholds and p-values against hand-computed cases, and their promise in a run."""
from __future__ import annotations

import math

import numpy as np
import pytest
from scipy.stats import binomtest

import agents  # noqa: F401  (fills the registries)

from utils.core.config import load_config
from utils.core.errors import ConfigError
from agents.detector.thresholds import (
    AdaptiveThreshold,
    conformal_p_values,
    conformal_rank,
    conformal_threshold,
    false_alarm_report,
    min_calibration_size,
)
from utils.metrics.promise import false_alarm_interval


@pytest.mark.parametrize("n, alpha, k", [
    (99, 0.05, 95),    # (100)(0.95) = 95 exactly: no float round-up to 96
    (19, 0.05, 19),    # 20 * 0.95 = 19
    (18, 0.05, 19),    # 19 * 0.95 = 18.05 -> 19 > n: not achievable
    (9, 0.1, 9),
    (10, 0.1, 10),     # 11 * 0.9 = 9.9 -> 10
    (1000, 0.01, 991),  # 1001 * 0.99 = 990.99 -> 991
    (5, 0.0, 6),       # alpha 0 never achievable
    (4, 0.999, 1),     # 5 * 0.001 = 0.005 -> 1
])
def test_rank_is_the_ceiling_of_n_plus_one_times_one_minus_alpha(n, alpha, k):
    assert conformal_rank(n, alpha) == k


def test_threshold_is_the_kth_smallest_and_bounds_the_false_alarm_rate():
    cal = np.array([5.0, 1.0, 4.0, 2.0, 3.0, 9.0, 7.0, 8.0, 6.0, 10.0, 0.5])  # n = 11
    t = conformal_threshold(cal, 0.25)  # k = ceil(12 * 0.75) = 9 -> 9th smallest of sorted
    assert (t.n, t.k, t.threshold, t.achievable) == (11, 9, 8.0, True)
    assert t.bound == pytest.approx(3 / 12) and t.bound <= 0.25


def test_ties_at_the_threshold_are_not_alarms():
    cal = np.array([1.0, 2.0, 2.0, 2.0, 2.0])  # n = 5
    t = conformal_threshold(cal, 0.5)  # k = ceil(6 * 0.5) = 3 -> 2.0
    assert t.threshold == 2.0
    new = np.array([2.0, 2.0, 2.0000001])
    assert list(new > t.threshold) == [False, False, True]
    p = conformal_p_values(cal, new)
    np.testing.assert_allclose(p, [5 / 6, 5 / 6, 1 / 6])  # (1 + #{cal >= s}) / (n + 1)


def test_too_few_scores_take_the_maximum_and_say_the_bound_that_holds():
    t = conformal_threshold(np.arange(10.0), 0.01)
    assert (t.k, t.threshold, t.achievable) == (10, 9.0, False)
    assert t.bound == pytest.approx(1 / 11)
    assert "too few" in t.note and "1/(n+1)" in t.note and str(min_calibration_size(0.01)) in t.note
    assert min_calibration_size(0.01) == 99 and conformal_rank(99, 0.01) <= 99 and conformal_rank(98, 0.01) > 98
    assert min_calibration_size(0.0) is None


@pytest.mark.parametrize("alpha", [-0.1, 1.0, 1.5, float("nan"), "0.1", True])
def test_alpha_outside_zero_one_is_refused(alpha):
    with pytest.raises(ValueError, match="false_alarm_rate"):
        conformal_threshold([1.0, 2.0], alpha)


def test_one_calibration_score():
    t = conformal_threshold([3.0], 0.6)  # k = ceil(2 * 0.4) = 1
    assert (t.k, t.threshold, t.bound, t.achievable) == (1, 3.0, 0.5, True)
    np.testing.assert_allclose(conformal_p_values([3.0], [2.0, 3.0, 4.0]), [1.0, 1.0, 0.5])


@pytest.mark.parametrize("bad", [[], [1.0, np.nan], [np.inf]])
def test_empty_or_non_finite_calibration_is_refused(bad):
    with pytest.raises(ValueError):
        conformal_threshold(bad, 0.1)


def test_alarm_exactly_when_p_value_is_at_most_the_bound():
    rng = np.random.default_rng(0)
    for n, alpha in [(50, 0.1), (200, 0.01), (7, 0.05), (30, 0.0), (64, 0.5)]:
        cal = np.round(rng.normal(size=n), 1)  # rounded: many ties
        t = conformal_threshold(cal, alpha)
        new = np.round(rng.normal(size=500) * 1.5, 1)
        np.testing.assert_array_equal(new > t.threshold, conformal_p_values(cal, new) <= t.bound + 1e-12)


def test_false_alarm_rate_on_exchangeable_normals_stays_below_alpha():
    """Marginal validity: over many calibration draws the mean rate on new normals is <= alpha."""
    rng = np.random.default_rng(1)
    alpha, n, rates = 0.1, 40, []
    for _ in range(2000):
        cal, new = rng.exponential(size=n), rng.exponential(size=200)
        rates.append(np.mean(new > conformal_threshold(cal, alpha).threshold))
    bound = (n + 1 - conformal_rank(n, alpha)) / (n + 1)
    assert np.mean(rates) == pytest.approx(bound, abs=0.005)  # continuous scores: the bound is exact
    assert np.mean(rates) <= alpha


def test_clopper_pearson_interval_matches_scipy_and_edges():
    got = false_alarm_interval(3, 120)
    ci = binomtest(3, 120).proportion_ci(method="exact")
    assert (got["rate"], got["low"], got["high"]) == (3 / 120, pytest.approx(ci.low), pytest.approx(ci.high))
    assert false_alarm_interval(0, 50)["low"] == 0.0 and false_alarm_interval(50, 50)["high"] == 1.0
    assert false_alarm_interval(0, 0)["rate"] is None
    with pytest.raises(ValueError):
        false_alarm_interval(5, 3)


def test_report_counts_the_alarms_on_the_normals_only():
    t = conformal_threshold(np.arange(1.0, 20.0), 0.1)  # n = 19, k = 18 -> 18.0
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([18.0, 18.5, 30.0, 30.0, 0.0])
    report = false_alarm_report(t, y, s)
    assert report["measured"]["n_alarms"] == 2 and report["measured"]["n_normals"] == 3
    assert math.isclose(report["bound"], 2 / 20) and report["k"] == 18


@pytest.mark.parametrize("overrides, alpha, percentile", [
    ([], 0.01, 99.0),
    (["evaluation.false_alarm_rate=0.05"], 0.05, 95.0),
    (["evaluation.false_alarm_rate=null", "evaluation.threshold_percentile=97.5"], 0.025, 97.5),
    (["evaluation.threshold_percentile=99"], 0.01, 99.0),
])
def test_config_resolves_the_rate_from_either_key(overrides, alpha, percentile):
    cfg = load_config("configs/vae_converter.json", overrides)
    assert cfg.evaluation.false_alarm_rate == pytest.approx(alpha)
    assert cfg.evaluation.threshold_percentile == pytest.approx(percentile)


def test_config_refuses_a_rate_and_a_percentile_that_disagree():
    with pytest.raises(ConfigError, match=r"threshold_percentile: 90 means a false-alarm rate of 0.1, but "
                                          r"evaluation.false_alarm_rate is 0.01"):
        load_config("configs/vae_converter.json", ["evaluation.threshold_percentile=90"])


@pytest.mark.parametrize("value", [1, 1.5, -0.01])
def test_config_refuses_a_rate_outside_zero_one(value):
    with pytest.raises(ConfigError, match="evaluation.false_alarm_rate"):
        load_config("configs/vae_converter.json", [f"evaluation.false_alarm_rate={value}"])


def test_config_refuses_an_unknown_or_repeated_baseline():
    with pytest.raises(ConfigError, match="evaluation.baselines.0"):
        load_config("configs/vae_converter.json", ['evaluation.baselines=["lof"]'])
    with pytest.raises(ConfigError, match="names a baseline twice"):
        load_config("configs/vae_converter.json", ['evaluation.baselines=["knn", "knn"]'])


@pytest.mark.parametrize("n_alarms, n_normals, kept", [
    (5, 100, True),     # rate at the bound
    (8, 100, True),     # rate 0.08 above the bound, but its interval (0.035-0.15) covers it
    (12, 100, False),   # interval 0.064-0.20: wholly above
    (0, 100, True),     # below
    (0, 0, None),       # no normals: not judged
])
def test_promise_is_broken_only_when_the_interval_lies_above_the_bound(n_alarms, n_normals, kept):
    from utils.metrics.promise import promise_verdict

    measured = false_alarm_interval(n_alarms, n_normals)
    verdict = promise_verdict(0.05, measured)
    assert verdict["promise_kept"] is kept
    assert verdict["verdict"].startswith({True: "kept: ", False: "broken: ", None: "not judged: "}[kept])
    if n_normals:
        assert f"alarmed on {n_alarms} of {n_normals} normal test windows (95% CI" in verdict["verdict"]


def test_report_states_the_verdict_of_the_test_normals():
    t = conformal_threshold(np.arange(19.0), 0.05)  # threshold 18, bound 1/20
    y = np.zeros(40, dtype=int)
    kept = false_alarm_report(t, y, np.r_[np.full(38, 1.0), 19.0, 19.0])
    assert kept["promise_kept"] is True and kept["verdict"].startswith("kept: alarmed on 2 of 40")
    broken = false_alarm_report(t, y, np.r_[np.full(20, 1.0), np.full(20, 19.0)])
    assert broken["promise_kept"] is False and "against the stated bound 0.05" in broken["verdict"]
    none = false_alarm_report(t, np.ones(3, dtype=int), np.full(3, 19.0))
    assert none["promise_kept"] is None and none["measured"]["rate"] is None


def _aci_reference(calibration: np.ndarray, scores: np.ndarray, alpha: float, gamma: float) -> np.ndarray:
    """Gibbs & Candes' update in p-value form: alarm where p_t <= alpha_t, then alpha_t += gamma (alpha - alarm)."""
    level, alarms = alpha, []
    for p in conformal_p_values(calibration, scores):
        alarms.append(int(p <= level))
        level += gamma * (alpha - alarms[-1])
    return np.array(alarms)


@pytest.mark.parametrize("alpha, gamma", [(0.01, 0.005), (0.1, 0.05), (0.05, 0.3)])
def test_adaptive_threshold_alarms_where_the_p_value_is_at_most_the_level(alpha, gamma):
    rng = np.random.default_rng(4)
    calibration = rng.normal(size=300)
    scores = np.concatenate([rng.normal(size=500), rng.normal(2.0, 1.0, size=500), rng.normal(size=500)])
    limits = AdaptiveThreshold(calibration, alpha, gamma).thresholds(scores)
    assert ((scores > limits).astype(int) == _aci_reference(calibration, scores, alpha, gamma)).all()


@pytest.mark.parametrize("gamma", [0.001, 0.01, 0.1])
def test_drift_cannot_hold_the_adaptive_alarm_rate_above_alpha(gamma):
    """A stream that drifts far above every calibration score: the fixed threshold alarms on almost every step,
    the adaptive one keeps Gibbs & Candes' bound |rate - alpha| <= (max(alpha, 1 - alpha) + gamma) / (gamma T)."""
    rng = np.random.default_rng(5)
    calibration, alpha, steps = rng.normal(size=400), 0.01, 20_000
    scores = rng.normal(size=steps) + np.linspace(0.0, 30.0, steps)
    assert (scores > conformal_threshold(calibration, alpha).threshold).mean() > 0.9
    rate = (scores > AdaptiveThreshold(calibration, alpha, gamma).thresholds(scores)).mean()
    assert abs(rate - alpha) <= (max(alpha, 1 - alpha) + gamma) / (gamma * steps)


def test_adaptive_threshold_continues_across_calls_and_skips_nan():
    rng = np.random.default_rng(6)
    calibration, scores = rng.normal(size=100), rng.normal(1.0, 1.0, size=400)
    scores[[10, 200]] = np.nan
    whole = AdaptiveThreshold(calibration, 0.05, 0.02).thresholds(scores)
    tracker = AdaptiveThreshold(calibration, 0.05, 0.02)
    pieces = np.concatenate([tracker.thresholds(scores[:150]), tracker.thresholds(scores[150:])])
    np.testing.assert_array_equal(whole, pieces)
    assert whole[11] == whole[10]  # the NaN step moved nothing


@pytest.mark.parametrize("gamma", [0.0, -0.1])
def test_adaptive_threshold_needs_a_positive_step(gamma):
    with pytest.raises(ValueError, match="gamma"):
        AdaptiveThreshold([1.0, 2.0], 0.1, gamma)
