"""Inputs at the scale users bring (long files, folders of thousands of recordings): results equal their references
and per-recording work stays cheap."""
from __future__ import annotations

import pytest
import scipy.stats

from utils.metrics.promise import false_alarm_interval


def test_false_alarm_interval_is_clopper_pearson_without_root_finding(monkeypatch):
    # a folder of 2,000 recordings asks for 12,000 intervals: binomtest's root finding took ~95 s of them
    cases = [(0, 7), (3, 120), (44, 500), (7, 7), (1, 1), (118, 13202), (5920, 795000)]
    expected = {case: scipy.stats.binomtest(*case).proportion_ci(0.95, method="exact") for case in cases}

    def refuse(*args, **kwargs):
        raise AssertionError("binomtest called")

    monkeypatch.setattr(scipy.stats, "binomtest", refuse)
    for (k, n), ci in expected.items():
        got = false_alarm_interval(k, n)
        assert (got["low"], got["high"]) == (pytest.approx(ci.low, rel=1e-9, abs=1e-15),
                                             pytest.approx(ci.high, rel=1e-9, abs=1e-15))
    assert false_alarm_interval(0, 50)["low"] == 0.0 and false_alarm_interval(50, 50)["high"] == 1.0
