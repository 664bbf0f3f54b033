"""Tests of utils.figures.timeline: the min/max envelope against a brute force, and the timeline figure."""
from __future__ import annotations


import numpy as np
import pytest
from matplotlib.collections import LineCollection, PathCollection
from matplotlib.colors import to_hex, to_rgb
from matplotlib.figure import Figure

from utils.figures import envelope, kind_colors, plot_timeline, save_figure
from utils.figures.timeline import FALSE_ALARM_COLOR, HIT_COLOR, INCIDENT_COLOR, MAX_SENSOR_PANELS
from agents.detector.streaming import Incident, find_incidents, match_incidents
from utils.metrics.ranges import label_ranges

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
NAMES = ["voltage", "current", "temperature"]


def _brute_envelope(x: np.ndarray, n_bins: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per bin of ceil(n / n_bins) rows, with a Python loop: middle row, nanmin, nanmax."""
    size = max(1, -(-len(x) // n_bins))
    centres, lo, hi = [], [], []
    for start in range(0, len(x), size):
        part = x[start:start + size]
        centres.append((start + start + len(part) - 1) / 2)
        finite = part[~np.isnan(part)]
        lo.append(finite.min() if len(finite) else np.nan)
        hi.append(finite.max() if len(finite) else np.nan)
    return np.array(centres), np.array(lo), np.array(hi)


@pytest.mark.parametrize(("n", "n_bins"), [(1, 5), (10, 3), (1000, 7), (1001, 10), (999, 1000), (5000, 2000)])
def test_envelope_agrees_with_a_brute_force_per_bin(n, n_bins):
    x = np.random.default_rng(n).normal(size=n)
    x[::13] = np.nan
    if n >= 20:
        x[:20] = np.nan  # a whole bin of NaN for the small bin sizes
    got, want = envelope(x, n_bins), _brute_envelope(x, n_bins)
    assert len(got[0]) <= n_bins
    for g, w in zip(got, want):
        np.testing.assert_array_equal(g, w)


def test_envelope_keeps_the_global_extremes_and_a_one_row_spike_in_a_million():
    rng = np.random.default_rng(0)
    x = rng.normal(size=10**6)
    x[654_321] = 50.0
    x[123] = -40.0
    centres, lo, hi = envelope(x, 2000)
    assert len(centres) == 2000
    assert hi.max() == 50.0 and lo.min() == -40.0
    assert np.nanmax(x) == hi.max() and np.nanmin(x) == lo.min()
    spike_bin = int(np.argmax(hi))
    assert abs(centres[spike_bin] - 654_321) <= 250  # bins of 500 rows
    decimated = x[::500]  # what a plain decimation would draw: the spike is gone
    assert decimated.max() < 10


def test_envelope_rejects_bad_input():
    with pytest.raises(ValueError, match="n_bins"):
        envelope(np.zeros(5), 0)
    with pytest.raises(ValueError, match=r"shape \(n,\)"):
        envelope(np.zeros((5, 2)), 3)


def _recording(n: int = 3000, seed: int = 0):
    """Three sensors, two labelled ranges of two kinds, a score with one hit and one false alarm."""
    rng = np.random.default_rng(seed)
    values = rng.normal(0, 1, (n, 3))
    labels = np.zeros(n, dtype=int)
    labels[500:560] = 1
    labels[2000:2300] = 1
    kinds = np.full(n, "normal", dtype=object)
    kinds[500:560] = "voltage_spike"
    kinds[2000:2300] = "temperature_drift"
    values[520:530, 0] += 8
    scores = np.abs(rng.normal(0, 1, n))
    scores[:40] = np.nan  # rows no window covers yet
    scores[515:535] += 20  # hit
    scores[1200:1210] += 10  # false alarm
    contributions = np.abs(rng.normal(0, 0.1, (n, 3)))
    contributions[515:535, 0] += 5
    contributions[1200:1210, 1] += 5
    return values, scores, labels, kinds, contributions


def _main_axes(fig: Figure, f: int):
    return fig.axes[:f + 1]


def _spans(ax) -> list[tuple[float, float, str]]:
    """(x from, x to, gid) of each shaded box; each spans the full height of the axes."""
    found = []
    for c in ax.collections:
        if str(c.get_gid()).startswith("label:"):
            assert c.get_transform() == ax.get_xaxis_transform()
            for path in c.get_paths():
                x, y = path.vertices[:, 0], path.vertices[:, 1]
                assert y.min() == 0 and y.max() == 1
                found.append((x.min(), x.max(), c.get_gid()))
    return sorted(found)


def test_timeline_panels_threshold_spans_and_incident_marks(tmp_path):
    values, scores, labels, kinds, contributions = _recording()
    first_row = 10_000
    incidents = find_incidents(scores, 6.0, 20, contributions, NAMES, first_row=first_row)
    ranges = label_ranges(labels)
    hits = match_incidents(incidents, ranges + first_row)["hit"]
    assert len(incidents) == 2 and hits.tolist() == [True, False]
    fig = plot_timeline(values, NAMES, scores, 6.0, labels=labels, kinds=kinds, incidents=incidents, hits=hits,
                        first_row=first_row, max_points=500, n_details=3)
    # 3 sensors + score, then 3 details (2 incidents + the missed drift) of 2 panels each
    assert len(fig.axes) == 3 + 1 + 3 * 2
    main = _main_axes(fig, 3)
    assert [ax.get_ylabel() for ax in main] == [*NAMES, "score"]
    score_ax = main[3]
    threshold = [line for line in score_ax.get_lines() if line.get_gid() == "threshold"]
    assert len(threshold) == 1 and np.all(np.asarray(threshold[0].get_ydata()) == 6.0)
    # shaded spans at the labelled ranges (absolute rows, end exclusive), in their kind's colour, on every panel
    colors = kind_colors(["voltage_spike", "temperature_drift"])
    want = [(first_row + s, first_row + e, f"label:{kinds[s]}") for s, e in ranges]
    for ax in main:
        assert _spans(ax) == sorted(want)
    shaded = [c for c in score_ax.collections if str(c.get_gid()).startswith("label:")]
    assert len(shaded) == 2
    for c in shaded:
        assert to_hex(c.get_facecolor()[0][:3]) == colors[c.get_gid().removeprefix("label:")]
    # incident markers at the peaks, green for the hit, red for the false alarm
    peaks = [c for c in score_ax.collections if isinstance(c, PathCollection) and c.get_gid() == "incident_peaks"]
    assert len(peaks) == 1
    np.testing.assert_allclose(peaks[0].get_offsets(), [[i.peak_row, i.peak_score] for i in incidents])
    np.testing.assert_allclose(peaks[0].get_facecolors()[:, :3], [to_rgb(HIT_COLOR), to_rgb(FALSE_ALARM_COLOR)])
    bars = [c for c in score_ax.collections if isinstance(c, LineCollection) and c.get_gid() == "incident_bars"]
    starts = sorted(seg[0][0] for seg in bars[0].get_segments())
    assert starts == [i.start_row for i in incidents]
    # one line per sensor holds the envelope: the global extremes survive the downsampling
    for ax, column in zip(main[:3], values.T):
        (line,) = ax.get_lines()
        assert len(line.get_ydata()) <= 2 * 500
        assert np.nanmax(line.get_ydata()) == column.max() and np.nanmin(line.get_ydata()) == column.min()
    # details: the higher peak first, its top sensor; then the false alarm; then the missed drift
    titles = [ax.get_title().replace("\n", " ") for ax in fig.axes[4::2]]  # wrapped to the panel's width
    assert titles[0].startswith("Incident 1 (hit)") and titles[1].startswith("Incident 2 (false alarm)")
    assert titles[2].startswith("Missed temperature_drift: rows 12000-12299")
    assert fig.axes[4].get_ylabel() == incidents[0].top_feature == "voltage"
    detail_signal = fig.axes[4].get_lines()[0].get_xydata()
    assert len(detail_signal) == 20 + 2 * 25  # full resolution: the incident and 25 rows of context each side
    np.testing.assert_array_equal(detail_signal[:, 1], values[515 - 25:535 + 25, 0])
    path = tmp_path / "timeline.png"
    save_figure(fig, path)
    assert path.read_bytes().startswith(PNG_MAGIC) and path.stat().st_size > 20_000


def test_timeline_renders_in_tensorboard(tmp_path):
    from torch.utils.tensorboard import SummaryWriter

    values, scores, labels, kinds, contributions = _recording(n=800)
    incidents = find_incidents(scores, 6.0, 20, contributions, NAMES)
    fig = plot_timeline(values, NAMES, scores, 6.0, labels=labels, kinds=kinds, incidents=incidents,
                        times=np.arange(800) * 0.5)
    writer = SummaryWriter(log_dir=str(tmp_path))
    writer.add_figure("timeline/test", fig, global_step=3)
    writer.close()
    events = list(tmp_path.glob("events.out.tfevents.*"))
    assert len(events) == 1 and events[0].stat().st_size > 20_000  # the PNG is in the event file


def test_timeline_x_axis_in_time_units_and_hits_from_the_labels():
    values, scores, labels, _, contributions = _recording()
    times = np.arange(len(values)) * 10.0  # 30000 s: hours
    incidents = find_incidents(scores, 6.0, 20, contributions, NAMES)
    fig = plot_timeline(values, NAMES, scores, 6.0, labels=labels, incidents=incidents, times=times)
    score_ax = fig.axes[3]
    assert score_ax.get_xlabel() == "Time (h)"
    assert _spans(score_ax) == [(5000 / 3600, 5600 / 3600, "label:anomaly"), (20000 / 3600, 23000 / 3600,
                                                                             "label:anomaly")]
    peaks = next(c for c in score_ax.collections if c.get_gid() == "incident_peaks")
    np.testing.assert_allclose(peaks.get_offsets()[:, 0], [times[i.peak_row] / 3600 for i in incidents])
    np.testing.assert_allclose(peaks.get_facecolors()[:, :3], [to_rgb(HIT_COLOR), to_rgb(FALSE_ALARM_COLOR)])
    # the hit's detail, rows 515-534 with 25 rows each side, counts from its start (row 515 = 5150 s)
    assert fig.axes[5].get_xlabel() == "Time from 1:25:50.0 (min)"
    np.testing.assert_allclose(fig.axes[5].get_xlim(), [(4900 - 5150) / 60, (5600 - 5150) / 60])


def test_timeline_log_axis_only_when_scores_span_many_decades():
    values, scores, *_ = _recording()
    assert plot_timeline(values, NAMES, scores, 6.0).axes[3].get_yscale() == "linear"
    wide = np.nan_to_num(scores, nan=1.0)
    wide[100] = 1e6
    assert plot_timeline(values, NAMES, wide, 6.0, n_details=0).axes[3].get_yscale() == "log"


def _texts(fig: Figure) -> str:
    return " | ".join(t.get_text() for ax in fig.axes for t in ax.texts)


@pytest.mark.parametrize("case", ["no labels or incidents", "single row", "all NaN scores", "no rows",
                                  "one sensor 1-D", "no details", "incident without top sensor"])
def test_timeline_edge_cases_draw_what_there_is(case, tmp_path):
    values, scores, labels, kinds, _ = _recording(n=600)
    kwargs: dict = {}
    if case == "single row":
        values, scores = values[:1], scores[50:51]
        kwargs = {"labels": labels[:1], "times": np.zeros(1)}
    elif case == "all NaN scores":
        scores = np.full(len(scores), np.nan)
        kwargs = {"labels": labels, "kinds": kinds}
    elif case == "no rows":
        values, scores = values[:0], scores[:0]
    elif case == "one sensor 1-D":
        values = values[:, 0]
    elif case == "no details":
        kwargs = {"n_details": 0, "labels": labels}
    elif case == "incident without top sensor":
        kwargs = {"incidents": [Incident(250, 259, 9.0, 255, 8.0)], "first_row": 200, "labels": labels}
        values[50:60, 2] += 30  # the sensor straying farthest there
    names = NAMES[:1] if values.ndim == 1 else NAMES
    fig = plot_timeline(values, names, scores, 6.0, **kwargs)
    save_figure(fig, tmp_path / "edge.png")
    assert (tmp_path / "edge.png").read_bytes().startswith(PNG_MAGIC)
    if case in ("no labels or incidents", "no rows"):
        assert "no detail panels" in _texts(fig)
    if case == "all NaN scores":
        assert "no scores" in _texts(fig)
        assert fig.axes[len(NAMES) + 1].get_title().startswith("Missed voltage_spike")  # details of missed ranges
    if case == "no rows":
        assert "no rows" in _texts(fig)
    if case == "no details":
        assert len(fig.axes) == len(NAMES) + 1
    if case == "incident without top sensor":
        assert fig.axes[4].get_ylabel() == "temperature"


def test_timeline_figure_size_does_not_grow_with_the_rows():
    small = plot_timeline(np.zeros((10, 3)), NAMES, np.zeros(10), 1.0)
    large = plot_timeline(np.zeros((200_000, 3)), NAMES, np.zeros(200_000), 1.0)
    assert tuple(small.get_size_inches()) == tuple(large.get_size_inches())
    assert all(len(line.get_xdata()) <= 2 * 2000 for ax in large.axes for line in ax.get_lines())


def test_timeline_of_hundreds_of_sensors_shows_a_bounded_chosen_few(tmp_path):
    # 400 sensors made a 1430 x 66,638 px PNG of 13 MB in 15 minutes; now MAX_SENSOR_PANELS of them, named
    n, f = 300, 400
    names = [f"s{i:03d}" for i in range(f)]
    values = np.random.default_rng(0).normal(0, 1, (n, f))
    values[100:110, 250] += 30  # strays farthest
    scores = np.zeros(n)
    scores[[50, 200]] = [5.0, 9.0]
    incidents = [Incident(50, 50, 5.0, 50, 5.0, top_feature="s123"), Incident(200, 200, 9.0, 200, 9.0, "s007")]
    fig = plot_timeline(values, names, scores, 1.0, incidents=incidents, n_details=0)
    assert len(fig.axes) == MAX_SENSOR_PANELS + 1
    shown = [ax.get_ylabel() for ax in fig.axes[:MAX_SENSOR_PANELS]]
    assert shown == sorted(shown) and {"s007", "s123", "s250"} <= set(shown)  # incidents' top sensors, the stray
    title = fig.get_suptitle().replace("\n", " ")
    assert f"{MAX_SENSOR_PANELS} of 400 sensors shown ({400 - MAX_SENSOR_PANELS} left out)" in title
    twelve = plot_timeline(values[:, :MAX_SENSOR_PANELS], names[:MAX_SENSOR_PANELS], scores, 1.0, n_details=0)
    assert tuple(fig.get_size_inches()) == tuple(twelve.get_size_inches())
    assert len(twelve.axes) == MAX_SENSOR_PANELS + 1 and "sensors shown" not in twelve.get_suptitle()
    assert [ax.get_ylabel() for ax in twelve.axes[:-1]] == names[:MAX_SENSOR_PANELS]
    height, width, _ = save_figure(fig, tmp_path / "timeline.png").shape
    assert height < 4000 and width < 2000


@pytest.mark.parametrize(("change", "argument"), [
    ({"values": np.zeros((10, 3, 2))}, "values"),
    ({"feature_names": ["a", "b"]}, "feature_names"),
    ({"scores": np.zeros(9)}, "scores"),
    ({"labels": np.zeros(11)}, "labels"),
    ({"kinds": np.array(["normal"] * 9)}, "kinds"),
    ({"times": np.arange(9.0)}, "times"),
    ({"times": np.arange(10.0)[::-1]}, "times"),
    ({"threshold": float("nan")}, "threshold"),
    ({"incidents": [Incident(5, 12, 2.0, 6, 1.5)]}, r"incidents\[0\]"),
    ({"incidents": [Incident(5, 6, 2.0, 6, 1.5, top_feature="pressure")]}, r"incidents\[0\].top_feature"),
    ({"incidents": [Incident(5, 6, 2.0, 6, 1.5)], "hits": np.array([True, False])}, "hits"),
    ({"max_points": 1}, "max_points"),
])
def test_timeline_bad_input_names_the_argument(change, argument):
    args = {"values": np.zeros((10, 3)), "feature_names": NAMES, "scores": np.zeros(10), "threshold": 1.0}
    args.update(change)
    with pytest.raises(ValueError, match=argument):
        plot_timeline(**args)


def test_incidents_without_labels_are_marked_neutral():
    values, scores, _, _, contributions = _recording()
    incidents = find_incidents(scores, 6.0, 20, contributions, NAMES)
    fig = plot_timeline(values, NAMES, scores, 6.0, incidents=incidents)
    peaks = next(c for c in fig.axes[3].collections if c.get_gid() == "incident_peaks")
    np.testing.assert_allclose(peaks.get_facecolors()[:, :3], [to_rgb(INCIDENT_COLOR)] * 2)
    assert fig.axes[4].get_title().startswith("Incident 1:")
