"""The one check of numeric arrays where they enter (:func:`check_array`, as scikit-learn's; docs/design.md),
and the alarm rule ``score > threshold``. The layers after the check trust the arrays."""
from __future__ import annotations

from typing import Any

import numpy as np


def check_array(values: Any, name: str, dims: str = "N", shape: tuple[int, ...] | None = None) -> np.ndarray:
    """``values`` as a float64 array, non-empty and finite, else ValueError calling it ``name``; ``dims``: one letter
    per dimension, samples first (``"N"`` scores, ``"ND"`` features, ``"NTF"``); ``shape``: the sizes every dimension
    after the first must have (a trained detector's (T, F)), None: any."""
    try:
        raw = np.asarray(values)
        arr = None if raw.dtype.kind in "bc" else np.asarray(raw, dtype=np.float64)
    except (TypeError, ValueError) as err:
        raise ValueError(f"{name} must be numbers in an array of shape ({', '.join(dims)}): {err}") from None
    if arr is None:  # a cast would read booleans as 0/1 and drop an imaginary part (a warning only)
        raise ValueError(f"{name}: dtype {raw.dtype} is not numeric; expected float or integer values")
    expected = (dims[0], *(shape if shape is not None else dims[1:]))
    if arr.ndim != len(dims) or (shape is not None and arr.shape[1:] != tuple(shape)):
        spelled = "(" + ", ".join(str(d) for d in expected) + ("," if len(expected) == 1 else "") + ")"
        raise ValueError(f"{name} must have shape {spelled}, got {arr.shape}")
    if arr.size == 0:
        raise ValueError(f"{name} is empty: shape {arr.shape}")
    finite = np.isfinite(arr)
    if not finite.all():
        n_nan = int(np.isnan(arr).sum())
        raise ValueError(f"{name} holds NaN or inf ({n_nan} NaN and {int(arr.size - finite.sum()) - n_nan} "
                         f"infinite of {arr.size} values)")
    return arr


def as_scores(scores: Any, name: str = "scores") -> np.ndarray:
    """Scores (N,): :func:`check_array` with one dimension."""
    return check_array(scores, name, "N")


def predict(scores: np.ndarray, threshold: float) -> np.ndarray:
    """Binary predictions (N,) int64: 1 (anomaly) where ``score > threshold``, for scores (N,)."""
    s = as_scores(scores)
    t = float(threshold)
    if np.isnan(t):
        raise ValueError("threshold is NaN")
    return (s > t).astype(np.int64)
