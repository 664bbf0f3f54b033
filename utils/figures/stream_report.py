"""The run report's stream section, from ``metrics.json``'s ``stream`` and ``out/incidents.csv`` (no Matplotlib)."""
from __future__ import annotations

import csv
from pathlib import Path
from typing import Any

from utils.metrics.stream_metrics import metric_at

#: (header, path into one score's stream metrics, decimals) of the stream tables (report and console).
STREAM_COLUMNS = (("VUS-PR", ("vus_pr",), 3), ("VUS-ROC", ("vus_roc",), 3), ("PR AUC", ("pr_auc",), 3),
                  ("ROC AUC", ("roc_auc",), 3), ("range P", ("range", "precision"), 3),
                  ("range R", ("range", "recall"), 3), ("range F1", ("range", "f1"), 3),
                  ("event recall", ("event_recall",), 3), ("false alarms / h", ("false_alarms_per_hour",), 1),
                  ("PA-F1 (optimistic)", ("point_adjusted_f1_OPTIMISTIC",), 3))
MAX_LISTED = 40


def stream_cell(result: dict[str, Any], path: tuple[str, ...], digits: int, missing: str = "–") -> str:
    """The metric at ``path`` of one score's stream metrics with ``digits`` decimals, ``missing`` when undefined."""
    value = metric_at(result, path)
    return missing if value is None else f"{value:.{digits}f}"


def promise_cell(report: dict[str, Any]) -> str:
    """``kept``, ``**broken**`` or ``–`` (no normals, or a run written before the verdicts)."""
    return {True: "kept", False: "**broken**"}.get(report.get("promise_kept"), "–")


def verdict_lines(section: dict[str, Any]) -> list[str]:
    """The section's verdict of the model against the baselines in bold (none without one)."""
    return [f"**{section['versus_baselines']['text']}.**", ""] if section.get("versus_baselines") else []


def score_table(headers: list[str], rows: dict[str, list[str]]) -> str:
    """A Markdown table: the score's name, then one right-aligned column per header; ``rows``: ``{name: cells}``."""
    lines = ["| score | " + " | ".join(headers) + " |", "|---|" + "---:|" * len(headers)]
    return "\n".join(lines + [f"| `{name}` | " + " | ".join(cells) + " |" for name, cells in rows.items()])


def markdown_stream_table(results: dict[str, dict[str, Any]]) -> str:
    """One row per score (or baseline) with the stream metrics of :data:`STREAM_COLUMNS`."""
    return score_table([h for h, _, _ in STREAM_COLUMNS],
                       {name: [stream_cell(r, path, digits) for _, path, digits in STREAM_COLUMNS]
                        for name, r in results.items()})


def markdown_incidents(path: Path) -> list[str]:
    """The test incidents of ``out/incidents.csv`` as a table (hits, false alarms, then missed ranges)."""
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as handle:
        rows = list(csv.DictReader(handle))
    if not rows:
        return ["No incident and no labelled range in the test stream.", ""]
    several = "recording" in rows[0]
    lines = ["| " + ("recording | " if several else "") + "# | outcome | rows | from | to | duration (s) | peak score | "
             "top sensor | labelled kind |", "|" + ("---|" if several else "") + "---:|---|---|---|---|---:|---:|---|---|"]
    for row in rows[:MAX_LISTED]:
        cells = [row["outcome"].replace("_", " "), f"{row['start_row']}–{row['end_row']}"]
        cells += [row[k] or "–" for k in ("start_time", "end_time", "duration_s", "peak_score", "top_feature",
                                          "labelled_kind")]
        lines.append("| " + (f"`{row['recording']}` | " if several else "") + f"{row['incident'] or '–'} | "
                     + " | ".join(cells) + " |")
    if len(rows) > MAX_LISTED:
        lines.append(f"| … | {len(rows) - MAX_LISTED} more rows in `out/incidents.csv` | | | | | | | |"
                     + (" |" if several else ""))
    return [*lines, ""]


#: (header, key into a pooled score's ``mean``, decimals) of the pooled table's per-recording means.
MEAN_COLUMNS = (("VUS-PR", "vus_pr", 3), ("VUS-ROC", "vus_roc", 3), ("range F1", "range_f1", 3),
                ("event recall", "event_recall", 3), ("false alarms / h", "false_alarms_per_hour", 1))


POOLED_HEADERS = ("F1", "FAR %", "MAR %", *(h for h, _, _ in MEAN_COLUMNS))


def pooled_cells(result: dict[str, Any], missing: str = "–") -> list[str]:
    """One pooled score's cells under :data:`POOLED_HEADERS`: F1, FAR %, MAR %, then ``mean ± std (n)`` of each of
    :data:`MEAN_COLUMNS`."""
    c, means = result.get("confusion", {}), result.get("mean", {})
    cells = [stream_cell(c, (key,), digits, missing) for key, digits in (("f1", 3), ("far_pct", 2), ("mar_pct", 2))]
    for _, key, digits in MEAN_COLUMNS:
        mean = means.get(key, {})
        cells.append(missing if mean.get("mean") is None else
                     f"{mean['mean']:.{digits}f} ± {mean['std']:.{digits}f} ({mean['n']})")
    return cells


