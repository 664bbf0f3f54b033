"""From window scores to time steps (the max, mean or min of the windows covering one) and incidents (alarmed time
steps at most ``merge_gap`` quiet rows apart), one implementation for a recording and a live stream (docs/streams.md).
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from utils.metrics.ranges import incident_ranges, overlapping

Aggregation = Literal["max", "mean", "min"]

#: How each aggregation folds a window's value into a time step ("mean": a sum), and a time step's value before.
_FOLDS = {"max": (np.maximum, -np.inf), "mean": (None, 0.0), "min": (np.minimum, np.inf)}


class PointAccumulator:
    """Per-time-step aggregates (``how`` over the windows covering it) of window values fed in start order;
    ``width``: values per window D; ``strict``: every later window starts after (not at) the last one given, so the
    time step at the last start is handed out one batch sooner."""

    def __init__(self, window_length: int, how: Aggregation = "max", width: int = 1, strict: bool = False) -> None:
        self.window_length, self.how, self.width, self.strict = int(window_length), how, int(width), strict
        self.base = 0  # row of self.acc[0]: every earlier row was handed out
        self.acc, self.count, self.last_start = np.zeros((0, self.width)), np.zeros(0, dtype=np.int64), -1

    def add(self, starts: np.ndarray, values: np.ndarray) -> tuple[int, np.ndarray]:
        """Take windows starting at ``starts`` (n,) (increasing, not before earlier starts) with ``values`` (n,) or
        (n, D); hand out ``(first row, (m, D) values)`` of the time steps no later window covers (NaN: none did)."""
        starts = np.asarray(starts, dtype=np.int64)
        values = np.asarray(values, dtype=np.float64).reshape(len(starts), self.width)
        if len(starts) == 0:
            return self.base, np.zeros((0, self.width))
        step = int(self.strict)  # the least step from one start to the next
        if starts[0] < max(self.last_start + step, self.base) or np.any(np.diff(starts) < step):
            raise ValueError("windows must come in increasing start order")
        extra = int(starts[-1]) + self.window_length - self.base - len(self.count)  # rows the last window adds
        if extra > 0:
            self.acc = np.concatenate([self.acc, np.full((extra, self.width), _FOLDS[self.how][1])])
            self.count = np.concatenate([self.count, np.zeros(extra, dtype=np.int64)])
        lo, span = int(starts[0]) - self.base, int(starts[-1] - starts[0]) + self.window_length
        self.count[lo:lo + span] += _fold_windows(self.acc[lo:lo + span], starts - starts[0], values,
                                                  self.window_length, self.how)
        self.last_start = int(starts[-1])
        return self._hand_out(self.last_start + int(self.strict))

    def finish(self) -> tuple[int, np.ndarray]:
        """Hand out every time step still held (the end of the stream)."""
        return self._hand_out(self.base + len(self.count))

    def _hand_out(self, end: int) -> tuple[int, np.ndarray]:
        k = max(0, min(end - self.base, len(self.count)))
        out = _final(self.acc[:k], self.count[:k], self.how)
        first, self.acc, self.count, self.base = self.base, self.acc[k:], self.count[k:], self.base + k
        return first, out


def point_values(window_values: np.ndarray, starts: np.ndarray, window_length: int, n_rows: int,
                 how: Aggregation = "max") -> np.ndarray:
    """Per-time-step values (n_rows,) or (n_rows, D) of a recording from ``window_values`` (N,) or (N, D) of the
    windows starting at ``starts`` (N,), as :class:`PointAccumulator` fed every window at once."""
    values = np.asarray(window_values, dtype=np.float64)
    flat = values.reshape(len(values), -1)  # (N, D)
    folded = np.full((n_rows, flat.shape[1]), _FOLDS[how][1])
    out = _final(folded, _fold_windows(folded, np.asarray(starts, dtype=np.int64), flat, window_length, how), how)
    return out[:, 0] if values.ndim == 1 else out


def _fold_windows(into: np.ndarray, starts: np.ndarray, values: np.ndarray, window_length: int,
                  how: Aggregation) -> np.ndarray:
    """Fold the values (N, D) of the windows starting at ``starts`` (N,) into the rows ``into`` (n, D) (max, min, or
    the sum for ``"mean"``, in window order: the same float however batched), in place; returns cover counts (n,)."""
    n_rows, t, pad = len(into), int(window_length), int(window_length) - 1
    if n_rows == 0:
        return np.zeros(0, dtype=np.int64)
    count = np.zeros(n_rows + pad, dtype=np.int64)  # windows starting at each row, after pad leading rows
    np.add.at(count, starts + pad, 1)
    fold, fill = _FOLDS[how]
    if fold is not None:
        laid = np.full((n_rows + pad, values.shape[1]), fill)
        fold.at(laid, starts + pad, values)
        fold(into, fold.reduce(sliding_window_view(laid, t, axis=0), axis=-1), out=into)  # no copy of the windows
    else:
        np.add.at(into, (starts[:, None] + np.arange(t)).reshape(-1), np.repeat(values, t, axis=0))
    return np.convolve(count, np.ones(t, dtype=np.int64), mode="valid")


def _final(folded: np.ndarray, count: np.ndarray, how: Aggregation) -> np.ndarray:
    """The time steps' values (m, D) from :func:`_fold_windows`' fold and counts (m,); NaN where none covered."""
    with np.errstate(invalid="ignore", divide="ignore"):
        out = folded / count[:, None] if how == "mean" else folded.copy()
    out[count == 0] = np.nan
    return out


INCIDENT_COLUMNS = ("incident", "start_row", "end_row", "start_time", "end_time", "duration_s", "rows",
                    "peak_score", "peak_row", "mean_score", "top_feature")


@dataclass
class Incident:
    """One incident: rows ``start_row..end_row`` (inclusive), first and last alarmed time step; ``mean_score`` and
    ``top_feature`` (largest summed contribution) over all its rows; times as text, empty without timestamps."""

    start_row: int
    end_row: int
    peak_score: float
    peak_row: int
    mean_score: float
    top_feature: str = ""
    start_time: str = ""
    end_time: str = ""
    duration_s: float | None = None

    @property
    def rows(self) -> int:
        """Rows from start to end."""
        return self.end_row - self.start_row + 1

    def text(self, threshold: float) -> str:
        """The incident in words: ``current, rows 1200-1450, from 09:40:12 to 09:41:05 (53 s), peak score ...``."""
        where = f"rows {self.start_row}-{self.end_row}"
        if self.start_time:
            where += f", from {self.start_time} to {self.end_time}"
            if self.duration_s is not None:
                where += f" ({self.duration_s:.4g} s)"
        else:
            where += f" ({self.rows} rows)"
        return (f"{self.top_feature or '?'}, {where}, peak score {self.peak_score:.4g} at row {self.peak_row} "
                f"(threshold {threshold:.4g})")

    def as_row(self, number: int) -> list[Any]:
        """The incident as a row of :data:`INCIDENT_COLUMNS`, numbered ``number``."""
        d = {**asdict(self), "incident": number, "rows": self.rows}
        d["duration_s"] = "" if self.duration_s is None else f"{self.duration_s:.6g}"
        d["peak_score"], d["mean_score"] = f"{self.peak_score:.8g}", f"{self.mean_score:.8g}"
        return [d[c] for c in INCIDENT_COLUMNS]


class IncidentTracker:
    """Builds incidents from per-time-step scores fed in row order: a time step is alarmed where ``score >
    threshold``; an incident holds at most ``merge_gap`` quiet rows in a row."""

    def __init__(self, threshold: float, merge_gap: int, feature_names: list[str] | None = None,
                 first_row: int = 0) -> None:
        self.threshold, self.merge_gap = float(threshold), int(merge_gap)
        self.feature_names, self._next_row = list(feature_names or []), int(first_row)
        self._open: dict[str, Any] | None = None

    def update(self, first_row: int, scores: np.ndarray, contributions: np.ndarray | None = None,
               times: np.ndarray | None = None, time_text: np.ndarray | None = None,
               limits: np.ndarray | None = None) -> list[Incident]:
        """Take the time steps from ``first_row`` on (after the last call's), ``scores`` (m,) (NaN: quiet), with
        ``contributions`` (m, F), ``times`` (m,) seconds, ``time_text`` (m,) and ``limits`` (m,) in place of
        :attr:`threshold`; return the incidents they close."""
        if first_row != self._next_row:
            raise ValueError(f"rows must follow each other: expected row {self._next_row}, got {first_row}")
        scores = np.asarray(scores, dtype=np.float64)
        contributions = None if contributions is None else np.asarray(contributions, dtype=np.float64)
        self._next_row = first_row + len(scores)
        closed: list[Incident] = []
        quiet_from = 0  # batch rows before this one are folded in or dropped
        for i in np.flatnonzero(scores > (self.threshold if limits is None else limits)):
            i, row = int(i), first_row + int(i)
            if self._open is not None and row - self._open["end"] - 1 > self.merge_gap:
                closed.append(self._close())
            if self._open is None:
                self._open = {"start": row, "sum": 0.0, "n": 0, "contrib": None, "peak": -np.inf,
                              "start_time": _at(time_text, i), "t0": _at(times, i), "pending": _tally()}
            else:  # the quiet rows since its last alarm are inside it now
                _fold(self._open, self._open["pending"])
                _fold(self._open, _tally(scores, contributions, quiet_from, i))
            self._open["pending"] = _tally()
            _fold(self._open, _tally(scores, contributions, i, i + 1))
            if scores[i] > self._open["peak"]:
                self._open["peak"], self._open["peak_row"] = float(scores[i]), row
            self._open.update(end=row, end_time=_at(time_text, i), t1=_at(times, i))
            quiet_from = i + 1
        if self._open is not None:
            _fold(self._open["pending"], _tally(scores, contributions, quiet_from))
            if self._next_row - self._open["end"] - 1 > self.merge_gap:
                closed.append(self._close())
        return closed

    def close(self) -> list[Incident]:
        """The end of the stream: the open incident, if any."""
        return [self._close()] if self._open is not None else []

    def _close(self) -> Incident:
        inc, self._open = self._open, None
        named = inc["contrib"] is not None and self.feature_names
        top = self.feature_names[int(np.argmax(inc["contrib"]))] if named else ""
        duration = None if "" in (inc["t0"], inc["t1"]) else float(inc["t1"]) - float(inc["t0"])
        return Incident(inc["start"], inc["end"], inc["peak"], inc["peak_row"], inc["sum"] / max(inc["n"], 1), top,
                        str(inc["start_time"]), str(inc["end_time"]), duration)


def _tally(scores: np.ndarray | None = None, contributions: np.ndarray | None = None, lo: int = 0,
           hi: int | None = None) -> dict[str, Any]:
    """Sum and count of the finite scores, and the summed contributions (F,) or None, of the rows ``lo:hi``."""
    if scores is None or len(scores[lo:hi]) == 0:
        return {"sum": 0.0, "n": 0, "contrib": None}
    finite = scores[lo:hi][np.isfinite(scores[lo:hi])]
    return {"sum": float(finite.sum()), "n": len(finite),
            "contrib": None if contributions is None else np.nansum(contributions[lo:hi], axis=0)}


def _fold(into: dict[str, Any], part: dict[str, Any]) -> None:
    into["sum"] += part["sum"]
    into["n"] += part["n"]
    if part["contrib"] is not None:
        into["contrib"] = part["contrib"] if into["contrib"] is None else into["contrib"] + part["contrib"]


def _at(values: np.ndarray | None, i: int) -> Any:
    return "" if values is None else values[i]


def find_incidents(scores: np.ndarray, threshold: float | np.ndarray, merge_gap: int,
                   contributions: np.ndarray | None = None, feature_names: list[str] | None = None,
                   times: np.ndarray | None = None, time_text: np.ndarray | None = None,
                   first_row: int = 0) -> list[Incident]:
    """The incidents of a recording's per-time-step scores (n,) (:class:`IncidentTracker`); ``threshold``: a number
    or (n,)."""
    limits = threshold if isinstance(threshold, np.ndarray) else None
    tracker = IncidentTracker(np.nan if limits is not None else threshold, merge_gap, feature_names, first_row)
    return tracker.update(first_row, scores, contributions, times, time_text, limits) + tracker.close()


def match_incidents(incidents: list[Incident], labelled: np.ndarray) -> dict[str, Any]:
    """Incidents against labelled ranges (k, 2) ``[start, end)``: ``{"hit": (n_incidents,) bool, "detected": (k,)
    bool}``, each overlapping the other."""
    found = incident_ranges(incidents)
    return {"hit": overlapping(found, labelled), "detected": overlapping(np.asarray(labelled).reshape(-1, 2), found)}
