"""Rows of windows and ranges: where windows start, runs of flagged rows, and how ranges meet. Ranges are ``(k, 2)``
int64 arrays of ``[start, end)`` rows, the form labelled anomalies, alarms and incidents share."""
from __future__ import annotations

from typing import Any

import numpy as np


def window_starts(n_rows: int, window_length: int, stride: int) -> np.ndarray:
    """Start rows ``0, stride, 2*stride, ...`` of the windows ``[s, s + window_length)`` fitting in ``n_rows`` rows."""
    return np.arange(0, max(n_rows - window_length + 1, 0), stride, dtype=np.int64)


def covering_starts(n_rows: int, window_length: int, stride: int) -> np.ndarray:
    """(N,) :func:`window_starts` plus ``n_rows - window_length``: the windows cover every row (``stride <= T``)."""
    starts = window_starts(n_rows, window_length, stride)
    if len(starts) and starts[-1] != n_rows - window_length:
        starts = np.append(starts, n_rows - window_length)
    return starts


def label_ranges(flags: np.ndarray) -> np.ndarray:
    """``[start, end)`` rows of each run of nonzero flags, (k, 2) int64."""
    f = np.concatenate([[0], (np.asarray(flags) != 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(f))
    return edges.reshape(-1, 2).astype(np.int64)


def kind_runs(flags: np.ndarray, kinds: np.ndarray | None = None) -> list[tuple[int, int, str]]:
    """``(start, end, kind)`` of each run of (n,) nonzero flags of one of (n,) ``kinds`` (``"anomaly"`` without)."""
    flags = np.asarray(flags) != 0
    if not flags.any():
        return []
    change = flags[1:] != flags[:-1]
    if kinds is not None:
        kinds = np.asarray(kinds)  # compared as given: no copy of a long string array
        change = change | (kinds[1:] != kinds[:-1])
    edges = np.concatenate([[0], np.flatnonzero(change) + 1, [len(flags)]])
    return [(int(s), int(e), "anomaly" if kinds is None else str(kinds[s]))
            for s, e in zip(edges[:-1], edges[1:]) if flags[s]]


def coverage(ranges: np.ndarray, n: int) -> np.ndarray:
    """(n,) int64: how many of the (k, 2) ``[start, end)`` ranges, clipped to ``[0, n)``, hold each row."""
    steps = np.zeros(n + 1, dtype=np.int64)
    np.add.at(steps, np.clip(ranges[:, 0], 0, n), 1)
    np.add.at(steps, np.clip(ranges[:, 1], 0, n), -1)
    return np.cumsum(steps[:n])


def merge_ranges(ranges: np.ndarray, gap: int) -> np.ndarray:
    """Ranges (k, 2), sorted, merged where at most ``gap`` rows separate one from the next."""
    ranges = np.asarray(ranges, dtype=np.int64).reshape(-1, 2)
    if len(ranges) < 2:
        return ranges.copy()
    keep = np.flatnonzero(ranges[1:, 0] - ranges[:-1, 1] > gap)  # a range ends before keep[i] + 1 starts
    starts = ranges[np.concatenate([[0], keep + 1]), 0]
    ends = ranges[np.concatenate([keep, [len(ranges) - 1]]), 1]
    return np.stack([starts, ends], axis=1)


def alarm_ranges(scores: np.ndarray, threshold: float, merge_gap: int = 0) -> np.ndarray:
    """``[start, end)`` of the runs of time steps with ``score > threshold``, merged over ``merge_gap`` rows."""
    return merge_ranges(label_ranges(np.asarray(scores) > threshold), merge_gap)


def overlapping(ranges: np.ndarray, others: np.ndarray) -> np.ndarray:
    """(k,) bool: whether each of ``ranges`` shares a row with one of ``others`` (which must not overlap each other)."""
    a, b = np.asarray(ranges, dtype=np.int64).reshape(-1, 2), np.asarray(others, dtype=np.int64).reshape(-1, 2)
    b = b[np.argsort(b[:, 0], kind="stable")]
    # the first of others ending after a range starts is the only candidate: the later ones start later still
    first = np.searchsorted(b[:, 1], a[:, 0], side="right")
    found = first < len(b)
    found[found] = b[first[found], 0] < a[found, 1]
    return found


def clock_text(seconds: np.ndarray, decimals: int = 2) -> np.ndarray:
    """Seconds since a recording's start as ``H:MM:SS.ss`` text (n,) (``decimals`` places of seconds)."""
    s = np.round(np.asarray(seconds, dtype=np.float64), decimals)  # rounded first: 59.999 is 0:01:00.00
    hours, rest = np.divmod(s, 3600.0)
    minutes, secs = np.divmod(rest, 60.0)
    width = 3 + decimals if decimals else 2
    return np.array([f"{int(h)}:{int(m):02d}:{x:0{width}.{decimals}f}" for h, m, x in zip(hours, minutes, secs)])


def incident_ranges(incidents: list[Any]) -> np.ndarray:
    """(k, 2) ``[start, end)`` rows of incidents (anything with inclusive ``start_row`` and ``end_row``)."""
    return np.array([[i.start_row, i.end_row + 1] for i in incidents], dtype=np.int64).reshape(-1, 2)
