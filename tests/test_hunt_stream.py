"""Bugs found by hand in streaming evaluation and thresholds (one test per scenario)."""
from __future__ import annotations

import numpy as np
import pytest

from agents.detector.thresholds import AdaptiveThreshold, conformal_threshold


@pytest.mark.parametrize("n, alpha", [(1, 0.01), (3, 0.2), (33, 0.01), (22, 0.0)])
def test_adaptive_threshold_starts_at_the_calibrated_threshold_when_calibration_is_too_small_for_alpha(n, alpha):
    """Too few calibration scores for alpha: the calibrated threshold is their maximum (bound 1/(n+1)); the adaptive
    one used to start at +inf there, so a run with threshold_adapt_rate > 0 raised no alarm at all for about
    (1/(n+1) - alpha) / (gamma alpha) time steps (all of a short test stretch) while the fixed threshold alarmed."""
    calibration = np.random.default_rng(0).normal(size=n)
    fixed = conformal_threshold(calibration, alpha)
    assert not fixed.achievable
    scores = np.concatenate([np.full(5, calibration.max() + 1.0), np.full(20, calibration.min() - 1.0)])
    limits = AdaptiveThreshold(calibration, alpha, 1e-6).thresholds(scores)
    assert limits[0] == fixed.threshold
    # a tiny step: the alarms of the fixed threshold until the first alarm lowers the level below 1/(n+1)
    assert (scores > limits)[0] and not (scores > limits)[1:].any()


def test_the_note_of_a_false_alarm_rate_of_0_names_no_calibration_size():
    """false_alarm_rate 0 (allowed): no n reaches it; the note said 'it needs at least None'."""
    note = conformal_threshold([1.0, 2.0, 3.0], 0.0).note
    assert "None" not in note and "no number of them reaches it" in note and "1/(n+1) = 0.25" in note
    assert "it needs at least 99" in conformal_threshold([1.0], 0.01).note
