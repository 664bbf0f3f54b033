"""Per-time-step values of a long recording from the scores of its sliding windows.

A recording of ``n`` rows is cut into windows of ``T`` rows starting every ``stride`` rows
(:func:`covering_starts` adds a last window ending at the last row, so every row is covered
when ``stride <= T``). Each time step then takes the maximum (or mean) of the values of the
windows that cover it: with the maximum, a time step is alarmed exactly when one of its
windows is, so a window threshold is also a time-step threshold.

:class:`PointAccumulator` does this window batch by window batch and hands out each time step
as soon as no later window can cover it, so a live stream needs memory for one window only;
:func:`point_values` is the same for a whole array. Ranges are ``(k, 2)`` int64 arrays of
``[start, end)`` rows (end exclusive), the form labelled anomalies, alarms and incidents share.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

Aggregation = Literal["max", "mean", "min"]
AGGREGATIONS = ("max", "mean", "min")
#: How "max" and "min" fold a window's value into a time step, and the value of a time step no window covered yet.
_EXTREMES = {"max": (np.maximum, -np.inf), "min": (np.minimum, np.inf)}


def window_starts(n_rows: int, window_length: int, stride: int) -> np.ndarray:
    """Start rows ``0, stride, 2*stride, ...`` of the windows ``[s, s + window_length)`` fitting in ``n_rows`` rows."""
    return np.arange(0, max(n_rows - window_length + 1, 0), stride, dtype=np.int64)


def covering_starts(n_rows: int, window_length: int, stride: int) -> np.ndarray:
    """:func:`window_starts` plus ``n_rows - T``, so the windows cover every row (with ``stride <= T``).

    Returns:
        (N,) int64, increasing; empty when ``n_rows < window_length``.
    """
    starts = window_starts(n_rows, window_length, stride)
    if len(starts) and starts[-1] != n_rows - window_length:
        starts = np.append(starts, n_rows - window_length)
    return starts


class PointAccumulator:
    """Per-time-step aggregates of window values, fed window batches in start order.

    Args:
        window_length: rows per window ``T``.
        how: ``"max"``, ``"mean"`` or ``"min"`` over the windows covering a time step.
        width: values per window ``D`` (1 for a score; F for per-sensor contributions).
        strict: every later window starts after the last one given (not at it), so the time step at the
            last start is final too and is handed out one batch sooner.
    """

    def __init__(self, window_length: int, how: Aggregation = "max", width: int = 1, strict: bool = False) -> None:
        _check_how(how)
        self.window_length, self.how, self.width, self.strict = int(window_length), how, int(width), strict
        self.base = 0  # row of self.acc[0]: every earlier row was handed out
        self.acc = np.zeros((0, self.width))
        self.count = np.zeros(0, dtype=np.int64)
        self.last_start = -1

    def add(self, starts: np.ndarray, values: np.ndarray) -> tuple[int, np.ndarray]:
        """Take a batch of windows; hand out the time steps no later window covers.

        Args:
            starts: window start rows (n,), increasing, at or after every earlier start.
            values: (n,) or (n, D) values of those windows.

        Returns:
            ``(first row, (m, D) values)`` of the time steps now final (m may be 0); a time
            step no window covered is NaN.
        """
        starts = np.asarray(starts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64).reshape(len(starts), self.width)
        if len(starts) == 0:
            return self.base, np.zeros((0, self.width))
        step = int(self.strict)  # the least step from one start to the next
        if starts[0] < max(self.last_start + step, self.base) or np.any(np.diff(starts) < step):
            raise ValueError("windows must come in increasing start order")
        self._grow(int(starts[-1]) + self.window_length)
        rows = (starts - self.base)[:, None] + np.arange(self.window_length)  # (n, T)
        spread = np.broadcast_to(values[:, None, :], (*rows.shape, self.width)).reshape(-1, self.width)
        flat = rows.reshape(-1)
        fold = _EXTREMES[self.how][0] if self.how in _EXTREMES else np.add
        fold.at(self.acc, flat, spread)
        np.add.at(self.count, flat, 1)
        self.last_start = int(starts[-1])
        return self._hand_out(self.last_start + int(self.strict))

    def finish(self) -> tuple[int, np.ndarray]:
        """Hand out every time step still held (the end of the stream)."""
        return self._hand_out(self.base + len(self.count))

    def _grow(self, end: int) -> None:
        extra = end - self.base - len(self.count)
        if extra > 0:
            fill = _EXTREMES[self.how][1] if self.how in _EXTREMES else 0.0
            self.acc = np.concatenate([self.acc, np.full((extra, self.width), fill)])
            self.count = np.concatenate([self.count, np.zeros(extra, dtype=np.int64)])

    def _hand_out(self, end: int) -> tuple[int, np.ndarray]:
        k = max(0, min(end - self.base, len(self.count)))
        acc, count = self.acc[:k], self.count[:k, None]
        with np.errstate(invalid="ignore", divide="ignore"):
            out = acc / count if self.how == "mean" else acc.copy()
        out[count[:, 0] == 0] = np.nan
        first = self.base
        self.acc, self.count, self.base = self.acc[k:], self.count[k:], self.base + k
        return first, out


def point_values(window_values: np.ndarray, starts: np.ndarray, window_length: int, n_rows: int,
                 how: Aggregation = "max") -> np.ndarray:
    """Per-time-step values of a whole recording from its windows' values.

    The same values as :class:`PointAccumulator` (``tests/test_stream_values.py``), in O(rows x T)
    vectorised work without (windows x T) arrays: a time step ``r`` takes the windows starting in
    ``[r - T + 1, r]``, a sliding range over the values laid out by start row.

    Args:
        window_values: (N,) or (N, D) values of the windows starting at ``starts``.
        starts: (N,) start rows, each in ``[0, n_rows)``.
        window_length: rows per window ``T``.
        n_rows: rows in the recording.
        how: ``"max"``, ``"mean"`` or ``"min"`` over the windows covering each time step.

    Returns:
        (n_rows,) for (N,) values, else (n_rows, D); NaN where no window covers a time step.
    """
    _check_how(how)
    values = np.asarray(window_values, dtype=np.float64)
    flat = values.reshape(len(values), -1)  # (N, D)
    starts = np.asarray(starts, dtype=np.int64)
    t, pad = int(window_length), int(window_length) - 1
    count = np.zeros(n_rows + pad, dtype=np.int64)  # windows starting at each row, after pad leading rows
    np.add.at(count, starts + pad, 1)
    covered = np.convolve(count, np.ones(t, dtype=np.int64), mode="valid")  # (n_rows,) windows per time step
    if how in _EXTREMES:
        fold, fill = _EXTREMES[how]
        laid = np.full((n_rows + pad, flat.shape[1]), fill)
        fold.at(laid, starts + pad, flat)
        out = fold.reduce(sliding_window_view(laid, t, axis=0), axis=-1)  # (n_rows, D): no copy of the windows
    else:
        laid = np.zeros((n_rows + pad + 1, flat.shape[1]))
        np.add.at(laid, starts + pad + 1, flat)
        summed = np.cumsum(laid, axis=0)
        with np.errstate(invalid="ignore", divide="ignore"):
            out = (summed[t:] - summed[:-t]) / covered[:, None]
    out[covered == 0] = np.nan
    return out[:, 0] if values.ndim == 1 else out


def _check_how(how: str) -> None:
    if how not in AGGREGATIONS:
        raise ValueError(f"how: expected one of {', '.join(AGGREGATIONS)}, got {how!r}")


def label_ranges(flags: np.ndarray) -> np.ndarray:
    """``[start, end)`` rows of each run of nonzero flags, (k, 2) int64."""
    f = np.concatenate([[0], (np.asarray(flags) != 0).astype(np.int8), [0]])
    edges = np.flatnonzero(np.diff(f))
    return edges.reshape(-1, 2).astype(np.int64)


def kind_runs(flags: np.ndarray, kinds: np.ndarray | None = None) -> list[tuple[int, int, str]]:
    """``(start, end, kind)`` of each run of flagged rows of one kind (end exclusive; ``"anomaly"`` without kinds).

    Args:
        flags: (n,) per-row flags, nonzero = labelled.
        kinds: (n,) per-row kind names, or None.
    """
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
    """(k,) bool: whether each of ``ranges`` shares at least one row with one of ``others``.

    ``others`` must not overlap each other (labelled ranges, alarm runs and incidents never do);
    O((k + m) log m) by a sorted search, not a (k, m) matrix.
    """
    a, b = np.asarray(ranges, dtype=np.int64).reshape(-1, 2), np.asarray(others, dtype=np.int64).reshape(-1, 2)
    if len(a) == 0 or len(b) == 0:
        return np.zeros(len(a), dtype=bool)
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
