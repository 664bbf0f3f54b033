"""Stream metrics against TSB-AD's own values (fixture), a brute-force VUS, scikit-learn and hand-computed cases."""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from utils.metrics.stream_metrics import (
    event_counts,
    point_adjusted_f1,
    point_precision_recall_f1,
    range_precision_recall_f1,
    stream_metrics,
    threshold_grid,
    vus_roc_pr,
)

FIXTURE = Path(__file__).parent / "fixtures" / "tsb_ad" / "tsb_ad_metrics.json"
TOL = 1e-9  # the fixture agrees to ~2e-16; only the order of float sums differs from TSB-AD's loops


def _cases() -> list[dict]:
    return json.loads(FIXTURE.read_text())["cases"]


def _inputs(case: dict) -> tuple[np.ndarray, np.ndarray]:
    labels = np.zeros(case["n"], dtype=np.int64)
    for start, end in case["label_ranges"]:
        labels[start:end] = 1
    return labels, np.array(case["scores"])


# ----------------------------------------------------------------------------- TSB-AD fixture
@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_vus_matches_tsb_ad(case):
    labels, scores = _inputs(case)
    for buffer, expected in case["vus"].items():
        roc, pr = vus_roc_pr(labels, scores, int(buffer))
        assert roc == pytest.approx(expected["vus_roc"], abs=TOL), f"VUS-ROC, buffer {buffer}"
        assert pr == pytest.approx(expected["vus_pr"], abs=TOL), f"VUS-PR, buffer {buffer}"


@pytest.mark.parametrize("case", _cases(), ids=lambda c: c["name"])
def test_thresholded_measures_match_tsb_ad(case):
    labels, scores = _inputs(case)
    for at in case["at_threshold"]:
        alarms = (scores > at["threshold"]).astype(np.int64)
        precision, recall, f1 = range_precision_recall_f1(labels, alarms)
        assert precision == pytest.approx(at["range_precision"], abs=TOL)
        assert recall == pytest.approx(at["range_recall"], abs=TOL)
        assert f1 == pytest.approx(at["range_f1"], abs=TOL)
        assert point_precision_recall_f1(labels, alarms)[2] == pytest.approx(at["point_f1"], abs=TOL)
        assert point_adjusted_f1(labels, alarms) == pytest.approx(at["pa_f1_row0_padded"], abs=TOL)
        out = stream_metrics(labels, scores, at["threshold"], vus_buffer=int(next(iter(case["vus"]))))
        assert out["range"]["f1"] == pytest.approx(at["range_f1"], abs=TOL)
        assert out["roc_auc"] == pytest.approx(case["roc_auc"], abs=TOL)
        assert out["pr_auc"] == pytest.approx(case["pr_auc"], abs=TOL)
        assert out["vus_roc"] == pytest.approx(next(iter(case["vus"].values()))["vus_roc"], abs=TOL)


def _row0_quirk(labels: np.ndarray, alarms: np.ndarray) -> bool:
    """TSB-AD's _adjust_predicts leaves row 0 unadjusted: a range at row 0, unalarmed there, alarmed later."""
    end = int(np.argmin(labels)) if not labels.all() else len(labels)
    return bool(labels[0] == 1 and alarms[0] == 0 and alarms[:end].any())


def test_point_adjusted_f1_differs_from_tsb_ad_only_by_its_row0_quirk():
    quirky = 0
    for case in _cases():
        labels, scores = _inputs(case)
        for at in case["at_threshold"]:
            alarms = (scores > at["threshold"]).astype(np.int64)
            ours = point_adjusted_f1(labels, alarms)
            if _row0_quirk(labels, alarms):
                quirky += 1
                assert ours > at["pa_f1"]
            else:
                assert ours == pytest.approx(at["pa_f1"], abs=TOL)
    assert quirky >= 1  # the fixture holds the case the docstring describes


