"""End-of-run evaluation of a stream dataset (one long recording): per-time-step scores, stream metrics, incidents.

A stream dataset keeps its contiguous test stretch (:class:`datasets.base.StreamPart`) beside the
test windows cut from it. Each score of the model and of every baseline is mapped from windows to
time steps (:func:`utils.scoring.stream.point_values`, ``evaluation.point_aggregation``) and
evaluated point-wise and range-wise (:func:`utils.scoring.stream_metrics.stream_metrics`) at the
threshold the window score was calibrated with. The model's primary score (the first of
``evaluation.scores``) gives the incidents, matched against the labelled ranges.
"""
from __future__ import annotations

import csv
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from datasets.base import StreamPart
from utils.core.config import MAX_VUS_BUFFER
from utils.figures.stream_report import STREAM_COLUMNS, stream_cell
from utils.runs.outputs import atomic_output
from utils.scoring.incidents import INCIDENT_COLUMNS, Incident, find_incidents, match_incidents
from utils.scoring.metrics import compare_with_baselines, to_jsonable
from utils.scoring.stream import clock_text, label_ranges, point_values
from utils.scoring.stream_metrics import stream_metrics

STREAM_VERDICT_KEYS = (("vus_pr", "VUS-PR"), ("vus_roc", "VUS-ROC"))


@dataclass
class StreamEvaluation:
    """What :func:`evaluate_stream` found.

    Attributes:
        part: the test stretch.
        points: ``{score or baseline name: (n,) per-time-step scores}``.
        thresholds: ``{name: threshold}`` (a time step is alarmed where its score is above it).
        incidents: of the primary score, with ``hits`` (len(incidents),) bool: overlaps a labelled range.
        labelled: ``[start, end)`` absolute rows of the labelled ranges (k, 2), ``detected`` (k,) bool.
        metrics: the ``stream`` section of ``metrics.json``.
    """

    part: StreamPart
    points: dict[str, np.ndarray]
    thresholds: dict[str, float]
    primary: str
    incidents: list[Incident]
    hits: np.ndarray
    labelled: np.ndarray
    detected: np.ndarray
    metrics: dict[str, Any]


def stream_settings(evaluation: Any, window_length: int) -> dict[str, Any]:
    """The resolved stream settings: aggregation, merge gap and VUS buffer (null keys take the window length,
    the buffer at most :data:`~utils.core.config.MAX_VUS_BUFFER` rows)."""
    gap, buffer = evaluation.get("incident_merge_gap"), evaluation.get("vus_buffer")
    return {"point_aggregation": evaluation.get("point_aggregation", "max"),
            "incident_merge_gap": window_length if gap is None else int(gap),
            "vus_buffer": min(window_length, MAX_VUS_BUFFER) if buffer is None else int(buffer)}


def evaluate_stream(part: StreamPart, window_length: int, evaluation: Any, feature_names: list[str],
                    scores: dict[str, np.ndarray], thresholds: dict[str, float], contributions: np.ndarray,
                    baseline_scores: dict[str, np.ndarray], baseline_thresholds: dict[str, float]) -> StreamEvaluation:
    """Per-time-step scores, stream metrics and incidents of the test stretch.

    Args:
        part: the test stretch; its windows (in ``part.starts`` order) were scored.
        window_length: rows per window ``T``.
        evaluation: the config's ``evaluation`` section.
        feature_names: the F sensors.
        scores, thresholds: the model's window scores ``{name: (N,)}`` and their thresholds (primary first).
        contributions: per-sensor contributions (N, F) of the windows (for each incident's top sensor).
        baseline_scores, baseline_thresholds: the same for the baselines.

    Returns:
        The evaluation; its ``metrics`` are JSON-able.
    """
    settings = stream_settings(evaluation, window_length)
    how, gap = settings["point_aggregation"], settings["incident_merge_gap"]
    n = len(part)
    period = part.sample_period_s if part.sample_period_s is not None and part.sample_period_s > 0 else None
    points = {name: point_values(s, part.starts, window_length, n, how)
              for name, s in {**scores, **baseline_scores}.items()}
    all_thresholds = {**thresholds, **baseline_thresholds}

    def measure(names: list[str]) -> dict[str, Any]:
        return {name: stream_metrics(part.labels, points[name], all_thresholds[name],
                                     vus_buffer=settings["vus_buffer"], merge_gap=gap,
                                     sample_period_s=period) for name in names}

    model, baselines = measure(list(scores)), measure(list(baseline_scores))
    primary = next(iter(scores))
    point_contrib = point_values(contributions, part.starts, window_length, n, "mean")
    time_text = part.time_text if part.time_text is not None or part.times is None else clock_text(part.times)
    incidents = find_incidents(points[primary], thresholds[primary], gap, point_contrib, feature_names,
                               part.times, time_text, part.first_row)
    labelled = label_ranges(part.labels) + part.first_row
    matched = match_incidents(incidents, labelled)
    hours = None if period is None else n * period / 3600.0
    metrics = to_jsonable({
        **settings, "rows": n, "first_row": part.first_row, "sample_period_s": period,
        "hours": hours, "scores": model, "baselines": baselines,
        "versus_baselines": (compare_with_baselines(model, baselines, STREAM_VERDICT_KEYS,
                                                    "Model vs baselines on the test stream") if baselines else None),
        "incidents": {"score": primary, "threshold": thresholds[primary], "n": len(incidents),
                      "hits": int(matched["hit"].sum()), "false_alarms": int((~matched["hit"]).sum()),
                      "labelled_ranges": len(labelled), "detected": int(matched["detected"].sum()),
                      "missed": int((~matched["detected"]).sum())},
    })
    return StreamEvaluation(part, points, all_thresholds, primary, incidents, matched["hit"], labelled,
                            matched["detected"], metrics)


