"""Thresholds on anomaly scores, and the decision rule that uses them.

Convention, used everywhere: a sample is predicted anomalous when
``score > threshold`` (strictly greater). With a percentile threshold fitted on
validation normals, about ``100 - percentile`` percent of them are flagged, and
percentile 100 flags none of them.

:func:`best_f1_threshold` picks the threshold with the best F1 on labelled
data: it is an oracle (it looks at the test labels), for reporting only, and
never deployable.
"""
from __future__ import annotations

from typing import Any

import numpy as np


def _as_scores(scores: Any, name: str = "scores") -> np.ndarray:
    """1-d, non-empty, finite float64 array."""
    arr = np.asarray(scores, dtype=np.float64)
    if arr.ndim != 1:
        raise ValueError(f"{name} must have shape (N,), got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty")
    if np.isnan(arr).any():
        raise ValueError(f"{name} holds NaN ({int(np.isnan(arr).sum())} of {arr.size})")
    if not np.isfinite(arr).all():
        raise ValueError(f"{name} holds inf")
    return arr


def percentile_threshold(normal_scores: np.ndarray, percentile: float = 99.0) -> float:
    """Threshold at a percentile of the scores of held-out normal samples.

    Args:
        normal_scores: Scores of validation normals, shape (N,).
        percentile: In (0, 100]; ``np.percentile`` with linear interpolation.

    Returns:
        The threshold as a Python float.

    Raises:
        ValueError: ``percentile`` outside (0, 100], empty input, NaN or inf.
    """
    if isinstance(percentile, bool) or not isinstance(percentile, (int, float, np.number)):
        raise ValueError(f"percentile: expected a number in (0, 100], got {percentile!r}")
    if not 0.0 < float(percentile) <= 100.0:
        raise ValueError(f"percentile: expected a number in (0, 100], got {percentile!r}")
    arr = _as_scores(normal_scores, "normal_scores")
    return float(np.percentile(arr, float(percentile)))


def best_f1_threshold(y_true: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """Oracle threshold maximising the F1 of the anomaly class (reporting only).

    The best cut is found among the distinct scores ``s`` with the rule
    ``score >= s`` (``sklearn.metrics.precision_recall_curve``); the returned
    threshold is ``nextafter(s, -inf)``, the float just below, so that
    :func:`predict` (``score > threshold``) makes exactly those predictions.
    Among ties in F1 the lowest cut wins.

    Args:
        y_true: Labels, shape (N,), 1 = anomaly, 0 = normal.
        scores: Scores, shape (N,).

    Returns:
        ``(threshold, f1)`` as Python floats.

    Raises:
        ValueError: Mismatched shapes, NaN/inf scores, labels not in {0, 1}, or
            no anomaly in ``y_true`` (F1 is then undefined).
    """
    s = _as_scores(scores)
    y = np.asarray(y_true)
    if y.shape != s.shape:
        raise ValueError(f"y_true has shape {y.shape} but scores has shape {s.shape}")
    if not np.isin(y, (0, 1)).all():
        raise ValueError("y_true must hold only 0 (normal) and 1 (anomaly)")
    y = y.astype(np.int64)
    if y.sum() == 0:
        raise ValueError("best_f1_threshold needs at least one anomaly in y_true")
    from sklearn.metrics import precision_recall_curve  # lazily: the detector and the baselines import this module

    precision, recall, cuts = precision_recall_curve(y, s)
    p, r = precision[:-1], recall[:-1]  # last point (recall 0) has no cut
    denom = p + r
    f1 = np.where(denom > 0, 2.0 * p * r / np.where(denom > 0, denom, 1.0), 0.0)
    best = int(np.argmax(f1))
    threshold = float(np.nextafter(np.float64(cuts[best]), -np.inf))
    return threshold, float(f1[best])


def predict(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Binary predictions: 1 (anomaly) where ``score > threshold``.

    Args:
        scores: Scores, shape (N,).
        threshold: From :func:`percentile_threshold` or :func:`best_f1_threshold`.

    Returns:
        int64 array of shape (N,) with values in {0, 1}.
    """
    s = _as_scores(scores)
    t = float(threshold)
    if np.isnan(t):
        raise ValueError("threshold is NaN")
    return (s > t).astype(np.int64)
