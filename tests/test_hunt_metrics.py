"""Metrics in situations a user meets, checked against independent references (scikit-learn, scipy, NumPy by hand)."""
from __future__ import annotations

from utils.metrics.promise import time_step_verdicts


def test_a_time_step_verdict_does_not_say_windows_kept_a_promise_no_window_could_judge():
    # every test window holds a labelled row (dense short faults), so the windows' promise is not judged; the
    # normal time steps between the faults broke theirs
    not_judged = {"promise_kept": None, "verdict": "not judged: no normal test windows"}
    broken = {"promise_kept": False, "verdict": "broken: alarmed on 900 of 3000 normal test time steps"}
    metrics = {"scores": {"a": {"false_alarm": not_judged}},
               "stream": {"point_aggregation": "max", "max_windows_per_time_step": 2,
                          "scores": {"a": {"false_alarm": broken}}}}
    (kept, _, line), = time_step_verdicts(metrics)
    assert kept is False
    assert "kept it" not in line
    assert "no normal test window judged it (every test window holds a labelled row)" in line
    assert "a time step takes the max of the up to 2 windows covering it" in line
