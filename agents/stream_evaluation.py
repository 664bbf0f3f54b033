"""End-of-run evaluation of a stream dataset: per-time-step scores, stream metrics and incidents of each recording's
test stretch (:func:`evaluate_stream`), several pooled (:func:`pool_recordings`); what they hold: docs/streams.md."""
from __future__ import annotations

import csv
import logging
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from agents.detector.streaming import INCIDENT_COLUMNS, Incident, find_incidents, match_incidents, point_values
from agents.detector.thresholds import adaptive_thresholds
from datasets.splits import Recording, StreamPart
from utils.core.config import MAX_VUS_BUFFER
from utils.core.errors import DataError
from utils.figures.report import POOLED_HEADERS, STREAM_COLUMNS, pooled_cells, stream_cell
from utils.metrics.promise import named_results, pooled_promise, time_step_promise
from utils.metrics.ranges import clock_text, coverage, label_ranges
from utils.metrics.stream_metrics import buffer_reach, mean_over_streams, pooled_confusion, stream_metrics
from utils.metrics.window_metrics import compare_with_baselines, fixed_width_table, to_jsonable
from utils.runs.outputs import atomic_output

STREAM_VERDICT_KEYS = (("vus_pr", "VUS-PR"), ("vus_roc", "VUS-ROC"))
logger = logging.getLogger("anomaly")


@dataclass
class StreamEvaluation:
    """What :func:`evaluate_stream` found: ``points`` ``{score or baseline name: (n,) per-time-step scores}``, their
    ``thresholds`` (one number or (n,) each), the ``incidents`` of the ``primary`` score with ``hits``
    (len(incidents),) bool (overlaps a labelled range), the ``labelled`` ranges' ``[start, end)`` absolute rows (k, 2)
    with ``detected`` (k,) bool, and ``metrics``, the ``stream`` section of ``metrics.json``."""

    part: StreamPart
    points: dict[str, np.ndarray]
    thresholds: dict[str, float]
    primary: str
    incidents: list[Incident]
    hits: np.ndarray
    labelled: np.ndarray
    detected: np.ndarray
    metrics: dict[str, Any]

    def threshold_at(self, name: str, row: int) -> float:
        """The threshold of score ``name`` at file row ``row`` of this recording (adaptive ones vary per row)."""
        threshold = self.thresholds[name]
        return float(threshold[row - self.part.first_row] if isinstance(threshold, np.ndarray) else threshold)


