"""Time-series metrics of one stream: per-time-step scores against per-time-step labels, vectorised.

Alarms are ``score > threshold``; ranges are :mod:`utils.metrics.ranges`'s. Where TSB-AD has a measure the value
matches it (fixture ``tests/fixtures/tsb_ad``) except at the edge cases each docstring names. Undefined is None.
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np

from utils.metrics.ranges import alarm_ranges, label_ranges, overlapping
from utils.metrics.vus import check_inputs, check_rows, vus_roc_pr
from utils.metrics.window_metrics import roc_pr_auc

RANGE_RECALL_ALPHA = 0.2  # TSB-AD's metric_RF1: range_recall_new(labels, preds, alpha=0.2)


def _flags(labels: Any, alarms: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels and alarms as int64 (n,) arrays of 0/1, or a ValueError naming the bad one."""
    y, a = np.asarray(labels), np.asarray(alarms)
    for name, arr in (("labels", y), ("alarms", a)):
        if arr.ndim != 1 or not ((arr == 0) | (arr == 1)).all():
            raise ValueError(f"{name} must be a (n,) array of 0/1, got shape {arr.shape} "
                             f"with values {np.unique(arr)[:5].tolist()}")
    if len(y) != len(a):
        raise ValueError(f"labels has {len(y)} time steps but alarms has {len(a)}; they must match")
    return y.astype(np.int64), a.astype(np.int64)


def _ratio(num: float, den: float) -> float | None:
    return None if den == 0 else float(num / den)


def _f1(precision: float | None, recall: float | None) -> float | None:
    """Harmonic mean; None without labelled anomalies, 0 with anomalies but no alarms."""
    if recall is None:
        return None
    return 0.0 if precision is None or precision + recall == 0 else 2 * precision * recall / (precision + recall)


def point_precision_recall_f1(labels: np.ndarray, alarms: np.ndarray
                              ) -> tuple[float | None, float | None, float | None]:
    """Point-wise ``(precision, recall, f1)`` of (n,) 0/1 labels and alarms: precision None without alarms, recall and
    F1 None without labelled anomalies (scikit-learn's ``zero_division=0`` would say 0), F1 0 with no alarms."""
    c = confusion_counts(labels, alarms)
    precision, recall = _ratio(c["tp"], c["tp"] + c["fp"]), _ratio(c["tp"], c["tp"] + c["fn"])
    return precision, recall, _f1(precision, recall)


def _flagged(ranges: np.ndarray, flags: np.ndarray) -> np.ndarray:
    """(k,) how many nonzero flags each range holds."""
    cum = np.concatenate([[0], np.cumsum(flags)])
    return cum[ranges[:, 1]] - cum[ranges[:, 0]]


def _range_score(own: np.ndarray, other: np.ndarray, other_flags: np.ndarray, alpha: float) -> float:
    """Tatbul et al.'s range recall of ``own`` ranges by ``other``: flat bias, cardinality 1 / #ranges met."""
    fraction = _flagged(own, other_flags) / (own[:, 1] - own[:, 0])  # share of its rows flagged
    met = np.searchsorted(other[:, 0], own[:, 1], side="left") - np.searchsorted(other[:, 1], own[:, 0], side="right")
    cardinality = np.where(met > 0, 1.0 / np.maximum(met, 1), 0.0)
    return float(np.mean(alpha * (met > 0) + (1 - alpha) * fraction * cardinality))


def range_precision_recall_f1(labels: np.ndarray, alarms: np.ndarray, alpha: float = RANGE_RECALL_ALPHA
                              ) -> tuple[float | None, float | None, float | None]:
    """Range-based ``(precision, recall, f1)`` (Tatbul et al., NeurIPS 2018) of (n,) 0/1 labels and alarms, as
    TSB-AD's ``metric_RF1``.

    Recall averages, over the labelled ranges, ``alpha * [hit] + (1 - alpha) * (share of its rows alarmed)
    / (alarm ranges it meets)``; precision swaps the roles with ``alpha = 0`` (flat bias; TSB-AD's alpha 0.2).
    Unlike TSB-AD (0 there): precision None without alarms, recall and F1 None without labelled anomalies; a run
    covering the whole series is one range (TSB-AD finds none in it).
    """
    y, a = _flags(labels, alarms)
    truth, found = label_ranges(y), label_ranges(a)
    recall = _range_score(truth, found, a, alpha) if len(truth) else None
    precision = _range_score(found, truth, y, 0.0) if len(found) else None
    return precision, recall, _f1(precision, recall)


