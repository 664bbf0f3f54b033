"""The checks of score arrays every metric and threshold starts from, and the alarm rule ``score > threshold``."""
from __future__ import annotations

from typing import Any

import numpy as np


def as_scores(scores: Any, name: str = "scores") -> np.ndarray:
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


def predict(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Binary predictions: 1 (anomaly) where ``score > threshold``.

    Args:
        scores: Scores, shape (N,).
        threshold: one number.

    Returns:
        int64 array of shape (N,) with values in {0, 1}.
    """
    s = as_scores(scores)
    t = float(threshold)
    if np.isnan(t):
        raise ValueError("threshold is NaN")
    return (s > t).astype(np.int64)