# ----------------------------------------------------------------------------- brute-force VUS
def _vus_brute(labels: np.ndarray, scores: np.ndarray, buffer: int) -> tuple[float, float]:
    """The definition in utils/metrics/stream_metrics.py, row by row: one extended label vector per buffer and cut."""
    n, ranges = len(labels), []
    for i in range(n):
        if labels[i] and (i == 0 or not labels[i - 1]):
            ranges.append([i, i])
        if labels[i]:
            ranges[-1][1] = i
    cuts = np.sort(scores)[::-1][np.linspace(0, n - 1, 250).astype(int)]
    rocs, prs = [], []
    for w in range(buffer + 1):
        h, weight = w // 2, np.zeros(n)
        for s, e in ranges:
            for d in range(1, h + 1):
                for x in (s - d, e + d):
                    if 0 <= x < n:
                        weight[x] += np.sqrt(1 - d / w)
        weight = np.where(labels == 1, 1.0, np.minimum(weight, 1.0))
        groups = [[max(ranges[0][0] - h, 0), ranges[0][1] + h]]
        for s, e in ranges[1:]:
            if s - h <= groups[-1][1]:
                groups[-1][1] = e + h
            else:
                groups.append([s - h, e + h])
        tpr, fpr, prec = [0.0], [0.0], []
        for cut in cuts:
            alarm = scores >= cut
            tp = float(np.sum(weight * alarm))
            p_new = (labels.sum() + np.sum(np.where(labels == 1, 1.0, weight * alarm))) / 2
            hit = sum(alarm[a:min(b, n - 1) + 1].any() for a, b in groups)
            tpr.append(min(tp / p_new, 1.0) * hit / len(groups))
            fpr.append((alarm.sum() - tp) / (n - p_new))
            prec.append(tp / alarm.sum())
        tpr, fpr = np.array(tpr + [1.0]), np.array(fpr + [1.0])
        rocs.append(np.sum(np.diff(fpr) * (tpr[1:] + tpr[:-1]) / 2))
        prs.append(np.sum(np.diff(tpr[:-1]) * np.array(prec)))
    return float(np.mean(rocs)), float(np.mean(prs))


@pytest.mark.parametrize("seed", range(12))
def test_vus_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    n = int(rng.integers(8, 90))
    labels = (rng.random(n) < rng.choice([0.05, 0.2, 0.5])).astype(np.int64)
    labels[rng.integers(0, 2) * (n - 1)] = 1  # a range at the first or the last row
    labels[rng.integers(0, n)] = 0
    scores = np.round(rng.normal(size=n) + labels, int(rng.integers(0, 3)))  # ties at 0 decimals
    buffer = int(rng.integers(0, 14))
    assert vus_roc_pr(labels, scores, buffer) == pytest.approx(_vus_brute(labels, scores, buffer), abs=TOL)


def test_threshold_grid_repeats_cuts_on_short_series():
    cuts = threshold_grid(np.array([3.0, 1.0, 2.0]))
    assert len(cuts) == 250 and cuts[0] == 3.0 and cuts[-1] == 1.0 and set(cuts) == {1.0, 2.0, 3.0}


def test_vus_of_perfect_and_reversed_scores_without_buffer():
    labels = np.array([0, 0, 1, 1, 1, 0, 0, 0])
    perfect = labels + np.linspace(0, 0.1, 8)
    for buffer in (0, 1):  # a buffer of 1 row adds w // 2 = 0 rows each side
        assert vus_roc_pr(labels, perfect, buffer) == pytest.approx((1.0, 1.0), abs=TOL)
        assert vus_roc_pr(labels, -perfect, buffer)[0] == pytest.approx(0.0, abs=TOL)
    assert vus_roc_pr(np.zeros(5), np.arange(5.0), 3) == (None, None)
    assert vus_roc_pr(np.ones(5), np.arange(5.0), 3) == (None, None)