def point_adjusted_f1(labels: np.ndarray, alarms: np.ndarray) -> float | None:
    """Point-adjusted F1 (Xu et al. 2018) of (n,) 0/1 labels and alarms: a range with one alarm counts as wholly
    alarmed. Optimistic; never report it alone. None without labelled anomalies (TSB-AD: 0).

    Matches TSB-AD's ``metric_PointF1PA`` except for a range starting at row 0 whose first alarm comes later:
    TSB-AD's backward loop (``range(i, 0, -1)``) never reaches row 0 and leaves it unalarmed.
    """
    y, a = (v.astype(bool) for v in _flags(labels, alarms))
    truth = label_ranges(y)
    if len(truth) == 0:
        return None
    hit = _flagged(truth, a) > 0
    tp = int(np.sum(truth[hit, 1] - truth[hit, 0]))  # every row of a hit range
    fp = int(np.sum(a & ~y))
    fn = int(y.sum()) - tp
    return 2 * tp / (2 * tp + fp + fn)


def event_counts(labels: np.ndarray, alarms: np.ndarray, merge_gap: int = 0) -> tuple[int, int, int]:
    """``(events, events_detected, false_alarms)`` of (n,) 0/1 labels and alarms: labelled ranges, those with an
    alarmed time step, and alarm ranges (runs at most ``merge_gap`` rows apart merged) meeting none."""
    y, a = _flags(labels, alarms)
    truth = label_ranges(y)
    detected = int(np.sum(_flagged(truth, a) > 0))
    raised = alarm_ranges(a, 0.5, merge_gap)
    return len(truth), detected, int(np.sum(~overlapping(raised, truth)))


def _check_options(threshold: float | np.ndarray, n: int, vus_buffer: int, merge_gap: int,
                   sample_period_s: float | None) -> None:
    if isinstance(threshold, np.ndarray):
        if threshold.shape != (n,) or np.isnan(threshold).any():
            raise ValueError(f"per-time-step thresholds must be ({n},) without NaN, got shape {threshold.shape}")
    elif not isinstance(threshold, (int, float, np.number)) or isinstance(threshold, bool) or math.isnan(threshold):
        raise ValueError(f"threshold must be a number, got {threshold!r}")
    check_rows(vus_buffer, "vus_buffer")
    check_rows(merge_gap, "merge_gap")
    if sample_period_s is not None and (isinstance(sample_period_s, bool) or not isinstance(
            sample_period_s, (int, float, np.number)) or not 0 < sample_period_s < math.inf):
        raise ValueError(f"sample_period_s must be a positive number of seconds or None, got {sample_period_s!r}")


