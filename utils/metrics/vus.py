"""VUS-ROC and VUS-PR (Paparrizos et al., VLDB 2022) exactly as TSB-AD computes them, without its O(L * m * n) loops.

Reproduces TSB-AD's ``RangeAUC_volume_opt`` (checked by ``tests/fixtures/tsb_ad``); its definition and how it is
vectorised here: docs/streams.md, "How VUS-ROC and VUS-PR are computed". With one class only both are None.
"""
from __future__ import annotations

from typing import Any

import numpy as np

from utils.metrics.ranges import label_ranges

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


def threshold_grid(scores: np.ndarray, n_thresholds: int = TSB_AD_THRESHOLDS) -> np.ndarray:
    """TSB-AD's cuts, (n_thresholds,) non-increasing: the sorted scores at ``linspace(0, n - 1, n_thresholds)``."""
    s = np.asarray(scores, dtype=np.float64)
    return np.sort(s)[::-1][np.linspace(0, len(s) - 1, n_thresholds).astype(int)]


def _second_nearest(x: np.ndarray, starts: np.ndarray, ends: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(d1, d2, nearest)``, each (len(x),): distances of rows ``x`` to the nearest and second-nearest range
    (``ends`` inclusive), and the nearest range's index."""
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


def _near_rows(n: int, ranges: np.ndarray, h: int) -> np.ndarray:
    """(n,) bool: rows within ``h`` rows of a labelled range (the ranges included)."""
    edges = np.zeros(n + 1, dtype=np.int64)
    np.add.at(edges, np.maximum(ranges[:, 0] - h, 0), 1)
    np.add.at(edges, np.minimum(ranges[:, 1] + h, n), -1)
    return np.cumsum(edges[:n]) > 0


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


def _curves(n: int, first_cut: np.ndarray, labelled: np.ndarray, ranges: np.ndarray, buffer: int,
            m: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(buffer + 1, m) TPR, FPR and precision of each buffer length and cut."""
    n_pred = np.cumsum(np.bincount(first_cut, minlength=m)).astype(np.float64)
    hits = np.cumsum(np.bincount(first_cut[labelled], minlength=m)).astype(np.float64)
    x = np.flatnonzero(_near_rows(n, ranges, buffer // 2) & ~labelled)  # the rows of the largest buffer
    d1, d2, nearest = _second_nearest(x, ranges[:, 0], ranges[:, 1] - 1)
    cut = first_cut[x]
    b = np.cumsum(_buffer_sums(d1, d2, cut, buffer, m), axis=1)
    exist = _existence(ranges, first_cut, d1, nearest, cut, buffer, m)
    tp = hits + b
    p_new = float(labelled.sum()) + b / 2
    return np.minimum(tp / p_new, 1.0) * exist, (n_pred - tp) / (n - p_new), tp / n_pred


def vus_roc_pr(labels: np.ndarray, scores: np.ndarray, buffer: int,
               n_thresholds: int = TSB_AD_THRESHOLDS) -> tuple[float | None, float | None]:
    """``(vus_roc, vus_pr)`` of (n,) 0/1 ``labels`` and (n,) finite ``scores`` (higher = more anomalous) as TSB-AD's
    ``get_metrics(score, labels, slidingWindow=buffer)``; None unless both classes are present. The volumes average
    the buffer lengths ``w = 0 .. buffer`` (rows, >= 0)."""
    y, s = check_inputs(labels, scores)
    check_rows(buffer, "buffer")
    y, n = y.astype(bool), len(s)
    if y.all() or not y.any():
        return None, None
    cuts = threshold_grid(s, n_thresholds)
    first_cut = np.searchsorted(-cuts, -s, side="left")  # first cut with score >= cut
    tpr, fpr, prec = _curves(n, first_cut, y, label_ranges(y), int(buffer), n_thresholds)
    tpr_all, fpr_all = (np.pad(c, ((0, 0), (1, 1)), constant_values=(0.0, 1.0)) for c in (tpr, fpr))
    roc = np.sum(np.diff(fpr_all, axis=1) * (tpr_all[:, 1:] + tpr_all[:, :-1]) / 2, axis=1)
    pr = np.sum(np.diff(tpr_all[:, :-1], axis=1) * prec, axis=1)
    return float(np.mean(roc)), float(np.mean(pr))
