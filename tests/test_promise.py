"""The verdict on a threshold's promise per time step, pooled over recordings, and its words."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import binomtest

from utils.metrics.promise import (
    promise_advice,
    PROMISE_ADVICE,
    broken_promise_text,
    pooled_promise,
    score_drift,
    time_step_promise,
    time_step_verdicts,
    window_verdicts,
)


def test_time_step_promise_counts_alarms_on_normal_time_steps_only():
    labels = np.array([0, 0, 0, 0, 1, 1, 0, 0, 0, 0])
    alarms = np.array([1, 0, 0, 0, 1, 1, 1, 0, 0, 0])
    out = time_step_promise(labels, alarms, bound=0.05)
    assert out["measured"]["n_alarms"] == 2 and out["measured"]["n_normals"] == 8
    ci = binomtest(2, 8).proportion_ci(0.95, method="exact")
    assert out["measured"]["low"] == pytest.approx(ci.low) and out["bound"] == 0.05
    assert out["promise_kept"] is (not ci.low > 0.05)
    assert "of 8 normal test time steps" in out["verdict"]


def test_pooled_promise_sums_the_counts_and_names_the_recordings_that_broke_it():
    quiet = time_step_promise(np.zeros(400, int), np.r_[np.ones(4, int), np.zeros(396, int)], 0.05)
    loud = time_step_promise(np.zeros(100, int), np.r_[np.ones(40, int), np.zeros(60, int)], 0.05)
    anomalous = time_step_promise(np.ones(10, int), np.ones(10, int), 0.05)
    assert quiet["promise_kept"] is True and loud["promise_kept"] is False and anomalous["promise_kept"] is None
    pooled = pooled_promise({"a.csv": quiet, "b.csv": loud, "c.csv": anomalous})
    assert pooled["measured"]["n_alarms"] == 44 and pooled["measured"]["n_normals"] == 500
    expected_low = binomtest(44, 500).proportion_ci(0.95, method="exact").low
    assert pooled["measured"]["low"] == pytest.approx(expected_low)
    assert pooled["promise_kept"] is (not expected_low > 0.05)
    assert (pooled["recordings"], pooled["recordings_judged"], pooled["recordings_broken"]) == (3, 2, 1)
    assert pooled["broken"] == ["b.csv"]
    with pytest.raises(ValueError, match="at least one recording"):
        pooled_promise({})


def test_score_drift_sees_a_shift_and_not_a_resample():
    rng = np.random.default_rng(0)
    calibration = rng.normal(size=500)
    same = score_drift(calibration, rng.normal(size=400))
    moved = score_drift(calibration, rng.normal(loc=1.0, size=400))
    assert same["p_value"] > 0.01 and 0.4 < same["median_rank"] < 0.6
    assert moved["p_value"] < 1e-6 and moved["median_rank"] > 0.8 and moved["ks_statistic"] > 0.3
    assert score_drift(calibration, []) is None


def test_broken_promise_text_says_what_was_measured_why_and_what_to_do():
    report = {"promise_kept": False, "verdict": "broken: alarmed on 30 of 100 normal test time steps (95% CI "
                                                "0.2124-0.3998) against the stated bound 0.05",
              "recordings": 3, "recordings_judged": 3, "recordings_broken": 2}
    text = broken_promise_text("recon, time steps", report, "the test part drifted from the calibration part")
    assert text.startswith("PROMISE BROKEN (recon, time steps): alarmed on 30 of 100 normal test time steps")
    assert "against the stated bound 0.05 (2 of 3 recordings broke it alone); the test part drifted" in text
    assert text.endswith(f"What you can do: {PROMISE_ADVICE}.")
    assert "data.val_fraction" in text and "evaluation.false_alarm_rate" in text
    assert broken_promise_text("x", {"promise_kept": True, "verdict": "kept: ..."}, "") == ""
    assert broken_promise_text("x", {"promise_kept": None, "verdict": "not judged: ..."}, "") == ""


def _fa(kept: bool | None, drift: dict | None = None) -> dict:
    verdict = {True: "kept: fine", False: "broken: alarmed on many", None: "not judged: no normal test windows"}[kept]
    return {"promise_kept": kept, "verdict": verdict, **({"drift": drift} if drift else {})}


def test_verdicts_name_drift_where_windows_broke_it_and_aggregation_where_only_time_steps_did():
    drift = {"ks_statistic": 0.4, "p_value": 1e-9, "median_rank": 0.9}
    metrics = {"scores": {"a": {"false_alarm": _fa(False, drift)}, "b": {"false_alarm": _fa(True)}},
               "baselines": {"pca": {"false_alarm": _fa(None)}},
               "stream": {"point_aggregation": "max", "max_windows_per_time_step": 4,
                          "scores": {"a": {"false_alarm": _fa(False)}, "b": {"false_alarm": _fa(False)}},
                          "baselines": {"pca": {"false_alarm": _fa(True)}}}}
    windows = window_verdicts(metrics)
    assert [(kept, label) for kept, label, _ in windows] == [(False, "a, windows"), (True, "b, windows"),
                                                             (None, "baseline pca, windows")]
    assert "their normal scores differ (Kolmogorov-Smirnov D = 0.400" in windows[0][2]
    assert windows[1][2] == "Promise of b on the test windows: kept: fine"
    steps = time_step_verdicts(metrics)
    assert [kept for kept, _, _ in steps] == [False, False, True]
    assert "the test part drifted from the calibration part" in steps[0][2]
    assert "its normal test windows kept it; a time step takes the max of the up to 4 windows" in steps[1][2]
    assert time_step_verdicts({"scores": {}}) == []
    pooled = {**metrics, "stream": {"recordings": {}, "pooled": metrics["stream"]}}
    assert [label for _, label, _ in time_step_verdicts(pooled)][0] == "a, time steps, pooled over recordings"
    assert "What you can do" not in time_step_verdicts(metrics, advice=False)[0][2]


@pytest.mark.parametrize("metrics, offered", [
    ({"data": {"normalize": "global"}, "stream": {"threshold_adapt_rate": 0.0}}, {"normalize", "adapt"}),
    ({"data": {"normalize": "per_recording"}, "stream": {"pooled": {"threshold_adapt_rate": 0.0}}}, {"adapt"}),
    ({"data": {"normalize": "global"}, "stream": {"threshold_adapt_rate": 0.005}}, {"normalize"}),
    ({"data": {}}, set()),  # a dataset without the key, a run without a stream
])
def test_the_advice_offers_only_what_the_run_can_still_change(metrics, offered):
    advice = promise_advice(metrics)
    assert advice.startswith("calibrate on more normal data") and advice.endswith("evaluation.false_alarm_rate")
    assert ("data.normalize" in advice) == ("normalize" in offered)
    assert ("evaluation.threshold_adapt_rate" in advice) == ("adapt" in offered)


@pytest.mark.parametrize("labels, alarms, match", [
    (np.zeros(5, int), np.zeros(4, int), "must match"),
    (np.array([0, 2, 0]), np.zeros(3, int), "labels must be a \\(n,\\) array of 0/1"),
    (np.zeros(3, int), np.array([0, 3, 0]), "alarms must be a \\(n,\\) array of 0/1"),
])
def test_time_step_promise_refuses_labels_and_alarms_that_are_not_one_length_of_0_1(labels, alarms, match):
    with pytest.raises(ValueError, match=match):
        time_step_promise(labels, alarms, bound=0.05)