def evaluate_stream(part: StreamPart, window_length: int, evaluation: Any, feature_names: list[str],
                    scores: dict[str, np.ndarray], thresholds: dict[str, float], contributions: np.ndarray,
                    baseline_scores: dict[str, np.ndarray], baseline_thresholds: dict[str, float],
                    bounds: dict[str, float] | None = None,
                    calibration: dict[str, np.ndarray] | None = None) -> StreamEvaluation:
    """Per-time-step scores, stream metrics and incidents of the test stretch ``part`` from the model's window scores
    ``{name: (N,)}`` (in ``part.starts`` order, primary first), their thresholds and contributions (N, F), the same
    of the baselines, each threshold's false-alarm ``bounds`` (its metrics then hold ``false_alarm`` on the time
    steps) and the ``calibration`` scores (for ``evaluation.threshold_adapt_rate``)."""
    gap, buffer = evaluation.get("incident_merge_gap"), evaluation.get("vus_buffer")
    # null keys take the window length, the VUS buffer at most MAX_VUS_BUFFER
    settings = {"point_aggregation": evaluation.get("point_aggregation", "max"),
                "incident_merge_gap": window_length if gap is None else int(gap),
                "vus_buffer": min(window_length, MAX_VUS_BUFFER) if buffer is None else int(buffer),
                "threshold_adapt_rate": float(evaluation.get("threshold_adapt_rate") or 0.0)}
    gap, n, calibration = settings["incident_merge_gap"], len(part), calibration or {}
    period = part.sample_period_s if part.sample_period_s is not None and part.sample_period_s > 0 else None
    points = {name: point_values(s, part.starts, window_length, n, settings["point_aggregation"])
              for name, s in {**scores, **baseline_scores}.items()}
    # each score's calibrated threshold, or with threshold_adapt_rate > 0 and calibration scores one per time step (n,)
    calibrated = {**thresholds, **baseline_thresholds}
    adaptive = adaptive_thresholds({name: calibration[name] for name in calibrated if name in calibration},
                                   evaluation.get("false_alarm_rate"), settings["threshold_adapt_rate"])
    all_thresholds = {name: adaptive[name].thresholds(points[name]) if name in adaptive else threshold
                      for name, threshold in calibrated.items()}

    def measure(name: str) -> dict[str, Any]:
        result = stream_metrics(part.labels, points[name], all_thresholds[name], vus_buffer=settings["vus_buffer"],
                                merge_gap=gap, sample_period_s=period)
        if bounds is not None and name in bounds:
            result["false_alarm"] = time_step_promise(part.labels, alarm_flags(points[name], all_thresholds[name]),
                                                      bounds[name])
        return result

    model, baselines = {n: measure(n) for n in scores}, {n: measure(n) for n in baseline_scores}
    primary = next(iter(scores))
    point_contrib = point_values(contributions, part.starts, window_length, n, "mean")
    time_text = part.time_text if part.time_text is not None or part.times is None else clock_text(part.times)
    incidents = find_incidents(points[primary], all_thresholds[primary], gap, point_contrib, feature_names,
                               part.times, time_text, part.first_row)
    labelled = label_ranges(part.labels) + part.first_row
    matched = match_incidents(incidents, labelled)
    windows = np.stack([part.starts, part.starts + window_length], axis=1)
    metrics = to_jsonable({
        **settings, "rows": n, "first_row": part.first_row, "sample_period_s": period,
        "max_windows_per_time_step": int(coverage(windows, n).max(initial=0)),
        "hours": None if period is None else n * period / 3600.0, "scores": model, "baselines": baselines,
        "versus_baselines": (compare_with_baselines(model, baselines, STREAM_VERDICT_KEYS,
                                                    "Model vs baselines on the test stream") if baselines else None),
        "incidents": {"score": primary, "threshold": thresholds[primary], "n": len(incidents),
                      "hits": int(matched["hit"].sum()), "false_alarms": int((~matched["hit"]).sum()),
                      "labelled_ranges": len(labelled), "detected": int(matched["detected"].sum()),
                      "missed": int((~matched["detected"]).sum())},
    })
    return StreamEvaluation(part, points, all_thresholds, primary, incidents, matched["hit"], labelled,
                            matched["detected"], metrics)


#: Per-recording metrics averaged over recordings (name: keys into one score's stream metrics).
MEAN_METRICS = {"vus_pr": ("vus_pr",), "vus_roc": ("vus_roc",), "range_f1": ("range", "f1"),
                "event_recall": ("event_recall",), "false_alarms_per_hour": ("false_alarms_per_hour",)}
INCIDENT_COUNTS = ("n", "hits", "false_alarms", "labelled_ranges", "detected", "missed")


@dataclass
class RecordingsEvaluation:
    """What :func:`evaluate_recordings` found: ``results`` by recording name, and the ``stream`` section ``metrics``."""

    results: dict[str, StreamEvaluation]
    metrics: dict[str, Any]

    @property
    def first(self) -> StreamEvaluation:
        """The first (or only) recording's evaluation."""
        return next(iter(self.results.values()))

    @property
    def pooled(self) -> dict[str, Any] | None:
        """The pooled section, None for a single recording."""
        return self.metrics.get("pooled") if len(self.results) > 1 else None


def evaluate_recordings(recordings: list[Recording], window_length: int, evaluation: Any, feature_names: list[str],
                        scores: dict[str, np.ndarray], thresholds: dict[str, float], contributions: np.ndarray,
                        baseline_scores: dict[str, np.ndarray], baseline_thresholds: dict[str, float],
                        bounds: dict[str, float] | None = None,
                        calibration: dict[str, np.ndarray] | None = None) -> RecordingsEvaluation:
    """Evaluate each recording's test stretch (:func:`evaluate_stream`, each starting its own adaptive thresholds)
    and pool them; ``scores`` (N,), ``contributions`` (N, F) and ``baseline_scores`` (N,) are of all N test windows,
    recording after recording. A DataError when two recordings share a name."""
    names = [r.name for r in recordings]
    if twice := sorted(n for n, count in Counter(names).items() if count > 1):
        raise DataError(f"recordings must have distinct names; {', '.join(twice)} appears twice")
    edges = np.cumsum([0] + [len(r.test.starts) for r in recordings])
    for values in [*scores.values(), contributions, *baseline_scores.values()]:
        if len(values) != edges[-1]:
            raise ValueError(f"{len(values)} test window values, but the recordings start {edges[-1]} windows")
    results = {r.name: evaluate_stream(r.test, window_length, evaluation, feature_names,
                                       {k: v[a:b] for k, v in scores.items()}, thresholds, contributions[a:b],
                                       {k: v[a:b] for k, v in baseline_scores.items()}, baseline_thresholds, bounds,
                                       calibration)
               for r, a, b in zip(recordings, edges[:-1], edges[1:])}
    warn_vus_buffer(results, window_length)
    if len(results) == 1:
        return RecordingsEvaluation(results, next(iter(results.values())).metrics)
    metrics = {"recordings": {name: r.metrics for name, r in results.items()}, "pooled": pool_recordings(results)}
    return RecordingsEvaluation(results, to_jsonable(metrics))


