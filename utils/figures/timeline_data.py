"""What the timeline figure draws, computed without Matplotlib: min/max envelopes, the x axis of rows or
times, labelled spans, the checked inputs (:mod:`utils.figures.timeline` draws them)."""
from __future__ import annotations

import warnings
from collections.abc import Sequence

import numpy as np

from utils.metrics.ranges import clock_text

__all__ = ["Span", "TimeAxis", "check_inputs", "envelope", "pick_sensor"]

Span = tuple[int, int, str]  # (start, end, kind): 0-based rows, end exclusive


def envelope(x: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Minimum and maximum of (n,) ``x`` per bin of ``ceil(n / n_bins)`` consecutive rows, NaN ignored.

    Returns:
        ``(centres, lo, hi)``, each (b,), b <= n_bins: the bin's middle row (0-based; a half row for an even
        count), its minimum and maximum (NaN where the whole bin is NaN); with ``n <= n_bins``, ``x`` itself.
    """
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must have shape (n,), got {x.shape}")
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    n = len(x)
    size = max(1, -(-n // int(n_bins)))
    if size == 1:
        return np.arange(n, dtype=np.float64), x.copy(), x.copy()
    b = -(-n // size)
    blocks = np.pad(x, (0, b * size - n), constant_values=np.nan).reshape(b, size)
    first = np.arange(b) * size
    return (first + np.minimum(first + size, n) - 1) / 2.0, np.fmin.reduce(blocks, axis=1), np.fmax.reduce(blocks, axis=1)


class TimeAxis:
    """The x axis of rows ``lo..hi - 1``: absolute rows, or times in s/min/h (whichever fits the span).

    With ``origin`` (a detail panel) times count from that row's time, so a zoom into hour 20 reads in seconds.
    """

    def __init__(self, first_row: int, times: np.ndarray | None, lo: int, hi: int, origin: int | None = None) -> None:
        self.first_row, self.times, self.zero, self.scale, self.label = first_row, times, 0.0, 1.0, "Row"
        if times is not None and len(times):
            span = float(times[hi - 1] - times[lo]) if hi > lo else 0.0
            self.scale, unit = (1.0, "s") if span < 120 else (60.0, "min") if span < 7200 else (3600.0, "h")
            self.step = float(np.median(np.diff(times[-1000:]))) if len(times) > 1 else 1.0
            self.zero = 0.0 if origin is None else float(times[origin])
            self.label = f"Time ({unit})" if origin is None else f"Time from {clock_text([self.zero], 1)[0]} ({unit})"

    def at(self, index: np.ndarray | Sequence[float]) -> np.ndarray:
        """x of (fractional) 0-based rows; row ``n`` is where the last one ends."""
        index = np.asarray(index, dtype=np.float64)
        if self.times is None or len(self.times) == 0:
            return self.first_row + index
        n = len(self.times)
        inside = np.interp(index, np.arange(n), self.times)  # clamped to the first and last time
        return (inside + np.maximum(index - (n - 1), 0) * self.step - self.zero) / self.scale


def _per_row(a: np.ndarray | None, name: str, n: int, dtype: type | None,
             what: str = "one entry per row of values") -> np.ndarray | None:
    if a is None:
        return None
    a = np.asarray(a, dtype=dtype)
    if a.shape != (n,):
        raise ValueError(f"{name} must have shape ({n},) ({what}), got {a.shape}")
    return a


def check_inputs(values, feature_names, scores, threshold, labels, kinds, incidents, hits, times, first_row,
           max_points, n_details):
    """The inputs as arrays, checked; raises ValueError naming the argument."""
    values = np.asarray(values, dtype=np.float64)
    values = values[:, None] if values.ndim == 1 else values
    if values.ndim != 2:
        raise ValueError(f"values must have shape (n, F) (or (n,) for one sensor), got {values.shape}")
    n, f = values.shape
    names = [str(name) for name in feature_names]
    if len(names) != f:
        raise ValueError(f"feature_names has {len(names)} names but values has {f} columns (sensors)")
    scores, labels, kinds, times = (_per_row(a, name, n, dtype) for a, name, dtype in (
        (scores, "scores", np.float64), (labels, "labels", None), (kinds, "kinds", None), (times, "times", np.float64)))
    if not np.isfinite(float(threshold)):
        raise ValueError(f"threshold must be a finite number, got {threshold}")
    if times is not None and (not np.all(np.isfinite(times)) or np.any(np.diff(times) < 0)):
        raise ValueError("times must be finite and non-decreasing (seconds since the recording start)")
    incidents = list(incidents)
    for i, inc in enumerate(incidents):
        if not first_row <= inc.start_row <= inc.end_row < first_row + n:
            raise ValueError(f"incidents[{i}] covers rows {inc.start_row}..{inc.end_row}, outside the rows "
                             f"{first_row}..{first_row + n - 1} of values (first_row={first_row})")
        if inc.top_feature and inc.top_feature not in names:
            raise ValueError(f"incidents[{i}].top_feature {inc.top_feature!r} is not one of feature_names {names}")
    hits = _per_row(hits, "hits", len(incidents), bool, "one per incident")
    if int(max_points) < 2 or int(n_details) < 0:
        raise ValueError(f"max_points must be >= 2 and n_details >= 0, got {max_points} and {n_details}")
    return values, names, scores, labels, kinds, incidents, hits, times


def pick_sensor(values: np.ndarray, s: int, e: int) -> int:
    """The sensor whose rows ``s..e - 1`` stray farthest from its median, in units of its spread (MAD)."""
    with warnings.catch_warnings():  # an all-NaN sensor: NaN here, never picked
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(values, axis=0)
        spread = np.nanmedian(np.abs(values - median), axis=0)
        far = np.nanmax(np.abs(values[s:e] - median), axis=0) / np.where(spread > 0, spread, 1.0)
    return int(np.argmax(np.where(np.isfinite(far), far, -1.0)))