def pooled_rows(pooled: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """The pooled scores and baselines (``baseline: <name>``) in table order."""
    return {**pooled.get("scores", {}), **{f"baseline: {n}": r for n, r in (pooled.get("baselines") or {}).items()}}


def markdown_pooled_table(pooled: dict[str, Any]) -> str:
    """Per score and baseline: :func:`pooled_cells`."""
    return score_table(list(POOLED_HEADERS), {name: pooled_cells(r) for name, r in pooled_rows(pooled).items()})


def markdown_recordings_table(recordings: dict[str, dict[str, Any]]) -> str:
    """One row per recording: its rows, the primary score's VUS-PR and range F1, its incidents and detections."""
    lines = ["| recording | time steps | VUS-PR | range F1 | alarms (false) | labelled ranges detected | promise per "
             "time step |", "|---|---:|---:|---:|---:|---:|---|"]
    for name, m in recordings.items():
        inc = m.get("incidents", {})
        primary = m.get("scores", {}).get(inc.get("score"), {})
        kept = promise_cell(primary.get("false_alarm") or {})
        lines.append(f"| `{name}` | {m.get('rows')} | {stream_cell(primary, ('vus_pr',), 3)} | "
                     f"{stream_cell(primary, ('range', 'f1'), 3)} | {inc.get('n')} ({inc.get('false_alarms')}) | "
                     f"{inc.get('detected')} of {inc.get('labelled_ranges')} | {kept} |")
    return "\n".join(lines)


def _minutes(hours: Any, template: str) -> str:
    """``template`` holding the hours as minutes (one decimal), empty when the hours are unknown."""
    return template.format(f"{hours * 60:.1f}") if isinstance(hours, (int, float)) else ""


def recordings_section(stream: dict[str, Any], out_dir: Path) -> list[str]:
    """The report's lines for several test recordings: the pooled table, then one row per recording."""
    pooled, recordings = stream.get("pooled", {}), stream.get("recordings", {})
    inc, span = pooled.get("incidents", {}), _minutes(pooled.get("hours"), ", {} minutes")
    lines = ["## Results on the test recordings (per time step)", "",
             f"{pooled.get('recordings')} recordings, {pooled.get('rows')} test time steps in all{span}. Each time "
             f"step takes the {pooled.get('point_aggregation')} of the scores of the windows that cover it (windows "
             "never cross two recordings) and is alarmed when that is above the window threshold. F1, FAR and MAR "
             "come from the confusion matrix summed over every recording's time steps at the deployed threshold "
             "(SKAB's protocol: F1 = TP / (TP + (FP + FN) / 2), FAR = FP / (FP + TN), MAR = FN / (FN + TP)); the "
             "other columns are the mean ± standard deviation over the recordings where the metric is defined "
             "(their number in brackets).", "", markdown_pooled_table(pooled), ""]
    lines += [*verdict_lines(pooled), f"Per recording (`{inc.get('score')}` score; incidents of alarms at most "
              f"{pooled.get('incident_merge_gap')} rows apart): {inc.get('n')} incidents in all, "
              f"{inc.get('detected')} of {inc.get('labelled_ranges')} labelled ranges detected.", "",
              markdown_recordings_table(recordings), ""]
    lines += ["### Test incidents", "", *markdown_incidents(out_dir / "incidents.csv")]
    return lines


def stream_section(metrics: dict[str, Any], out_dir: Path) -> list[str]:
    """The report's lines for a stream dataset (empty for a window dataset)."""
    stream = metrics.get("stream")
    if not isinstance(stream, dict):
        return []
    if "pooled" in stream:
        return recordings_section(stream, out_dir)
    inc, span = stream.get("incidents", {}), _minutes(stream.get("hours"), "{} minutes, ")
    lines = ["## Results on the test stream (per time step)", "",
             f"The test stretch: {stream.get('rows')} time steps ({span}from row {stream.get('first_row')}). Each "
             f"time step takes the {stream.get('point_aggregation')} of the scores of the windows that cover it, "
             "and is alarmed when that is above the window threshold. VUS-PR and VUS-ROC (Paparrizos et al. 2022, "
             f"as TSB-AD computes them) buffer each labelled range by up to {stream.get('vus_buffer')} rows; range "
             "precision/recall follow Tatbul et al. 2018 (flat bias); an event is a labelled range, detected when one "
             f"of its time steps is alarmed; alarms at most {stream.get('incident_merge_gap')} rows apart are one "
             "incident. Point-adjusted F1 counts a whole range as found once one of its points is: it flatters "
             "(Kim et al. 2022) and is shown only beside papers that report it.", "",
             markdown_stream_table(stream.get("scores", {})), ""]
    if stream.get("baselines"):
        lines += ["Baselines, the same way:", "", markdown_stream_table(stream["baselines"]), ""]
    lines += verdict_lines(stream)
    if inc:
        lines += ["### Test incidents", "",
                  f"Incidents of `{inc.get('score')}` (threshold {inc.get('threshold', 0):.4g}): {inc.get('n')}, of "
                  f"which {inc.get('hits')} on labelled ranges and {inc.get('false_alarms')} false alarms; "
                  f"{inc.get('detected')} of {inc.get('labelled_ranges')} labelled ranges detected, "
                  f"{inc.get('missed')} missed.", ""]
        lines += markdown_incidents(out_dir / "incidents.csv")
    return lines