# ----------------------------------------------------------------------------- hand-computed cases
def test_no_anomaly():
    out = stream_metrics(np.zeros(10), np.array([0, 5, 5, 0, 0, 5, 0, 0, 0, 0.0]), 1.0, vus_buffer=4)
    assert out["roc_auc"] is None and out["pr_auc"] is None and out["vus_roc"] is None and out["vus_pr"] is None
    assert out["point"] == {"precision": 0.0, "recall": None, "f1": None}
    assert out["range"] == {"precision": 0.0, "recall": None, "f1": None}
    assert (out["events"], out["events_detected"], out["event_recall"]) == (0, 0, None)
    assert out["false_alarms"] == 2 and out["point_adjusted_f1_OPTIMISTIC"] is None and out["n_anomalous"] == 0


def test_all_anomalous():
    out = stream_metrics(np.ones(4), np.array([0.1, 0.9, 0.2, 0.8]), 0.5, vus_buffer=2)
    assert out["roc_auc"] is None and out["vus_roc"] is None
    assert out["point"] == pytest.approx({"precision": 1.0, "recall": 0.5, "f1": 2 / 3})
    # recall: 0.2 * hit + 0.8 * (2 of 4 rows) * (1 / 2 alarm ranges) = 0.4; each alarm range wholly labelled
    assert out["range"] == pytest.approx({"precision": 1.0, "recall": 0.4, "f1": 0.8 / 1.4})
    assert (out["events"], out["events_detected"], out["false_alarms"]) == (1, 1, 0)
    assert out["point_adjusted_f1_OPTIMISTIC"] == 1.0


def test_one_point():
    out = stream_metrics(np.array([1]), np.array([2.0]), 1.0, vus_buffer=5, sample_period_s=1.0)
    assert out["point"] == {"precision": 1.0, "recall": 1.0, "f1": 1.0}
    assert out["range"] == pytest.approx({"precision": 1.0, "recall": 1.0, "f1": 1.0})
    assert out["roc_auc"] is None and out["event_recall"] == 1.0 and out["false_alarms_per_hour"] == 0.0
    quiet = stream_metrics(np.array([0]), np.array([0.0]), 1.0, vus_buffer=0)
    assert quiet["point"] == {"precision": None, "recall": None, "f1": None} and quiet["false_alarms"] == 0


def test_ranges_touching_first_and_last_row():
    labels = np.array([1, 1, 0, 0, 0, 0, 1, 1])
    scores = np.array([0, 1, 0, 0, 1, 0, 0, 1.0])  # alarms at rows 1, 4, 7
    out = stream_metrics(labels, scores, 0.5, vus_buffer=3)
    assert out["point"] == pytest.approx({"precision": 2 / 3, "recall": 0.5, "f1": 4 / 7})
    # recall per range 0.2 + 0.8 * 1/2 = 0.6; precision (1 + 0 + 1) / 3
    assert out["range"] == pytest.approx({"precision": 2 / 3, "recall": 0.6, "f1": 12 / 19})
    assert (out["events"], out["events_detected"], out["false_alarms"]) == (2, 2, 1)
    # adjusted alarms: rows 0, 1, 4, 6, 7 -> tp 4, fp 1, fn 0 (TSB-AD leaves row 0 out: 0.75)
    assert out["point_adjusted_f1_OPTIMISTIC"] == pytest.approx(8 / 9)


def test_threshold_above_every_score():
    labels = np.array([0, 1, 1, 0, 0, 1, 0])
    out = stream_metrics(labels, np.arange(7.0), 100.0, vus_buffer=2)
    assert out["point"] == {"precision": None, "recall": 0.0, "f1": 0.0}
    assert out["range"] == {"precision": None, "recall": 0.0, "f1": 0.0}
    assert (out["events"], out["events_detected"], out["event_recall"], out["false_alarms"]) == (2, 0, 0.0, 0)
    assert out["point_adjusted_f1_OPTIMISTIC"] == 0.0 and out["roc_auc"] is not None


