"""The timeline of a long recording: each sensor, the score and its threshold, labels and incidents. Each line is the
min/max envelope of at most ``max_points`` bins (:func:`envelope`): a one-row spike in 10^6 rows stays visible."""
from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from utils.figures.style import (REFERENCE_COLOR, SAVE_DPI, SERIES_COLORS, figure_legend, kind_colors, plain_text,
                                 short_label, wrap_title)
from utils.metrics.ranges import clock_text, incident_ranges, kind_runs, overlapping

Incident = Any  # of agents.detector.streaming: start_row, end_row, peak_row, peak_score, top_feature

__all__ = ["envelope", "plot_timeline"]

SCORE_COLOR = "#222222"
HIT_COLOR, FALSE_ALARM_COLOR, INCIDENT_COLOR = "#2ca02c", "#d62728", "#ff7f0e"
WIDTH_IN = 13.0
LOG_DECADES = 3  # a log score axis when the scores are positive and peak more decades than this above their median
MIN_CONTEXT = 25  # rows shown at least on each side of a detail
MAX_SENSOR_PANELS = 12  # of more sensors, those of :func:`_shown_sensors` (hundreds made a figure 66,000 px high)
Span = tuple[int, int, str]  # (start, end, kind): 0-based rows, end exclusive


def envelope(x: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """``(centres, lo, hi)``, each (b,), b <= n_bins: middle row, NaN-ignoring minimum and maximum of (n,) ``x`` per
    bin of ``ceil(n / n_bins)`` consecutive rows (NaN where the whole bin is); with ``n <= n_bins``, ``x`` itself."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"x must have shape (n,), got {x.shape}")
    if int(n_bins) < 1:
        raise ValueError(f"n_bins must be at least 1, got {n_bins}")
    n = len(x)
    size = max(1, -(-n // int(n_bins)))
    b = -(-n // size)
    blocks = np.pad(x, (0, b * size - n), constant_values=np.nan).reshape(b, size)
    first = np.arange(b) * size
    return (first + np.minimum(first + size, n) - 1) / 2.0, np.fmin.reduce(blocks, axis=1), np.fmax.reduce(blocks, axis=1)


class TimeAxis:
    """The x axis of rows ``lo..hi - 1``: absolute rows, or times in s/min/h (as fits), from row ``origin``'s time."""

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


def _check_inputs(values, feature_names, scores, threshold, labels, kinds, incidents, hits, times, first_row,
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


def _stray(values: np.ndarray, s: int, e: int) -> np.ndarray:
    """(F,) how far each sensor's rows ``s..e - 1`` stray from its median, in units of its spread (MAD); -1 for a
    sensor without values there."""
    with warnings.catch_warnings():  # an all-NaN sensor: NaN here, never picked
        warnings.simplefilter("ignore", RuntimeWarning)
        median = np.nanmedian(values, axis=0)
        spread = np.nanmedian(np.abs(values - median), axis=0)
        far = np.nanmax(np.abs(values[s:e] - median), axis=0) / np.where(spread > 0, spread, 1.0)
    return np.where(np.isfinite(far), far, -1.0)


def _pick_sensor(values: np.ndarray, s: int, e: int) -> int:
    """The sensor whose rows ``s..e - 1`` stray farthest from its median (:func:`_stray`)."""
    return int(np.argmax(_stray(values, s, e)))


def _shown_sensors(values: np.ndarray, names: list[str], incidents: list[Incident]) -> tuple[list[int], str]:
    """The columns that get a panel, in column order, and a note of the choice ("" when all do): every sensor, or of
    more than :data:`MAX_SENSOR_PANELS` the top sensors of the highest incidents, then those straying farthest."""
    f = values.shape[1]
    if f <= MAX_SENSOR_PANELS:
        return list(range(f)), ""
    tops = [names.index(inc.top_feature) for inc in sorted(incidents, key=lambda inc: -inc.peak_score)
            if inc.top_feature]
    ranked = dict.fromkeys(tops + np.argsort(-_stray(values, 0, len(values)), kind="stable").tolist())
    shown = sorted(list(ranked)[:MAX_SENSOR_PANELS])
    how = "the top sensors of the highest incidents, then " if tops else ""
    return shown, (f"{len(shown)} of {f} sensors shown ({f - len(shown)} left out): {how}those straying farthest "
                   "from their median (in MADs)")


def _series(ax: Axes, xaxis: TimeAxis, y: np.ndarray, offset: int, max_points: int, **line) -> None:
    """``y`` (rows ``offset..``) as its min/max envelope: per bin a vertical stroke from min to max."""
    centres, lo, hi = envelope(y, max_points)
    x = xaxis.at(offset + centres)
    if len(centres) == len(y):
        ax.plot(x, y, marker="o" if len(y) == 1 else None, **line)  # one row: a dot, not an invisible line
    else:
        ax.plot(np.repeat(x, 2), np.column_stack([lo, hi]).ravel(), **line)


def _empty(ax: Axes, text: str) -> None:
    ax.text(0.5, 0.5, text, ha="center", va="center", transform=ax.transAxes, color=REFERENCE_COLOR)


def _shade(ax: Axes, xaxis: TimeAxis, spans: list[Span], colors: dict[str, str], pixel: float) -> None:
    """The spans (sorted) as full-height boxes, one collection per kind (thousands of axvspan patches take seconds);
    boxes of a kind closer than ``pixel`` (x units) merge: at most a box per pixel (80,000 took 20 s to save)."""
    edges = xaxis.at([sp[:2] for sp in spans]).reshape(-1, 2)
    kinds = np.array([sp[2] for sp in spans])
    for kind in dict.fromkeys(kinds.tolist()):
        x0, x1 = edges[kinds == kind].T
        first = np.flatnonzero(np.concatenate([[True], x0[1:] - x1[:-1] >= pixel]))  # of each merged box
        x0, x1 = x0[first], np.maximum.reduceat(x1, first)  # corners (x0, 0), (x0, 1), (x1, 1), (x1, 0) of each box
        boxes = np.stack(np.broadcast_arrays(np.stack([x0, x0, x1, x1], axis=1), [0.0, 1.0, 1.0, 0.0]), axis=-1)
        # the edge keeps a range narrower than a pixel visible (as a line) over a long recording
        ax.add_collection(PolyCollection(boxes, facecolors=(colors[kind], 0.22), edgecolors=(colors[kind], 0.7),
                                         linewidths=0.6, transform=ax.get_xaxis_transform(), gid=f"label:{kind}"),
                          autolim=False)


@dataclass
class _Recording:
    """The checked inputs of :func:`plot_timeline` and what the panels share."""

    values: np.ndarray  # (n, F)
    names: list[str]
    scores: np.ndarray  # (n,)
    threshold: float
    incidents: list[Incident]
    hits: np.ndarray | None
    spans: list[Span]
    xaxis: TimeAxis
    max_points: int
    score_name: str

    def __post_init__(self) -> None:
        self.colors = kind_colors(k for _, _, k in self.spans)
        self.marks = (np.full(len(self.incidents), INCIDENT_COLOR) if self.hits is None else
                      np.where(self.hits, HIT_COLOR, FALSE_ALARM_COLOR))
        # (k, 3) 0-based start, end (exclusive) and peak row of each incident
        self.rows = np.array([(inc.start_row, inc.end_row + 1, inc.peak_row) for inc in self.incidents],
                             dtype=np.int64).reshape(-1, 3) - self.xaxis.first_row
        self.peaks = np.array([inc.peak_score for inc in self.incidents])

    def panels(self, sensors: list[Axes], score_ax: Axes, features: list[int], lo: int, hi: int, xaxis: TimeAxis,
               detail: bool) -> None:
        """Rows ``lo..hi - 1``: sensor ``features[i]`` in ``sensors[i]``; score, threshold, incidents in score_ax."""
        for ax, f in zip(sensors, features):
            column = self.values[lo:hi, f]
            _series(ax, xaxis, column, lo, self.max_points, color=SERIES_COLORS[f % len(SERIES_COLORS)],
                    lw=1.0 if detail else 0.8)
            if not detail and not np.isfinite(column).any():
                _empty(ax, "no values (every row is NaN)" if hi else "no rows")
            ax.set_ylabel(wrap_title(short_label(self.names[f]), 0.0))  # up to 2 lines of 24 beside the panel
            ax.tick_params(labelbottom=False)
            ax.grid(alpha=0.3)
        spans = [(max(a, lo), min(b, hi), k) for a, b, k in self.spans if a < hi and b > lo]
        pixel = float(np.ptp(xaxis.at([lo, hi]))) / (WIDTH_IN * SAVE_DPI)  # x of one pixel of the figure's width
        for ax in (*sensors, score_ax):
            _shade(ax, xaxis, spans, self.colors, pixel)
        ax, s, threshold = score_ax, self.scores[lo:hi], self.threshold
        finite = s[np.isfinite(s)]
        if len(finite):
            _series(ax, xaxis, s, lo, self.max_points, color=SCORE_COLOR, lw=0.8)
            top = max(finite.max(), threshold)
            if min(finite.min(), threshold) > 0 and top > np.median(finite) * 10 ** LOG_DECADES:
                ax.set_yscale("log")
                ax.set_ylim(bottom=min(float(np.quantile(finite, 0.001)), threshold) / 2)
        else:
            _empty(ax, "no scores (every time step is NaN: not scored)" if hi > lo else "no rows")
        ax.axhline(threshold, color="black", ls="--", lw=1.0, gid="threshold")
        start, end, peak = self.rows.T
        shown = (end > lo) & (start < hi)
        if shown.any():
            colors = self.marks[shown].tolist()
            ax.hlines(self.peaks[shown], xaxis.at(start[shown]), xaxis.at(end[shown]), colors=colors, lw=3,
                      gid="incident_bars")
            ax.scatter(xaxis.at(peak[shown]), self.peaks[shown], c=colors, marker="v", s=36, zorder=3,
                       gid="incident_peaks")
        ax.set_ylabel(self.score_name + (" (log scale)" if ax.get_yscale() == "log" else ""))
        ax.grid(alpha=0.3)
        ax.set_xlabel(xaxis.label)
        ax.ticklabel_format(axis="x", style="plain", useOffset=False)
        if hi > lo:
            ax.set_xlim(*xaxis.at([lo, hi]))

    def details(self, n_details: int) -> list[tuple[int, int, int, TimeAxis, str]]:
        """``(lo, hi, sensor, x axis, title)`` of each detail panel: the highest incidents, then the longest missed."""
        incidents, first, chosen = self.incidents, self.xaxis.first_row, []
        for k in np.argsort(-self.peaks, kind="stable")[:n_details]:
            inc = incidents[k]
            tag = "" if self.hits is None else " (hit)" if self.hits[k] else " (false alarm)"
            chosen.append((*self.rows[k, :2], inc.top_feature,
                           f"Incident {k + 1}{tag}: rows {inc.start_row}-{inc.end_row}, peak {inc.peak_score:.3g}"))
        missed = [sp for sp, hit in zip(self.spans, overlapping(np.array([sp[:2] for sp in self.spans]),
                                                                self.rows[:, :2])) if not hit]
        for s, e, kind in sorted(missed, key=lambda sp: sp[0] - sp[1])[:n_details - len(chosen)]:
            chosen.append((s, e, None, f"Missed {kind}: rows {first + s}-{first + e - 1}"))
        items = []
        for s, e, top_feature, title in chosen:
            lo, hi = max(0, s - max(e - s, MIN_CONTEXT)), min(len(self.values), e + max(e - s, MIN_CONTEXT))
            f = self.names.index(top_feature) if top_feature else _pick_sensor(self.values[lo:hi], s - lo, e - lo)
            items.append((lo, hi, f, TimeAxis(first, self.xaxis.times, lo, hi, origin=s), title))
        return items


@plain_text
def plot_timeline(values: np.ndarray, feature_names: Sequence[str], scores: np.ndarray, threshold: float, *,
                  labels: np.ndarray | None = None, kinds: np.ndarray | None = None,
                  incidents: Sequence[Incident] = (), hits: np.ndarray | None = None,
                  times: np.ndarray | None = None, first_row: int = 0, score_name: str = "score",
                  title: str | None = None, max_points: int = 2000, n_details: int = 3) -> Figure:
    """One panel per sensor (of more than :data:`MAX_SENSOR_PANELS`, that many: :func:`_shown_sensors`, named in the
    title) and the score panel (labelled ranges shaded by kind, each incident a bar at its peak: green = hit, red =
    false alarm, orange = no labels to tell), then detail panels of a few incidents.

    Args:
        values: (n, F) raw sensor rows (or (n,) for one sensor); NaN = missing.
        scores: (n,) per-time-step scores; NaN = not scored.
        labels: (n,) 1 = labelled anomaly; None: labelled where ``kinds`` is not ``normal``.
        kinds: (n,) anomaly kind of each row (shading colour, legend); None: ``anomaly``.
        incidents: with absolute rows (``start_row - first_row`` indexes the arrays).
        hits: (len(incidents),) bool, incident overlaps a labelled range; None: computed from the labels.
        times: (n,) seconds since the start, non-decreasing: x in s, min or h (as fits); None: absolute rows.
        first_row: absolute row of ``values[0]``; ``title`` None: the rows and bin size.
        max_points: at most this many bins per line (>= 2); ``n_details``: detail panels (>= 0).
    """
    values, names, scores, labels, kinds, incidents, hits, times = _check_inputs(
        values, feature_names, scores, threshold, labels, kinds, incidents, hits, times, first_row, max_points,
        n_details)
    first_row, max_points, n_details = int(first_row), int(max_points), int(n_details)
    n = len(values)
    if labels is None and kinds is not None:  # labelled where the kind is not normal
        labels = kinds != "normal"
    spans = [] if labels is None else kind_runs(np.asarray(labels, dtype=np.float64), kinds)
    if hits is None and labels is not None:
        hits = overlapping(incident_ranges(incidents) - first_row, np.array([sp[:2] for sp in spans]))
    rec = _Recording(values, names, scores, float(threshold), incidents, hits, spans, TimeAxis(first_row, times, 0, n),
                     max_points, score_name)
    items = rec.details(n_details)
    detail_rows = 2 if n_details else 0
    shown, note = _shown_sensors(values, names, incidents)
    f = len(shown)
    fig = Figure(figsize=(WIDTH_IN, 1.5 * f + 2.2 + 1.8 * detail_rows), layout="constrained")
    grid = fig.add_gridspec(f + 1 + detail_rows, max(len(items), 1),
                            height_ratios=[1.0] * f + [1.3] + [1.0] * detail_rows)
    main = [fig.add_subplot(grid[0, :])]
    main += [fig.add_subplot(grid[i, :], sharex=main[0]) for i in range(1, f + 1)]
    rec.panels(main[:f], main[f], shown, 0, n, rec.xaxis, detail=False)
    for j, (lo, hi, sensor, xaxis, heading) in enumerate(items):
        top = fig.add_subplot(grid[f + 1, j])
        rec.panels([top], fig.add_subplot(grid[f + 2, j], sharex=top), [sensor], lo, hi, xaxis, detail=True)
        top.set_title(wrap_title(heading, WIDTH_IN / len(items)))
    if detail_rows and not items:
        ax = fig.add_subplot(grid[f + 1:, 0])
        ax.set_axis_off()
        _empty(ax, "no incidents and no labelled ranges: no detail panels")
    size = -(-n // max_points)
    default = f"Timeline of {n} rows" + (f" (lines: min/max over bins of {size} rows)" if size > 1 else "")
    fig.suptitle("\n".join(wrap_title(text, WIDTH_IN) for text in (title or default, note) if text))
    handles = [Line2D([], [], color=SCORE_COLOR, label=score_name),
               Line2D([], [], color="black", ls="--", label=f"threshold = {rec.threshold:.4g}")]
    handles += [Patch(facecolor=(c, 0.3), edgecolor=c, label=k) for k, c in rec.colors.items()]
    if incidents:
        marks = [(INCIDENT_COLOR, "incident")] if hits is None else [(HIT_COLOR, "incident: hit"),
                                                                    (FALSE_ALARM_COLOR, "incident: false alarm")]
        handles += [Line2D([], [], color=c, marker="v", lw=3, label=label) for c, label in marks]
    figure_legend(fig, handles)
    return fig