def range_kind(part: StreamPart, start: int, end: int) -> str:
    """The anomaly kind(s) of the labelled rows in ``[start, end)`` (absolute rows), comma-separated."""
    kinds = part.kinds[start - part.first_row: end - part.first_row]
    return ",".join(sorted(set(kinds[kinds != "normal"].tolist())))


def write_incidents_csv(path: Path, result: StreamEvaluation) -> None:
    """The test incidents (hit or false alarm, with the kind they overlap) and the missed labelled ranges."""
    part = result.part
    with atomic_output(path, newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow([*INCIDENT_COLUMNS, "outcome", "labelled_kind"])
        for number, (incident, hit) in enumerate(zip(result.incidents, result.hits), start=1):
            kind = range_kind(part, incident.start_row, incident.end_row + 1) if hit else ""
            writer.writerow([*incident.as_row(number), "hit" if hit else "false_alarm", kind])
        for (start, end), found in zip(result.labelled, result.detected):
            if not found:
                row = dict.fromkeys(INCIDENT_COLUMNS, "")
                row.update(start_row=int(start), end_row=int(end) - 1, rows=int(end - start))
                writer.writerow([*row.values(), "missed", range_kind(part, int(start), int(end))])


def write_point_scores_csv(path: Path, result: StreamEvaluation) -> None:
    """One row per test time step: row, [time], label, kind, each score and its alarm flag."""
    part, names = result.part, list(result.points)
    flags = {n: np.nan_to_num(result.points[n], nan=-np.inf) > result.thresholds[n] for n in names}
    with atomic_output(path, newline="") as handle:
        writer = csv.writer(handle)
        has_time = part.time_text is not None or part.times is not None
        writer.writerow(["row", *(["time"] if has_time else []), "label", "kind",
                         *[f"score_{n}" for n in names], *[f"alarm_{n}" for n in names]])
        times = part.time_text if part.time_text is not None else part.times
        for i in range(len(part)):
            writer.writerow([part.first_row + i, *([times[i]] if has_time else []), int(part.labels[i]),
                             part.kinds[i], *[f"{result.points[n][i]:.8g}" for n in names],
                             *[int(flags[n][i]) for n in names]])


def format_stream_table(results: dict[str, dict[str, Any]]) -> str:
    """Fixed-width console table of the report's stream metrics (:data:`STREAM_COLUMNS`, without range P and R),
    one row per score or baseline."""
    columns = [c for c in STREAM_COLUMNS if c[0] not in ("range P", "range R")]
    name_w = max([len("score (per time step)")] + [len(n) for n in results])
    widths = [max(len(header), 7) for header, _, _ in columns]
    lines = ["  ".join(["score (per time step)".ljust(name_w)] + [h.rjust(w) for (h, _, _), w in zip(columns, widths)])]
    lines.append("-" * len(lines[0]))
    for name, r in results.items():
        cells = [stream_cell(r, path, digits, "-").rjust(w) for (_, path, digits), w in zip(columns, widths)]
        lines.append("  ".join([name.ljust(name_w), *cells]))
    return "\n".join(lines)