def test_merge_gap_merges_two_false_alarms():
    labels = np.zeros(20, dtype=np.int64)
    labels[15:18] = 1
    alarms = np.zeros(20, dtype=np.int64)
    alarms[[2, 4, 16]] = 1  # two false alarms one row apart, one hit
    assert event_counts(labels, alarms, merge_gap=0) == (1, 1, 2)
    assert event_counts(labels, alarms, merge_gap=1) == (1, 1, 1)
    assert stream_metrics(labels, alarms.astype(float), 0.5, vus_buffer=2, merge_gap=1)["false_alarms"] == 1


def test_false_alarms_per_hour():
    labels = np.zeros(7200, dtype=np.int64)
    scores = np.zeros(7200)
    scores[[10, 500, 501, 4000]] = 1.0  # three alarm ranges
    timed = stream_metrics(labels, scores, 0.5, vus_buffer=0, sample_period_s=1.0)
    assert (timed["false_alarms"], timed["hours"], timed["false_alarms_per_hour"]) == (3, 2.0, 1.5)
    untimed = stream_metrics(labels, scores, 0.5, vus_buffer=0)
    assert untimed["hours"] is None and untimed["false_alarms_per_hour"] is None and untimed["false_alarms"] == 3


# ----------------------------------------------------------------------------- scikit-learn, PA-F1, JSON
def test_point_measures_equal_scikit_learn():
    rng = np.random.default_rng(7)
    labels = (rng.random(500) < 0.1).astype(np.int64)
    scores = rng.normal(size=500) + labels
    out = stream_metrics(labels, scores, 1.0, vus_buffer=10)
    assert out["roc_auc"] == pytest.approx(roc_auc_score(labels, scores), abs=1e-12)
    assert out["pr_auc"] == pytest.approx(average_precision_score(labels, scores), abs=1e-12)
    assert out["point"]["f1"] == pytest.approx(f1_score(labels, scores > 1.0), abs=1e-12)
    assert json.loads(json.dumps(out, allow_nan=False)) == out
    assert all(type(v) in (int, float, dict, type(None)) for v in out.values())


def test_point_adjustment_flatters():
    labels = np.zeros(100, dtype=np.int64)
    labels[20:60] = 1
    alarms = np.zeros(100, dtype=np.int64)
    alarms[[30, 80]] = 1  # one alarm in a 40-row range, one false alarm
    point_f1 = point_precision_recall_f1(labels, alarms)[2]
    assert point_f1 == pytest.approx(2 / 42)  # tp 1, fp 1, fn 39
    adjusted = point_adjusted_f1(labels, alarms)
    assert adjusted == pytest.approx(80 / 81) and adjusted > point_f1  # tp 40, fp 1


# ----------------------------------------------------------------------------- input checks
@pytest.mark.parametrize("labels, scores, match", [
    (np.zeros(4), np.zeros(5), "labels has 4 time steps but scores has 5"),
    (np.array([0, 1, 2, 0]), np.zeros(4), r"0 \(normal\) or 1 \(anomaly\); row 2 holds 2"),
    (np.array([0, 0.5, 1, 0]), np.zeros(4), "row 1 holds 0.5"),
    (np.zeros(4), np.array([0, np.nan, 1, 0]), "finite; row 1 holds nan"),
    (np.zeros(4), np.array([0, 0, np.inf, 0]), "finite; row 2 holds inf"),
    (np.zeros((2, 2)), np.zeros(4), r"shape \(n,\)"),
    (np.zeros(0), np.zeros(0), "empty"),
])
def test_bad_inputs_raise(labels, scores, match):
    with pytest.raises(ValueError, match=match):
        stream_metrics(labels, scores, 0.5, vus_buffer=3)


