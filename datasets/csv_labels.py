"""What a CSV's label and timestamp columns say per row and per window: labels, kinds, seconds, the sample period.

A label cell that is empty, ``0``, ``0.0`` or ``normal`` (any case) marks a normal row, anything else an anomalous
one; its kind is the label text (``"anomaly"`` for a number). A cell that says the label is missing (``nan``,
``null``, ``None``, ``NA``, ``N/A``, ``?``: :data:`MISSING_LABELS`, any case) is neither: it is refused
(:func:`missing_label`), never silently counted as an anomaly.
"""
from __future__ import annotations

import logging
from pathlib import Path

import numpy as np

from datasets.base import NORMAL

logger = logging.getLogger("anomaly")

NORMAL_LABELS = frozenset({"", "0", "0.0", "normal"})
MISSING_LABELS = frozenset({"nan", "null", "none", "na", "n/a", "?"})
VALID_LABELS = ("empty, 0, 0.0 or normal for a normal row; 1 or any other text (e.g. a fault's name) for an "
                "anomalous one")
__all__ = ["MISSING_LABELS", "NORMAL_LABELS", "VALID_LABELS", "kind_name", "missing_label", "row_labels",
           "sample_period", "seconds_since_first"]


def missing_label(labels: np.ndarray) -> int | None:
    """Index of the first label cell (n,) str that marks a missing label (:data:`MISSING_LABELS`), or None."""
    missing = np.isin(np.char.lower(np.char.strip(labels.astype(str))), list(MISSING_LABELS))
    return int(np.argmax(missing)) if missing.any() else None


def _anomalous(labels: np.ndarray) -> np.ndarray:
    """(n,) bool: the label cells that are not a normal label (:data:`NORMAL_LABELS`, any case)."""
    return ~np.isin(np.char.lower(labels), list(NORMAL_LABELS))


def row_labels(labels: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per-row ``(labels (n,) int64 1 = anomalous, kinds (n,) str)``: the label text, "anomaly" if numeric."""
    anomalous = _anomalous(labels)
    kinds = np.full(len(labels), NORMAL, dtype=object)
    texts, inverse = np.unique(labels[anomalous], return_inverse=True)
    kinds[anomalous] = np.array([kind_name(t) for t in texts], dtype=object)[inverse.reshape(-1)]
    return anomalous.astype(np.int64), kinds.astype(str)


def kind_name(text: str) -> str:
    try:
        float(text)
        return "anomaly"
    except ValueError:
        return str(text)


def seconds_since_first(times: np.ndarray) -> np.ndarray:
    """(n,) float64 seconds since the first timestamp (numbers as they are; datetimes via their differences)."""
    if np.issubdtype(times.dtype, np.datetime64):
        return (times - times[0]) / np.timedelta64(1, "s")
    return np.asarray(times, dtype=np.float64) - float(times[0])


def sample_period(seconds: np.ndarray | None, file: Path, column: str | None) -> float | None:
    """Seconds between rows: the median step (robust to gaps), else the mean one (repeated timestamps, e.g.
    10 rows per logged second); None without timestamps or when they never advance (then no rate per hour)."""
    if seconds is None or len(seconds) < 2:
        return None
    steps = np.diff(seconds)
    for period in (float(np.median(steps)), float(seconds[-1] - seconds[0]) / (len(seconds) - 1)):
        if np.isfinite(period) and period > 0:
            return period
    logger.warning("data: %s: the timestamp column %r never advances, so the stream's false alarms per hour are "
                   "not computed", file, column)
    return None
