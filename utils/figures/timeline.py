"""The timeline of a long recording: each sensor, the score and its threshold, labels and incidents.

Each line is the min/max envelope of at most ``max_points`` bins (:func:`envelope`): a one-row spike in 10^6 rows
stays visible, and the figure's size depends on the number of sensors only.
"""
from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from matplotlib.axes import Axes
from matplotlib.collections import PolyCollection
from matplotlib.figure import Figure
from matplotlib.lines import Line2D
from matplotlib.patches import Patch

from utils.figures.style import REFERENCE_COLOR, SERIES_COLORS, figure_legend, kind_colors, wrap_title
from utils.figures.timeline_data import Span, TimeAxis, check_inputs, envelope, pick_sensor
from utils.metrics.ranges import incident_ranges, kind_runs, overlapping

#: An incident of :mod:`agents.detector.streaming` (its ``start_row``, ``end_row``, ``peak_row``, ``peak_score``,
#: ``top_feature``), read, never built, here.
Incident = Any

__all__ = ["envelope", "plot_timeline"]

SCORE_COLOR = "#222222"
HIT_COLOR, FALSE_ALARM_COLOR, INCIDENT_COLOR = "#2ca02c", "#d62728", "#ff7f0e"
WIDTH_IN = 13.0
LOG_DECADES = 3  # a log score axis when the scores are positive and peak more decades than this above their median
MIN_CONTEXT = 25  # rows shown at least on each side of a detail


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


def _shade(ax: Axes, xaxis: TimeAxis, spans: list[Span], colors: dict[str, str]) -> None:
    """The spans as full-height boxes, one collection per kind (thousands of axvspan patches take seconds)."""
    edges = xaxis.at([sp[:2] for sp in spans]).reshape(-1, 2)
    kinds = np.array([sp[2] for sp in spans])
    for kind in dict.fromkeys(kinds.tolist()):
        x0, x1 = edges[kinds == kind].T  # corners (x0, 0), (x0, 1), (x1, 1), (x1, 0) of each box
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
        """Rows ``lo..hi - 1``: sensor ``features[i]`` in ``sensors[i]``, the score, the threshold and each incident
        (a bar at its peak with a marker) in ``score_ax``, labelled ranges shaded in all."""
        for ax, f in zip(sensors, features):
            column = self.values[lo:hi, f]
            _series(ax, xaxis, column, lo, self.max_points, color=SERIES_COLORS[f % len(SERIES_COLORS)],
                    lw=1.0 if detail else 0.8)
            if not detail and not np.isfinite(column).any():
                _empty(ax, "no values (every row is NaN)" if hi else "no rows")
            ax.set_ylabel(self.names[f])
            ax.tick_params(labelbottom=False)
            ax.grid(alpha=0.3)
        spans = [(max(a, lo), min(b, hi), k) for a, b, k in self.spans if a < hi and b > lo]
        for ax in (*sensors, score_ax):
            _shade(ax, xaxis, spans, self.colors)
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
        """``(lo, hi, sensor, x axis, title)`` of each detail panel: the highest incidents, then the labelled ranges no
        incident overlaps, longest first, each with its length of context (at least :data:`MIN_CONTEXT` rows) each
        side in rows ``lo..hi - 1``; the sensor is the incident's top one, else the one straying farthest."""
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
            f = self.names.index(top_feature) if top_feature else pick_sensor(self.values[lo:hi], s - lo, e - lo)
            items.append((lo, hi, f, TimeAxis(first, self.xaxis.times, lo, hi, origin=s), title))
        return items


def plot_timeline(values: np.ndarray, feature_names: Sequence[str], scores: np.ndarray, threshold: float, *,
                  labels: np.ndarray | None = None, kinds: np.ndarray | None = None,
                  incidents: Sequence[Incident] = (), hits: np.ndarray | None = None,
                  times: np.ndarray | None = None, first_row: int = 0, score_name: str = "score",
                  title: str | None = None, max_points: int = 2000, n_details: int = 3) -> Figure:
    """The whole recording: one panel per sensor and the score panel, then detail panels of a few incidents.

    Labelled ranges are shaded by kind; each incident is a bar over its rows at its peak (green = hit, red = false
    alarm, orange = no labels to tell). The zooms (top sensor above, score below, the incident's length of context
    each side) show the highest incidents, then the longest missed labelled ranges.

    Args:
        values: (n, F) raw sensor rows (or (n,) for one sensor); NaN = missing.
        feature_names: the F sensor names.
        scores: (n,) per-time-step scores; NaN = not scored.
        threshold: the score's alarm threshold (finite).
        labels: (n,) 1 = labelled anomaly; None: labelled where ``kinds`` is not ``normal``.
        kinds: (n,) anomaly kind of each row (shading colour, legend); None: ``anomaly``.
        incidents: with absolute rows (``start_row - first_row`` indexes the arrays); without a ``top_feature``
            the zoom shows the sensor straying farthest from its median.
        hits: (len(incidents),) bool, incident overlaps a labelled range; None: computed from the labels.
        times: (n,) seconds since the start, non-decreasing: x in s, min or h (as fits); None: absolute rows.
        first_row: absolute row of ``values[0]``.
        score_name: y label of the score panels.
        title: figure title; None: the rows and bin size.
        max_points: at most this many bins per line (>= 2).
        n_details: at most this many detail panels (>= 0).

    Returns:
        The figure, 13 x (1.5 F + 2.2 (+ 3.6 with details)) inches whatever n.
    """
    values, names, scores, labels, kinds, incidents, hits, times = check_inputs(
        values, feature_names, scores, threshold, labels, kinds, incidents, hits, times, first_row, max_points,
        n_details)
    first_row, max_points, n_details = int(first_row), int(max_points), int(n_details)
    n, f = values.shape
    if labels is None and kinds is not None:  # labelled where the kind is not normal
        labels = kinds != "normal"
    spans = [] if labels is None else kind_runs(np.asarray(labels, dtype=np.float64), kinds)
    if hits is None and labels is not None:
        hits = overlapping(incident_ranges(incidents) - first_row, np.array([sp[:2] for sp in spans]))
    rec = _Recording(values, names, scores, float(threshold), incidents, hits, spans, TimeAxis(first_row, times, 0, n),
                     max_points, score_name)
    items = rec.details(n_details)
    detail_rows = 2 if n_details else 0
    fig = Figure(figsize=(WIDTH_IN, 1.5 * f + 2.2 + 1.8 * detail_rows), layout="constrained")
    grid = fig.add_gridspec(f + 1 + detail_rows, max(len(items), 1),
                            height_ratios=[1.0] * f + [1.3] + [1.0] * detail_rows)
    main = [fig.add_subplot(grid[0, :])]
    main += [fig.add_subplot(grid[i, :], sharex=main[0]) for i in range(1, f + 1)]
    rec.panels(main[:f], main[f], list(range(f)), 0, n, rec.xaxis, detail=False)
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
    fig.suptitle(wrap_title(title or default, WIDTH_IN))
    handles = [Line2D([], [], color=SCORE_COLOR, label=score_name),
               Line2D([], [], color="black", ls="--", label=f"threshold = {rec.threshold:.4g}")]
    handles += [Patch(facecolor=(c, 0.3), edgecolor=c, label=k) for k, c in rec.colors.items()]
    if incidents:
        marks = [(INCIDENT_COLOR, "incident")] if hits is None else [(HIT_COLOR, "incident: hit"),
                                                                    (FALSE_ALARM_COLOR, "incident: false alarm")]
        handles += [Line2D([], [], color=c, marker="v", lw=3, label=label) for c, label in marks]
    figure_legend(fig, handles)
    return fig