def warn_vus_buffer(results: dict[str, StreamEvaluation], window_length: int) -> None:
    """One warning when VUS's largest buffer reaches more than half of a recording's normal test rows
    (:func:`buffer_reach`): it then counts most rows a score must rank low as partly anomalous, flattering any score
    (evenly spaced ranges reach half at a buffer of half their gap, and all of it at their gap)."""
    buffer, default = next(iter(results.values())).metrics["vus_buffer"], min(window_length, MAX_VUS_BUFFER)
    wide = {name: reach for name, r in results.items()
            if (reach := buffer_reach(r.part.labels, buffer)) is not None and reach[0] > 0.5}
    if wide:
        fair = min(f for _, f in wide.values())
        found = ", ".join(f"{name} {share:.0%}" if len(results) > 1 else f"{share:.0%}"
                          for name, (share, _) in list(wide.items())[:3])
        logger.warning("evaluation: evaluation.vus_buffer=%d reaches more than half of the normal test rows (%s%s), "
                       "which VUS-ROC and VUS-PR then count as partly anomalous, so even a random score gets a high "
                       "VUS-PR; set evaluation.vus_buffer to %sat most %d", buffer, found,
                       f", {len(wide)} recordings in all" if len(wide) > 3 else "",
                       f"null (the window length, {default}) or " if default <= fair else "", fair)


def pool_score(results: dict[str, StreamEvaluation], group: str, name: str) -> dict[str, Any]:
    """One score's (``group`` "scores" or "baselines") pooled confusion, per-recording means and promise."""
    per_recording = {recording: r.metrics[group][name] for recording, r in results.items()}
    pooled = {"confusion": pooled_confusion((r.part.labels, alarm_flags(r.points[name], r.thresholds[name]))
                                            for r in results.values()),
              "mean": mean_over_streams(list(per_recording.values()), MEAN_METRICS)}
    if all("false_alarm" in m for m in per_recording.values()):
        pooled["false_alarm"] = pooled_promise({recording: m["false_alarm"] for recording, m in per_recording.items()})
    return pooled


def pool_recordings(results: dict[str, StreamEvaluation]) -> dict[str, Any]:
    """The ``pooled`` section of several recordings' stream metrics (``hours``: None unless every one has a period)."""
    listed = [r.metrics for r in results.values()]
    first, hours = listed[0], [m["hours"] for m in listed]
    pooled: dict[str, Any] = {
        **{key: first[key] for key in ("point_aggregation", "incident_merge_gap", "vus_buffer", "threshold_adapt_rate")},
        "max_windows_per_time_step": max(m["max_windows_per_time_step"] for m in listed),
        "recordings": len(listed), "rows": sum(m["rows"] for m in listed),
        "hours": None if None in hours else float(sum(hours)),
        "incidents": {"score": first["incidents"]["score"],
                      **{key: sum(m["incidents"][key] for m in listed) for key in INCIDENT_COUNTS}},
        "scores": {name: pool_score(results, "scores", name) for name in first["scores"]},
        "baselines": {name: pool_score(results, "baselines", name) for name in first["baselines"]},
    }
    means = {group: {name: {key: m["mean"][key]["mean"] for key, _ in STREAM_VERDICT_KEYS}
                     for name, m in pooled[group].items()} for group in ("scores", "baselines")}
    pooled["versus_baselines"] = (compare_with_baselines(means["scores"], means["baselines"], STREAM_VERDICT_KEYS,
                                                         "Model vs baselines, mean over the test recordings")
                                  if means["baselines"] else None)
    return pooled


def range_kind(part: StreamPart, start: int, end: int) -> str:
    """The anomaly kind(s) of the labelled rows in ``[start, end)`` (absolute rows), comma-separated."""
    kinds = part.kinds[start - part.first_row: end - part.first_row]
    return ",".join(sorted(set(kinds[kinds != "normal"].tolist())))