def stream_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float | np.ndarray, *, vus_buffer: int,
                   merge_gap: int = 0, sample_period_s: float | None = None) -> dict[str, Any]:
    """Every stream metric of (n,) 0/1 ``labels`` and (n,) finite ``scores`` (higher = more anomalous), as a JSON-able
    dict (None where undefined).

    Args:
        threshold: alarms are ``scores > threshold``; one number, or (n,) one per time step.
        vus_buffer: largest buffer (rows) of VUS-ROC/VUS-PR (TSB-AD's ``slidingWindow``).
        merge_gap: alarm runs at most this many rows apart are one alarm when counting false alarms.
        sample_period_s: seconds between time steps; None leaves the hours and the per-hour rate None.

    Returns:
        ``n``, ``n_anomalous``, ``roc_auc``, ``pr_auc`` (point-wise), ``vus_roc``, ``vus_pr``, ``vus_buffer``,
        ``point`` and ``range`` (``precision``, ``recall``, ``f1``), ``events``, ``events_detected``,
        ``event_recall``, ``false_alarms``, ``hours``, ``false_alarms_per_hour``, ``point_adjusted_f1_OPTIMISTIC``.
    """
    y, s = check_inputs(labels, scores)
    _check_options(threshold, len(s), vus_buffer, merge_gap, sample_period_s)
    alarms = (s > threshold).astype(np.int64)  # utils.core.arrays.predict, without re-checking
    roc_auc, pr_auc = roc_pr_auc(y, s)
    vus_roc, vus_pr = vus_roc_pr(y, s, int(vus_buffer))
    events, detected, false_alarms = event_counts(y, alarms, int(merge_gap))
    hours = None if sample_period_s is None else len(y) * float(sample_period_s) / 3600.0
    return {
        "n": len(y), "n_anomalous": int(y.sum()),
        "roc_auc": roc_auc, "pr_auc": pr_auc,
        "vus_roc": vus_roc, "vus_pr": vus_pr, "vus_buffer": int(vus_buffer),
        "point": dict(zip(("precision", "recall", "f1"), point_precision_recall_f1(y, alarms))),
        "range": dict(zip(("precision", "recall", "f1"), range_precision_recall_f1(y, alarms))),
        "events": events, "events_detected": detected, "event_recall": _ratio(detected, events),
        "false_alarms": false_alarms, "hours": hours,
        "false_alarms_per_hour": None if hours is None else false_alarms / hours,
        "point_adjusted_f1_OPTIMISTIC": point_adjusted_f1(y, alarms),
    }


def metric_at(result: dict[str, Any], path: tuple[str, ...]) -> Any:
    """The value at ``path`` (keys) in nested dicts, None where a key is missing."""
    value: Any = result
    for key in path:
        value = value.get(key) if isinstance(value, dict) else None
    return value


def confusion_counts(labels: np.ndarray, alarms: np.ndarray) -> dict[str, int]:
    """``{"tp", "fp", "fn", "tn"}``: time steps of (n,) 0/1 labels and alarms by label and alarm."""
    y, a = (v.astype(bool) for v in _flags(labels, alarms))
    return {"tp": int(np.sum(y & a)), "fp": int(np.sum(~y & a)), "fn": int(np.sum(y & ~a)),
            "tn": int(np.sum(~y & ~a))}


def pooled_confusion(streams: Any) -> dict[str, Any]:
    """``{"tp", "fp", "fn", "tn", "f1", "far_pct", "mar_pct", "n_streams"}`` summed over ``(labels, alarms)`` pairs
    of (n_i,) 0/1 arrays, with SKAB's ``F1 = TP / (TP + (FP + FN) / 2)``, ``FAR % = 100 FP / (FP + TN)`` and
    ``MAR % = 100 FN / (FN + TP)`` (None where the denominator is 0)."""
    counts = [confusion_counts(labels, alarms) for labels, alarms in streams]
    tp, fp, fn, tn = (sum(c[key] for c in counts) for key in ("tp", "fp", "fn", "tn"))
    far, mar = _ratio(100 * fp, fp + tn), _ratio(100 * fn, fn + tp)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "f1": _ratio(tp, tp + (fp + fn) / 2), "far_pct": far,
            "mar_pct": mar, "n_streams": len(counts)}


def mean_over_streams(results: list[dict[str, Any]], paths: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """``{name: {"mean", "std" (ddof=0), "n"}}`` over the streams' :func:`stream_metrics` ``results`` where the value
    at ``paths[name]`` (keys, e.g. ``("range", "f1")``) is defined (mean and std None where none is)."""
    out = {}
    for name, path in paths.items():
        values = [float(v) for v in (metric_at(r, path) for r in results) if v is not None]
        out[name] = {"mean": float(np.mean(values)) if values else None,
                     "std": float(np.std(values)) if values else None, "n": len(values)}
    return out
