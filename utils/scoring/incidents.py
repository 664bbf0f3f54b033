"""Incidents: runs of alarmed time steps, merged over short gaps, as an engineer reads them.

"current, from 09:40:12 to 09:41:05, peak score 8.1" instead of "window 200": consecutive
time steps with ``score > threshold`` form an incident, and two incidents separated by at most
``merge_gap`` quiet rows are one. :class:`IncidentTracker` takes the time steps in row order
(as :class:`utils.scoring.stream.PointAccumulator` hands them out) and returns each incident
once it is closed, i.e. once more than ``merge_gap`` quiet rows followed it, so a live stream
reports it as soon as that is known; :func:`find_incidents` runs it over a whole recording.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

import numpy as np

from utils.scoring.stream import overlapping

INCIDENT_COLUMNS = ("incident", "start_row", "end_row", "start_time", "end_time", "duration_s", "rows",
                    "peak_score", "peak_row", "mean_score", "top_feature")


@dataclass
class Incident:
    """One incident: rows ``start_row..end_row`` (inclusive), first and last alarmed time step.

    ``mean_score`` is over every row from start to end (merged quiet rows included), ``top_feature``
    the sensor with the largest summed contribution over those rows (empty without contributions),
    times are the recording's timestamps as text (empty without them) and ``duration_s`` the seconds
    from start to end (None without times).
    """

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
        return self.end_row - self.start_row + 1

    def text(self, threshold: float) -> str:
        """The incident in words: ``current, rows 1200-1450, from 09:40:12 to 09:41:05 (53 s), peak score 8.1 at
        row 1300 (threshold 2.3)`` (the row count instead of the times when there are none)."""
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
    """Builds incidents from per-time-step scores fed in row order.

    Args:
        threshold: a time step is alarmed where ``score > threshold``.
        merge_gap: at most this many quiet rows inside one incident.
        feature_names: the sensors, in the order of the contributions' columns.
        first_row: the row number of the first time step to come.
    """

    def __init__(self, threshold: float, merge_gap: int, feature_names: list[str] | None = None,
                 first_row: int = 0) -> None:
        self.threshold, self.merge_gap = float(threshold), int(merge_gap)
        self.feature_names = list(feature_names or [])
        self._open: dict[str, Any] | None = None
        self._next_row = int(first_row)

    def update(self, first_row: int, scores: np.ndarray, contributions: np.ndarray | None = None,
               times: np.ndarray | None = None, time_text: np.ndarray | None = None,
               limits: np.ndarray | None = None) -> list[Incident]:
        """Take the time steps ``first_row, first_row + 1, ...``; return the incidents they close.

        Args:
            first_row: row of ``scores[0]``; the next row after the last call's.
            scores: (m,) per-time-step scores (NaN: not scored, counts as quiet).
            contributions: (m, F) per-sensor contributions, or None.
            times: (m,) seconds, or None.
            time_text: (m,) timestamps as text, or None.
            limits: (m,) per-time-step thresholds in place of :attr:`threshold`
                (:class:`utils.scoring.conformal.AdaptiveThreshold`), or None.
        """
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
                _fold(self._open, _tally(scores[quiet_from:i], _rows(contributions, quiet_from, i)))
            self._open["pending"] = _tally()
            _fold(self._open, _tally(scores[i:i + 1], _rows(contributions, i, i + 1)))
            if scores[i] > self._open["peak"]:
                self._open["peak"], self._open["peak_row"] = float(scores[i]), row
            self._open.update(end=row, end_time=_at(time_text, i), t1=_at(times, i))
            quiet_from = i + 1
        if self._open is not None:
            _fold(self._open["pending"], _tally(scores[quiet_from:], _rows(contributions, quiet_from, len(scores))))
            if self._next_row - self._open["end"] - 1 > self.merge_gap:
                closed.append(self._close())
        return closed

    def close(self) -> list[Incident]:
        """The end of the stream: the open incident, if any."""
        return [self._close()] if self._open is not None else []

    def _close(self) -> Incident:
        inc, self._open = self._open, None
        top = ""
        if inc["contrib"] is not None and self.feature_names:
            top = self.feature_names[int(np.argmax(inc["contrib"]))]
        duration = None if "" in (inc["t0"], inc["t1"]) else float(inc["t1"]) - float(inc["t0"])
        return Incident(inc["start"], inc["end"], inc["peak"], inc["peak_row"], inc["sum"] / max(inc["n"], 1), top,
                        str(inc["start_time"]), str(inc["end_time"]), duration)


def _tally(scores: np.ndarray | None = None, contributions: np.ndarray | None = None) -> dict[str, Any]:
    """Sum and count of the finite scores, and the summed contributions (F,) or None, of some rows."""
    if scores is None or len(scores) == 0:
        return {"sum": 0.0, "n": 0, "contrib": None}
    finite = scores[np.isfinite(scores)]
    return {"sum": float(finite.sum()), "n": len(finite),
            "contrib": None if contributions is None else np.nansum(contributions, axis=0)}


def _fold(into: dict[str, Any], part: dict[str, Any]) -> None:
    into["sum"] += part["sum"]
    into["n"] += part["n"]
    if part["contrib"] is not None:
        into["contrib"] = part["contrib"] if into["contrib"] is None else into["contrib"] + part["contrib"]


def _rows(values: np.ndarray | None, lo: int, hi: int) -> np.ndarray | None:
    return None if values is None else values[lo:hi]


def _at(values: np.ndarray | None, i: int) -> Any:
    return "" if values is None else values[i]


def find_incidents(scores: np.ndarray, threshold: float | np.ndarray, merge_gap: int,
                   contributions: np.ndarray | None = None,
                   feature_names: list[str] | None = None, times: np.ndarray | None = None,
                   time_text: np.ndarray | None = None, first_row: int = 0) -> list[Incident]:
    """The incidents of a whole recording's per-time-step scores (n,) (see :class:`IncidentTracker`).

    ``first_row`` numbers the rows (the row of ``scores[0]`` in the whole file); ``threshold`` is one number or
    (n,) per time step; contributions are (n, F), times (n,) seconds and time_text (n,) strings, each optional.
    """
    limits = threshold if isinstance(threshold, np.ndarray) else None
    tracker = IncidentTracker(np.nan if limits is not None else threshold, merge_gap, feature_names, first_row)
    return tracker.update(first_row, scores, contributions, times, time_text, limits) + tracker.close()


def incident_ranges(incidents: list[Incident]) -> np.ndarray:
    """``[start, end)`` rows of the incidents, (k, 2) int64."""
    return np.array([[i.start_row, i.end_row + 1] for i in incidents], dtype=np.int64).reshape(-1, 2)


def match_incidents(incidents: list[Incident], labelled: np.ndarray) -> dict[str, Any]:
    """Incidents against labelled anomaly ranges (k, 2) ``[start, end)`` (same row numbering).

    Returns:
        ``{"hit": (n_incidents,) bool, incident overlaps a labelled range (else a false alarm),
        "detected": (k,) bool, labelled range overlapped by an incident (else missed)}``.
    """
    found = incident_ranges(incidents)
    return {"hit": overlapping(found, labelled), "detected": overlapping(np.asarray(labelled).reshape(-1, 2), found)}