@pytest.mark.parametrize("options, match", [
    ({"vus_buffer": -1}, "vus_buffer must be an integer"),
    ({"vus_buffer": 3, "merge_gap": 1.5}, "merge_gap must be an integer"),
    ({"vus_buffer": 3, "sample_period_s": 0}, "sample_period_s must be a positive"),
])
def test_bad_options_raise(options, match):
    with pytest.raises(ValueError, match=match):
        stream_metrics(np.array([0, 1, 0]), np.array([0.0, 1.0, 0.0]), 0.5, **options)
    with pytest.raises(ValueError, match="threshold must be a number"):
        stream_metrics(np.array([0, 1]), np.array([0.0, 1.0]), float("nan"), vus_buffer=1)


def test_building_blocks_check_alarms():
    with pytest.raises(ValueError, match="labels has 3 time steps but alarms has 2"):
        range_precision_recall_f1(np.array([0, 1, 0]), np.array([0, 1]))
    with pytest.raises(ValueError, match="alarms must be a"):
        event_counts(np.array([0, 1, 0]), np.array([0, 0.3, 1]))
    with pytest.raises(ValueError, match="buffer must be"):
        vus_roc_pr(np.array([0, 1, 0]), np.array([0.0, 1.0, 0.0]), -2)


# ----------------------------------------------------------------------------- pooled over streams (SKAB)
def _random_streams(seed: int, lengths=(50, 80, 1, 33)) -> list[tuple[np.ndarray, np.ndarray]]:
    rng = np.random.default_rng(seed)
    return [((rng.random(n) < 0.3).astype(np.int64), (rng.random(n) < 0.25).astype(np.int64)) for n in lengths]


@pytest.mark.parametrize("seed", range(5))
def test_pooled_confusion_is_sklearns_on_the_concatenated_streams(seed):
    from sklearn.metrics import confusion_matrix

    from utils.metrics.stream_metrics import pooled_confusion

    streams = _random_streams(seed)
    y, a = (np.concatenate(parts) for parts in zip(*streams))
    (tn, fp), (fn, tp) = confusion_matrix(y, a, labels=[0, 1])
    pooled = pooled_confusion(streams)
    assert (pooled["tp"], pooled["fp"], pooled["fn"], pooled["tn"]) == (tp, fp, fn, tn)
    assert pooled["f1"] == pytest.approx(f1_score(y, a))
    assert pooled["far_pct"] == pytest.approx(100 * fp / (fp + tn))
    assert pooled["mar_pct"] == pytest.approx(100 * fn / (fn + tp))
    assert pooled["n_streams"] == 4


def test_pooled_confusion_leaves_undefined_rates_none():
    from utils.metrics.stream_metrics import pooled_confusion

    all_normal_quiet = pooled_confusion([(np.zeros(5, int), np.zeros(5, int))])
    assert all_normal_quiet["f1"] is None and all_normal_quiet["mar_pct"] is None
    assert all_normal_quiet["far_pct"] == 0.0 and all_normal_quiet["tn"] == 5
    all_anomalous = pooled_confusion([(np.ones(4, int), np.array([1, 0, 0, 0]))])
    assert all_anomalous["far_pct"] is None and all_anomalous["mar_pct"] == 75.0
    assert all_anomalous["f1"] == pytest.approx(1 / (1 + 3 / 2))
    with pytest.raises(ValueError, match="labels has 3 time steps but alarms has 2"):
        pooled_confusion([(np.zeros(3, int), np.zeros(2, int))])


def test_mean_over_streams_skips_undefined_values_and_counts_the_rest():
    from utils.metrics.stream_metrics import mean_over_streams

    results = [{"vus_pr": 0.2, "range": {"f1": None}}, {"vus_pr": 0.6, "range": {"f1": 0.5}},
               {"vus_pr": None, "range": {"f1": None}}]
    out = mean_over_streams(results, {"vus_pr": ("vus_pr",), "range_f1": ("range", "f1"), "gone": ("nope",)})
    assert out["vus_pr"] == {"mean": pytest.approx(0.4), "std": pytest.approx(0.2), "n": 2}
    assert out["range_f1"] == {"mean": 0.5, "std": 0.0, "n": 1}
    assert out["gone"] == {"mean": None, "std": None, "n": 0}
