"""Metrics in situations a user meets, checked against independent references (scikit-learn, scipy, NumPy by hand)."""
from __future__ import annotations

import numpy as np
import pytest
from scipy.stats import beta

from tests.test_stream_metrics import _vus_brute
from utils.metrics.promise import PROMISE_ADVICE, false_alarm_interval, promise_advice, time_step_verdicts
from utils.metrics.stream_metrics import (event_counts, point_adjusted_f1, range_precision_recall_f1, stream_metrics,
                                          vus_roc_pr)
from utils.metrics.window_metrics import binary_metrics


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


@pytest.mark.parametrize(("stream", "labelled"), [
    ({"scores": {"a": {"events": 0}}}, False), ({"scores": {"a": {"events": 2}}}, True),
    ({"pooled": {"scores": {"a": {"confusion": {"tp": 0, "fn": 0}}}}}, False),
    ({"pooled": {"scores": {"a": {"confusion": {"tp": 0, "fn": 7}}}}}, True)])
def test_a_time_step_verdict_blames_labelled_ranges_only_where_the_test_part_has_one(stream, labelled):
    kept = {"promise_kept": True, "verdict": "kept"}
    broken = {"promise_kept": False, "verdict": "broken: alarmed on 900 of 3000 normal test time steps"}
    section = stream.get("pooled", stream)
    section.update(point_aggregation="max", max_windows_per_time_step=4)
    section["scores"]["a"]["false_alarm"] = broken
    (_, _, line), = time_step_verdicts({"scores": {"a": {"false_alarm": kept}}, "stream": stream})
    assert ("normal time steps beside a labelled range share its windows" in line) is labelled
    assert "a time step takes the max of the up to 4 windows covering it" in line


@pytest.mark.parametrize("n_alarms, n_normals", [(0, 1), (1, 1), (0, 50), (50, 50), (3, 200), (199, 200)])
def test_false_alarm_interval_is_clopper_pearson_by_beta_quantiles(n_alarms, n_normals):
    for confidence in (0.9, 0.95, 0.99):
        tail = (1 - confidence) / 2
        low = 0.0 if n_alarms == 0 else beta.ppf(tail, n_alarms, n_normals - n_alarms + 1)
        high = 1.0 if n_alarms == n_normals else beta.ppf(1 - tail, n_alarms + 1, n_normals - n_alarms)
        out = false_alarm_interval(n_alarms, n_normals, confidence)
        assert (out["low"], out["high"]) == pytest.approx((low, high), rel=1e-7, abs=1e-12)
        assert out["rate"] == n_alarms / n_normals


@pytest.mark.parametrize("row", [0, 1, -2, -1])
@pytest.mark.parametrize("constant", [False, True])
def test_vus_of_one_anomalous_row_at_the_edges_with_a_buffer_beyond_the_series(row, constant):
    labels = np.zeros(12, dtype=np.int64)
    labels[row] = 1
    scores = np.ones(12) if constant else np.round(np.random.default_rng(row % 12).normal(size=12) + labels, 1)
    for buffer in (3, 30):  # 30 rows: every buffer reaches past both ends of the 12-row series
        assert vus_roc_pr(labels, scores, buffer) == pytest.approx(_vus_brute(labels, scores, buffer), abs=1e-9)


def test_stream_metrics_do_not_depend_on_the_dtype_of_labels_or_scores():
    rng = np.random.default_rng(0)
    labels = np.zeros(300, dtype=np.int64)
    labels[[0, 40, 41, 42, 150, 299]] = 1
    scores = (rng.normal(size=300) + 2 * labels).astype(np.float32)  # float32 values, exact in float64 too
    expected = stream_metrics(labels, scores.astype(np.float64), 1.0, vus_buffer=8, merge_gap=2)
    for y in (labels.astype(bool), labels.astype(np.float64), labels.astype(np.int8), labels.tolist()):
        assert stream_metrics(y, scores, np.float32(1.0), vus_buffer=8, merge_gap=2) == expected


def test_an_alarm_run_ending_where_a_labelled_range_starts_is_a_false_alarm_that_detects_nothing():
    labels = np.array([0, 0, 0, 1, 1, 0, 0, 0])
    alarms = np.array([0, 1, 1, 0, 0, 1, 1, 0])  # runs [1, 3) and [5, 7) touch [3, 5) but share no row
    assert event_counts(labels, alarms) == (1, 0, 2)
    assert range_precision_recall_f1(labels, alarms) == (0.0, 0.0, 0.0)
    assert point_adjusted_f1(labels, alarms) == 0.0


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_a_nan_or_infinite_score_is_a_value_error_not_a_number(bad):
    labels, scores = np.array([0, 1, 0, 0]), np.array([0.1, 0.9, bad, 0.2])
    with pytest.raises(ValueError, match="finite"):
        stream_metrics(labels, scores, 0.5, vus_buffer=2)
    with pytest.raises(ValueError, match="finite"):
        vus_roc_pr(labels, scores, 2)
    with pytest.raises(ValueError, match="NaN or inf"):
        binary_metrics(labels, scores, 0.5)


@pytest.mark.parametrize("data, train_end, normalize", [
    ({"dataset": "converter", "val_fraction": 0.15}, False, False),  # no data.train_end or data.normalize key
    ({"dataset": "ecg5000", "protocol": "merged"}, False, False),
    ({"dataset": "csv", "split": "random", "train_end": None, "normalize": "none"}, False, False),  # both refused
    ({"dataset": "csv", "split": "contiguous", "train_end": None, "normalize": "none"}, True, True),
    ({"dataset": "skab", "split": "contiguous", "train_end": 400, "normalize": "per_recording"}, True, False),
])
def test_the_advice_on_a_broken_promise_names_only_keys_the_run_could_set(data, train_end, normalize):
    advice = promise_advice({"data": data})
    assert advice.startswith("calibrate on more normal data (raise data.val_fraction")
    assert ("data.train_end" in advice) is train_end
    assert ("data.normalize" in advice) is normalize
    assert "data.train_end" in PROMISE_ADVICE and "data.normalize" in PROMISE_ADVICE  # every remedy