def alarm_flags(points: np.ndarray, threshold: float | np.ndarray) -> np.ndarray:
    """Per-time-step alarms (n,) int64: the score is above the threshold, one or (n,) (a NaN score never alarms)."""
    return (np.nan_to_num(points, nan=-np.inf) > threshold).astype(np.int64)


def incident_rows(result: StreamEvaluation) -> Iterator[list[Any]]:
    """The incidents.csv rows of one recording: its incidents (hit or false alarm), then its missed ranges."""
    part = result.part
    for number, (incident, hit) in enumerate(zip(result.incidents, result.hits), start=1):
        kind = range_kind(part, incident.start_row, incident.end_row + 1) if hit else ""
        yield [*incident.as_row(number), "hit" if hit else "false_alarm", kind]
    for (start, end), found in zip(result.labelled, result.detected):
        if not found:
            row = dict.fromkeys(INCIDENT_COLUMNS, "")
            row.update(start_row=int(start), end_row=int(end) - 1, rows=int(end - start))
            yield [*row.values(), "missed", range_kind(part, int(start), int(end))]


def point_rows(result: StreamEvaluation) -> Iterator[list[Any]]:
    """The stream_scores.csv rows of one recording, one per test time step (file rows of that recording)."""
    part, names = result.part, list(result.points)
    flags = {n: alarm_flags(result.points[n], result.thresholds[n]) for n in names}
    times = part.time_text if part.time_text is not None else part.times
    for i in range(len(part)):
        yield [part.first_row + i, *([times[i]] if times is not None else []), int(part.labels[i]), part.kinds[i],
               *[f"{result.points[n][i]:.8g}" for n in names], *[int(flags[n][i]) for n in names]]


def write_per_recording(path: Path, header: list[str], rows: dict[Any, Iterable[list[Any]]]) -> None:
    """One CSV of every recording's rows (``{name: rows}``); with several a leading ``recording`` column names each."""
    several = len(rows) > 1
    with atomic_output(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["recording", *header] if several else header)
        for name, own in rows.items():
            writer.writerows([name, *row] if several else row for row in own)


def write_incidents_csv(path: Path, results: dict[str, StreamEvaluation]) -> None:
    """The test incidents and missed labelled ranges of every recording (:func:`incident_rows`)."""
    write_per_recording(path, [*INCIDENT_COLUMNS, "outcome", "labelled_kind"],
                        {name: incident_rows(r) for name, r in results.items()})


def write_point_scores_csv(path: Path, results: dict[str, StreamEvaluation]) -> None:
    """One row per test time step of every recording (:func:`point_rows`): row, [time], label, kind, scores, alarms."""
    first = next(iter(results.values()))
    names, has_time = list(first.points), first.part.time_text is not None or first.part.times is not None
    header = ["row", *(["time"] if has_time else []), "label", "kind", *[f"score_{n}" for n in names],
              *[f"alarm_{n}" for n in names]]
    write_per_recording(path, header, {name: point_rows(r) for name, r in results.items()})


def format_stream_table(results: dict[str, dict[str, Any]]) -> str:
    """Fixed-width console table of the stream metrics (without range P and R), one row per score or baseline."""
    columns = [c for c in STREAM_COLUMNS if c[0] not in ("range P", "range R")]
    cells = {name: [stream_cell(r, path, digits, "-") for _, path, digits in columns] for name, r in results.items()}
    return fixed_width_table("score (per time step)", [h for h, _, _ in columns], cells)


def format_pooled_table(pooled: dict[str, Any]) -> str:
    """Fixed-width console table of the pooled section (:func:`utils.figures.report.pooled_cells`)."""
    table = {name: pooled_cells(r, "-") for name, r in named_results(pooled, "baseline: ").items()}
    widths = [max([len(h)] + [len(cells[i]) for cells in table.values()]) for i, h in enumerate(POOLED_HEADERS)]
    return fixed_width_table("score (pooled)", list(POOLED_HEADERS), table, widths)


def recording_line(name: str, metrics: dict[str, Any]) -> str:
    """One recording in a line: the primary score's VUS-PR, its incidents (alarms), labelled ranges detected."""
    inc = metrics["incidents"]
    vus_pr = stream_cell(metrics["scores"][inc["score"]], ("vus_pr",), 3, "-")
    return (f"{name}: VUS-PR {vus_pr}, {inc['n']} alarms ({inc['false_alarms']} false), "
            f"{inc['detected']} of {inc['labelled_ranges']} labelled ranges detected")
