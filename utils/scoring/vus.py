"""VUS-ROC and VUS-PR (Paparrizos et al., VLDB 2022) exactly as TSB-AD computes them, in O(n log n + L * m).

TSB-AD's ``basic_metricor.RangeAUC_volume_opt`` (``TSB_AD/evaluation/basic_metrics.py``, called by
``get_metrics(..., slidingWindow=L, version='opt', thre=250)``) is reproduced to rounding; it is the
reference the fixture ``tests/fixtures/tsb_ad`` checks. Its definition, read from the code:

* **Thresholds**: a fixed grid of ``thre`` (250) cuts, not every distinct score: the scores sorted in
  decreasing order, taken at positions ``np.linspace(0, n - 1, thre).astype(int)`` (repeated positions
  when ``n < thre``), with the rule ``score >= cut``. The curve is ``(0, 0)``, the ``thre`` cuts, ``(1, 1)``.
* **Buffers**: for each buffer length ``w = 0 .. L`` (``L + 1`` curves, then averaged) every labelled
  range ``[s, e]`` gets ``h = w // 2`` extra rows each side (clipped to the series) weighted
  ``sqrt(1 - d / w)`` at distance ``d = 1 .. h``; a row reached by two ramps gets 1 (the sum is capped
  at 1 and each ramp is at least ``sqrt(1/2)``). Buffers of ``w = 0`` and ``1`` are empty.
* **Per cut**: ``TP = (#labelled rows alarmed) + B`` with ``B`` the summed weights of alarmed buffer
  rows; ``P' = P + B / 2``; ``TPR = min(TP / P', 1) * (extended ranges hit / extended ranges)``, where
  the extended ranges are the labelled ranges plus their buffers, merged where they overlap;
  ``FPR = (alarms - TP) / (n - P')``; ``precision = TP / alarms``.
* **Areas**: ROC by the trapezoid rule over FPR; PR as ``sum((TPR[k+1] - TPR[k]) * precision[k+1])``
  over the ``thre`` cuts (the first step from TPR 0, the closing ``(1, 1)`` point left out).

Here every row gets the index of the first cut that alarms it, so a per-cut count is a cumulative
``bincount``; the buffer weights depend only on the distances to the two nearest range ends each side.
"""
from __future__ import annotations

from typing import Any, Optional

import numpy as np

from utils.scoring.stream import label_ranges

TSB_AD_THRESHOLDS = 250  # get_metrics(..., thre=250)


