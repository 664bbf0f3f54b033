"""Vectorised time-series metrics of one stream (alarms: ``score > threshold``; undefined: None). Values match TSB-AD
(fixture ``tests/fixtures/tsb_ad``) except at the edge cases each docstring names; VUS-ROC/VUS-PR reproduce its
``RangeAUC_volume_opt`` without its O(L * m * n) loops (docs/streams.md, "How VUS-ROC and VUS-PR are computed")."""
from __future__ import annotations

import functools
import math
from typing import Any

import numpy as np

from utils.metrics.ranges import alarm_ranges, coverage, label_ranges, overlapping
from utils.metrics.window_metrics import roc_pr_auc

RANGE_RECALL_ALPHA = 0.2  # TSB-AD's metric_RF1: range_recall_new(labels, preds, alpha=0.2)
TSB_AD_THRESHOLDS = 250  # get_metrics(..., thre=250)


def check_inputs(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Checked ``(labels int64 (n,), scores float64 (n,))`` of (n,) 0/1 labels and finite scores, or a ValueError."""
    y, s = np.asarray(labels), np.asarray(scores)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"labels and scores must have shape (n,), got {y.shape} and {s.shape}")
    if len(y) != len(s):
        raise ValueError(f"labels has {len(y)} time steps but scores has {len(s)}; they must match")
    if len(s) == 0:
        raise ValueError("labels and scores are empty; need at least one time step")
    bad = np.flatnonzero((y != 0) & (y != 1))
    if len(bad):
        raise ValueError(f"labels must be 0 (normal) or 1 (anomaly); row {bad[0]} holds {y[bad[0]].item()!r} "
                         f"({len(bad)} such rows)")
    try:
        s = s.astype(np.float64)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"scores must be numbers, got dtype {s.dtype}") from exc
    bad = np.flatnonzero(~np.isfinite(s))
    if len(bad):
        raise ValueError(f"scores must be finite; row {bad[0]} holds {s[bad[0]]} ({len(bad)} NaN/inf rows)")
    return y.astype(np.int64), s


def check_rows(value: Any, name: str) -> None:
    """A ValueError naming ``name`` unless ``value`` is an integer number of rows >= 0 (not a bool)."""
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 0:
        raise ValueError(f"{name} must be an integer number of rows >= 0, got {value!r}")


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
    """Point-wise ``(precision, recall, f1)`` of (n,) 0/1 labels and alarms (None where 0/0; F1 0 without alarms)."""
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
    """Range-based ``(precision, recall, f1)`` (Tatbul et al. 2018, flat bias) of (n,) 0/1 labels and alarms, as
    TSB-AD's ``metric_RF1``; precision is recall with the roles swapped and ``alpha = 0``. Unlike TSB-AD: None
    where it says 0 (no alarms, no anomalies), and a run covering the whole series is one range (none there)."""
    y, a = _flags(labels, alarms)
    truth, found = label_ranges(y), label_ranges(a)
    recall = _range_score(truth, found, a, alpha) if len(truth) else None
    precision = _range_score(found, truth, y, 0.0) if len(found) else None
    return precision, recall, _f1(precision, recall)


def point_adjusted_f1(labels: np.ndarray, alarms: np.ndarray) -> float | None:
    """Point-adjusted F1 (Xu et al. 2018; optimistic): a range with one alarm counts as wholly alarmed. None without
    anomalies (TSB-AD: 0); TSB-AD's ``metric_PointF1PA`` leaves row 0 of a range unalarmed (``range(i, 0, -1)``)."""
    y, a = (v.astype(bool) for v in _flags(labels, alarms))
    truth = label_ranges(y)
    if len(truth) == 0:
        return None
    hit = _flagged(truth, a) > 0
    tp = int(np.sum(truth[hit, 1] - truth[hit, 0]))  # every row of a hit range
    fp, fn = int(np.sum(a & ~y)), int(y.sum()) - tp
    return 2 * tp / (2 * tp + fp + fn)


def event_counts(labels: np.ndarray, alarms: np.ndarray, merge_gap: int = 0) -> tuple[int, int, int]:
    """``(events, events_detected, false_alarms)``: labelled ranges, those alarmed, alarm runs meeting none."""
    y, a = _flags(labels, alarms)
    truth = label_ranges(y)
    detected = int(np.sum(_flagged(truth, a) > 0))
    raised = alarm_ranges(a, 0.5, merge_gap)
    return len(truth), detected, int(np.sum(~overlapping(raised, truth)))


def threshold_grid(scores: np.ndarray, n_thresholds: int = TSB_AD_THRESHOLDS) -> np.ndarray:
    """TSB-AD's cuts, (n_thresholds,) non-increasing: the sorted scores at ``linspace(0, n - 1, n_thresholds)``."""
    s = np.asarray(scores, dtype=np.float64)
    return np.sort(s)[::-1][np.linspace(0, len(s) - 1, n_thresholds).astype(int)]


def _second_nearest(x: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(d1, d2, nearest)``: distances of rows ``x`` to the nearest and second-nearest range (``ends`` inclusive)."""
    k, far = len(starts), np.iinfo(np.int64).max // 4
    i_prev = np.searchsorted(ends, x, side="left")  # ranges ending before x: 0 .. i_prev - 1
    i_next = np.searchsorted(starts, x, side="right")  # first range starting after x

    def dist(index: np.ndarray, before: bool) -> np.ndarray:
        ok = (index >= 0) & (index < k)
        safe = np.clip(index, 0, max(k - 1, 0))
        d = x - ends[safe] if before else starts[safe] - x
        return np.where(ok, d, far)

    dp1, dp2 = dist(i_prev - 1, True), dist(i_prev - 2, True)
    dn1, dn2 = dist(i_next, False), dist(i_next + 1, False)
    d1 = np.minimum(dp1, dn1)
    d2 = np.minimum(np.maximum(dp1, dn1), np.minimum(dp2, dn2))  # dp1 < dp2 and dn1 < dn2
    nearest = np.where(dp1 <= dn1, i_prev - 1, i_next)
    return d1, d2, nearest


def _joining(d: np.ndarray, buffer: int) -> list[np.ndarray]:
    """For w = 0 .. buffer, the rows (indices into ``d``) whose distance ``d`` first fits ``w // 2``."""
    order = np.argsort(d, kind="stable")
    return np.split(order, np.searchsorted(d[order], np.arange(buffer + 1) // 2, side="right"))[:-1]


def _buffer_sums(d1: np.ndarray, d2: np.ndarray, cut: np.ndarray, buffer: int, m: int) -> np.ndarray:
    """(buffer + 1, m): for buffer length w, the summed weights of the buffer rows first alarmed at cut j.

    A row weighs ``v = sqrt(1 - d1 / w)``, or ``v + (1 - v) = 1`` once ``d2 <= w // 2`` too: two (distance, cut)
    histograms (all rows; rows with ``d2 <= w // 2``, grown with w) give every w, each row added once.
    """
    size = buffer // 2 + 1
    all_rows = np.bincount(d1 * m + cut, minlength=size * m).reshape(size, m).astype(np.float64)
    doubled, out = np.zeros((size, m)), np.zeros((buffer + 1, m))
    for w, new in enumerate(_joining(d2, buffer)):
        if len(new):
            doubled += np.bincount(d1[new] * m + cut[new], minlength=size * m).reshape(size, m)
        h = w // 2
        v = np.sqrt(1 - np.arange(1, h + 1) / w)  # empty for w = 0, 1: they add no buffer rows
        out[w] = v @ all_rows[1:h + 1] + (1 - v) @ doubled[1:h + 1]
    return out


def _existence(ranges: np.ndarray, first_cut: np.ndarray, d1: np.ndarray, nearest: np.ndarray, cut: np.ndarray,
               buffer: int, m: int) -> np.ndarray:
    """(buffer + 1, m): share of the merged extended ranges holding an alarm, per buffer length and cut."""
    starts, ends = ranges[:, 0], ranges[:, 1] - 1
    # first cut alarming each labelled range; padded since a range ending at the last row gives index n
    per_range = np.minimum.reduceat(np.append(first_cut, m), ranges.reshape(-1))[::2]
    out = np.zeros((buffer + 1, m))
    for w, new in enumerate(_joining(d1, buffer)):
        h = w // 2
        np.minimum.at(per_range, nearest[new], cut[new])  # buffer rows join their nearest range
        group_starts = np.concatenate([[0], np.flatnonzero(starts[1:] - ends[:-1] > 2 * h) + 1])
        first = np.minimum.reduceat(per_range, group_starts)
        out[w] = np.cumsum(np.bincount(first, minlength=m + 1)[:m]) / len(group_starts)
    return out


def vus_roc_pr(labels: np.ndarray, scores: np.ndarray, buffer: int,
               n_thresholds: int = TSB_AD_THRESHOLDS) -> tuple[float | None, float | None]:
    """``(vus_roc, vus_pr)`` of (n,) 0/1 labels and scores as TSB-AD's ``get_metrics(..., slidingWindow=buffer)``,
    averaged over buffer lengths ``0 .. buffer`` rows; None unless both classes are present."""
    y, s = check_inputs(labels, scores)
    check_rows(buffer, "buffer")
    y, n, buffer, m = y.astype(bool), len(s), int(buffer), n_thresholds
    if y.all() or not y.any():
        return None, None
    cuts, ranges = threshold_grid(s, m), label_ranges(y)
    first_cut = np.searchsorted(-cuts, -s, side="left")  # first cut with score >= cut
    n_pred = np.cumsum(np.bincount(first_cut, minlength=m)).astype(np.float64)
    hits = np.cumsum(np.bincount(first_cut[y], minlength=m)).astype(np.float64)
    h = buffer // 2
    x = np.flatnonzero((coverage(ranges + [-h, h], n) > 0) & ~y)  # the rows of the largest buffer
    d1, d2, nearest = _second_nearest(x, ranges[:, 0], ranges[:, 1] - 1)
    b = np.cumsum(_buffer_sums(d1, d2, first_cut[x], buffer, m), axis=1)
    tp, p_new = hits + b, float(y.sum()) + b / 2
    # (buffer + 1, m) TPR, FPR and precision of each buffer length and cut
    tpr = np.minimum(tp / p_new, 1.0) * _existence(ranges, first_cut, d1, nearest, first_cut[x], buffer, m)
    fpr, prec = (n_pred - tp) / (n - p_new), tp / n_pred
    tpr_all, fpr_all = (np.pad(c, ((0, 0), (1, 1)), constant_values=(0.0, 1.0)) for c in (tpr, fpr))
    roc = np.sum(np.diff(fpr_all, axis=1) * (tpr_all[:, 1:] + tpr_all[:, :-1]) / 2, axis=1)
    pr = np.sum(np.diff(tpr_all[:, :-1], axis=1) * prec, axis=1)
    return float(np.mean(roc)), float(np.mean(pr))


def buffer_reach(labels: np.ndarray, buffer: int) -> tuple[float, int] | None:
    """``(share, fair)``: the share of the normal rows of (n,) 0/1 ``labels`` within ``buffer // 2`` rows of a
    labelled range (those :func:`vus_roc_pr`'s largest buffer counts as partly anomalous), and the largest buffer
    whose share is at most 1/2 (twice a normal row's median distance, less 2); None unless both classes are present."""
    y = np.asarray(labels).astype(bool)
    if y.all() or not y.any():
        return None
    ranges = label_ranges(y)
    d = np.sort(_second_nearest(np.flatnonzero(~y), ranges[:, 0], ranges[:, 1] - 1)[0])
    return float(np.mean(d <= buffer // 2)), 2 * (int(d[len(d) // 2]) - 1)


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
    """Every stream metric of (n,) 0/1 ``labels`` and (n,) finite ``scores`` as a JSON-able dict (None: undefined).

    Args:
        threshold: alarms are ``scores > threshold``; one number, or (n,) one per time step.
        vus_buffer: largest buffer (rows) of VUS-ROC/VUS-PR (TSB-AD's ``slidingWindow``).
        merge_gap: alarm runs at most this many rows apart are one alarm when counting false alarms.
        sample_period_s: seconds between time steps; None leaves the hours and the per-hour rate None.
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
    return functools.reduce(lambda value, key: value.get(key) if isinstance(value, dict) else None, path, result)


def confusion_counts(labels: np.ndarray, alarms: np.ndarray) -> dict[str, int]:
    """``{"tp", "fp", "fn", "tn"}``: time steps of (n,) 0/1 labels and alarms by label and alarm."""
    y, a = (v.astype(bool) for v in _flags(labels, alarms))
    return {"tp": int(np.sum(y & a)), "fp": int(np.sum(~y & a)), "fn": int(np.sum(y & ~a)),
            "tn": int(np.sum(~y & ~a))}


def pooled_confusion(streams: Any) -> dict[str, Any]:
    """Confusion counts summed over ``(labels, alarms)`` pairs with SKAB's ``F1 = TP / (TP + (FP + FN) / 2)``,
    ``FAR % = 100 FP / (FP + TN)``, ``MAR % = 100 FN / (FN + TP)`` (None where the denominator is 0)."""
    counts = [confusion_counts(labels, alarms) for labels, alarms in streams]
    tp, fp, fn, tn = (sum(c[key] for c in counts) for key in ("tp", "fp", "fn", "tn"))
    far, mar = _ratio(100 * fp, fp + tn), _ratio(100 * fn, fn + tp)
    return {"tp": tp, "fp": fp, "fn": fn, "tn": tn, "f1": _ratio(tp, tp + (fp + fn) / 2), "far_pct": far,
            "mar_pct": mar, "n_streams": len(counts)}


def mean_over_streams(results: list[dict[str, Any]], paths: dict[str, tuple[str, ...]]) -> dict[str, Any]:
    """``{name: {"mean", "std" (ddof=0), "n"}}`` of the defined values at ``paths[name]`` of the ``results``."""
    out = {}
    for name, path in paths.items():
        values = [float(v) for v in (metric_at(r, path) for r in results) if v is not None]
        out[name] = {"mean": float(np.mean(values)) if values else None,
                     "std": float(np.std(values)) if values else None, "n": len(values)}
    return out