def check_inputs(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    """Labels and scores as arrays, or a ValueError saying what is wrong.

    Args:
        labels: (n,) 0/1 (or bool) per time step.
        scores: (n,) finite numbers per time step.

    Returns:
        ``(labels int64 (n,), scores float64 (n,))``.
    """
    y, s = np.asarray(labels), np.asarray(scores)
    if y.ndim != 1 or s.ndim != 1:
        raise ValueError(f"labels and scores must have shape (n,), got {y.shape} and {s.shape}")
    if len(y) != len(s):
        raise ValueError(f"labels has {len(y)} time steps but scores has {len(s)}; they must match")
    if len(s) == 0:
        raise ValueError("labels and scores are empty; need at least one time step")
    bad = np.flatnonzero(~np.isin(y, (0, 1)))
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


def threshold_grid(scores: np.ndarray, n_thresholds: int = TSB_AD_THRESHOLDS) -> np.ndarray:
    """TSB-AD's cuts: the decreasingly sorted scores at ``linspace(0, n - 1, n_thresholds).astype(int)``.

    Returns:
        (n_thresholds,) float64, non-increasing; the last is the smallest score.
    """
    s = np.asarray(scores, dtype=np.float64)
    return np.sort(s)[::-1][np.linspace(0, len(s) - 1, n_thresholds).astype(int)]


def _second_nearest(x: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """For unlabelled rows ``x``: distance to the nearest range, to the second nearest range end, and which range.

    ``ends`` are inclusive last rows. Returns ``(d1, d2, nearest range index)``, each (len(x),).
    """
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


def _curves(n: int, first_cut: np.ndarray, labelled: np.ndarray, ranges: np.ndarray, buffer: int,
            n_thresholds: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(buffer + 1, n_thresholds) TPR, FPR and precision of each buffer length and cut."""
    m = n_thresholds
    starts, ends = ranges[:, 0], ranges[:, 1] - 1
    n_pred = np.cumsum(np.bincount(first_cut, minlength=m)).astype(np.float64)
    hits = np.cumsum(np.bincount(first_cut[labelled], minlength=m)).astype(np.float64)
    big_p = float(labelled.sum())

    x = np.flatnonzero(~labelled)
    d1, d2, nearest = _second_nearest(x, starts, ends)
    near = d1 <= buffer // 2  # the rows of the largest buffer
    x, d1, d2, nearest = x[near], d1[near], d2[near], nearest[near]
    cut_x = first_cut[x]
    # first cut alarming each labelled range; padded since a range ending at the last row gives index n
    core_first = np.minimum.reduceat(np.append(first_cut, m), ranges.reshape(-1))[::2]

    shape = (buffer + 1, m)
    tpr, fpr, prec = np.empty(shape), np.empty(shape), np.empty(shape)
    for w in range(buffer + 1):
        h = w // 2
        inside = d1 <= h
        b = np.zeros(m)
        if h > 0 and inside.any():
            weight = np.where(d2[inside] <= h, 1.0, np.sqrt(1 - d1[inside] / w))
            b = np.cumsum(np.bincount(cut_x[inside], weights=weight, minlength=m))
        group = np.concatenate([[0], np.cumsum(starts[1:] - ends[:-1] > 2 * h)])  # merged extended range of each range
        first = np.full(group[-1] + 1, m, dtype=np.int64)
        np.minimum.at(first, group, core_first)
        np.minimum.at(first, group[nearest[inside]], cut_x[inside])
        exist = np.cumsum(np.bincount(first, minlength=m + 1)[:m]) / len(first)
        tp = hits + b
        p_new = big_p + b / 2
        tpr[w] = np.minimum(tp / p_new, 1.0) * exist
        fpr[w] = (n_pred - tp) / (n - p_new)
        prec[w] = tp / n_pred
    return tpr, fpr, prec


def vus_roc_pr(labels: np.ndarray, scores: np.ndarray, buffer: int,
               n_thresholds: int = TSB_AD_THRESHOLDS) -> tuple[Optional[float], Optional[float]]:
    """VUS-ROC and VUS-PR as TSB-AD's ``get_metrics(score, labels, slidingWindow=buffer)`` (see the module doc).

    Args:
        labels: (n,) 0/1 per time step.
        scores: (n,) finite scores, higher = more anomalous.
        buffer: the largest buffer length ``L`` (rows, >= 0); the volumes average ``w = 0 .. L``.
        n_thresholds: cuts of the threshold grid (TSB-AD: 250).

    Returns:
        ``(vus_roc, vus_pr)``; ``(None, None)`` unless both classes are present.
    """
    y, s = check_inputs(labels, scores)
    if isinstance(buffer, bool) or not isinstance(buffer, (int, np.integer)) or buffer < 0:
        raise ValueError(f"buffer must be an integer number of rows >= 0, got {buffer!r}")
    y, n = y.astype(bool), len(s)
    if y.all() or not y.any():
        return None, None
    cuts = threshold_grid(s, n_thresholds)
    first_cut = np.searchsorted(-cuts, -s, side="left")  # first cut with score >= cut
    tpr, fpr, prec = _curves(n, first_cut, y, label_ranges(y), int(buffer), n_thresholds)
    zeros, ones = np.zeros((buffer + 1, 1)), np.ones((buffer + 1, 1))
    tpr_all, fpr_all = np.hstack([zeros, tpr, ones]), np.hstack([zeros, fpr, ones])
    roc = np.sum(np.diff(fpr_all, axis=1) * (tpr_all[:, 1:] + tpr_all[:, :-1]) / 2, axis=1)
    pr = np.sum(np.diff(tpr_all[:, :-1], axis=1) * prec, axis=1)
    return float(np.mean(roc)), float(np.mean(pr))
