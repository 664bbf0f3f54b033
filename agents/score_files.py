"""Score new data with a finished run: ``python main.py CONFIG --mode score --input F --output scores.csv``.

Inputs (CSV, ``(rows, F)`` or ``(N, T, F)`` NPY), the output columns and the incidents: docs/scoring.md. Batch and
live scoring (:mod:`agents.live_scoring`) run the same loop (:mod:`agents.score_loop`); only where the rows go
differs. Inputs are read block by block; outputs appear only once the whole input scored (atomic writes).
"""
from __future__ import annotations

import csv
import logging
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from typing import Any

import numpy as np

from agents.detector.detector import Detector
from agents.detector.scaler import overflow_text, too_large
from agents.score_loop import (
    Reference,
    StepScorer,
    WindowScorer,
    check_per_step,
    checked_magnitudes,
    covering_windows,
    finish,
    normalised_blocks,
    recording_reference,
    score_batches,
)
from agents.score_rows import (
    INCIDENT_HEADER,
    IncidentStream,
    RowTimes,
    Scoring,
    check_columns,
    checked_incidents_path,
    exact,
    missing_fill,
    separator_hint,
)
from datasets.csv_reading import (DEFAULT_CHUNK_ROWS, Block, first_bad_value, iter_csv_blocks, iter_windows,
                                  read_layout)
from utils.core.errors import DataError
from utils.core.paths import unreadable_file
from utils.runs.outputs import atomic_output, check_output

logger = logging.getLogger("anomaly")


# ----- inputs --------------------------------------------------------------------------
class _Input:
    """An input file opened for streaming: row blocks or ready windows, standardised by :attr:`reference` if set."""

    def __init__(self, path: Path, detector: Detector, stride: int | None, chunk_rows: int) -> None:
        self.path, self.window_length, self.chunk_rows = path, detector.window_length, chunk_rows
        self.detector = detector
        self.features = list(detector.feature_names)
        self.n_features = len(self.features)
        self.stride = stride or self.window_length
        self.time_column: str | None = None
        self.row_times: RowTimes | None = None  # the timestamps of the rows read, for the incidents
        self.windows_given = False
        self.header: list[str] | None = None
        self.separator = ","
        suffix = path.suffix.lower()
        problem = unreadable_file(path)
        if problem is not None:
            hint = ("; to score rows as they arrive, use --output - (live scoring) or pipe them into --input -"
                    if "regular" in problem else "")
            raise DataError(f"{path}: input file {problem}{hint}")
        if suffix == ".npy":
            self._open_npy()
        elif suffix in (".csv", ".txt"):
            self._open_csv(detector)
        else:
            raise DataError(f"{path}: unknown input type {suffix or '(no suffix)'!r}; expected .csv or .npy")
        if self.windows_given and stride is not None:
            raise DataError(f"{path}: holds ready windows (N, T, F); --stride applies to (rows, F) input only")
        self.reference: Reference | None = None

    def _open_npy(self) -> None:
        try:
            with open(self.path, "rb") as handle:
                magic = handle.read(6)
        except OSError as err:
            raise DataError(f"{self.path}: cannot read the file ({err})") from None
        if magic != b"\x93NUMPY":  # not .npy: an .npz archive or a pickle would take other paths in np.load
            raise DataError(f"{self.path}: not a readable .npy array (it does not start with the .npy magic bytes; "
                            "save the array with numpy.save)")
        try:
            arr = np.load(self.path, mmap_mode="r", allow_pickle=False)
        except Exception as err:  # noqa: BLE001 (np.load parses untrusted bytes: ValueError, EOFError, TokenError...)
            raise DataError(f"{self.path}: not a readable .npy array ({type(err).__name__}: {err})") from None
        if arr.dtype.kind not in "fiu":
            raise DataError(f"{self.path}: dtype {arr.dtype} is not numeric; expected float or integer values")
        if arr.ndim not in (2, 3) or arr.shape[-1] != self.n_features:
            raise DataError(f"{self.path}: shape {arr.shape}; expected (rows, {self.n_features}) time steps or "
                            f"(N, {self.window_length}, {self.n_features}) windows of features {self.features}")
        if arr.ndim == 3 and arr.shape[1] != self.window_length:
            raise DataError(f"{self.path}: windows of {arr.shape[1]} time steps, but the model was trained on "
                            f"windows of {self.window_length} (shape {arr.shape}); pass (rows, F) time steps to "
                            "window them here")
        self.array = arr
        self.windows_given = arr.ndim == 3
        self.n_rows = arr.shape[0] if arr.ndim == 2 else None

    def _open_csv(self, detector: Detector) -> None:
        self.header, self.separator = read_layout(self.path, detector.data_columns.get("separator"),
                                                  separator_hint(detector))
        self.time_column = check_columns(self.header, detector, str(self.path))
        if self.time_column:
            self.row_times = RowTimes(self.path, self.time_column, detector.trained_period)

    def windows(self, batch: int) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
        """``(start rows or None, windows (n, T, F) float64, timestamps at the starts or None)`` per batch."""
        if self.windows_given:
            for i in range(0, len(self.array), batch):
                chunk = np.asarray(self.array[i: i + batch], dtype=np.float64)
                bad = first_bad_value(chunk)
                if bad is not None:
                    (w, t, f), what = bad
                    raise DataError(f"{self.path}: window {i + w}, time step {t}, feature {f} ({self.features[f]!r}) "
                                    f"holds {what}")
                bad = too_large(self.detector.scaler.unchecked(chunk))
                if bad is not None:
                    (w, t, f), value = bad
                    raise DataError(f"{self.path}: window {i + w}, time step {t}, feature {f} ({self.features[f]!r}): "
                                    f"value {float(chunk[w, t, f]):.6g}, {overflow_text(value)}")
                yield np.arange(i, i + len(chunk)), chunk, None
            return
        yield from iter_windows(self.blocks(), self.window_length, self.stride, batch)

    def blocks(self) -> Iterator[Block]:
        """The input's rows, block by block (time-step inputs), standardised as the run's recordings were."""
        return checked_magnitudes(normalised_blocks(self._read_blocks(), self.reference), self.detector, self.path,
                                  self.features)

    def _read_blocks(self) -> Iterator[Block]:
        """The input's rows as read: the features, then the timestamp and reference label columns as text."""
        self.rows_read = 0
        if self.header is not None:
            text = ([self.time_column] if self.time_column else []) + (self.reference.label_columns
                                                                       if self.reference else [])
            for block in iter_csv_blocks(self.path, self.header, self.features, text, self.chunk_rows,
                                         separator=self.separator, fill=missing_fill(self.detector, self.path),
                                         decimal=self.detector.data_columns["decimal"]):
                self.rows_read = block.first_row + len(block.values)
                if self.row_times is not None:
                    self.row_times.add(block)
                yield block
            return
        for start in range(0, self.n_rows, self.chunk_rows):
            values = np.asarray(self.array[start: start + self.chunk_rows], dtype=np.float64)
            bad = first_bad_value(values)
            if bad is not None:
                (r, c), what = bad
                raise DataError(f"{self.path}: row {start + r}, column {c} ({self.features[c]!r}) holds {what}")
            self.rows_read = start + len(values)
            yield Block(start, values)


# ----- scoring -------------------------------------------------------------------------
def score_file(detector: Detector, input_path: str | Path, output_path: str | Path, stride: int | None = None,
               chunk_rows: int = DEFAULT_CHUNK_ROWS, batch: int | None = None, overwrite: bool = False,
               merge_gap: int | None = None, incidents_path: str | Path | None = None,
               config_path: str | Path | None = None, per_step: bool = False,
               baselines: bool = False, reference_rows: int | None = None) -> dict[str, Any]:
    """Score every window of ``input_path``; one CSV row per window (or time step) to ``output_path``,
    incidents beside it.

    Args:
        input_path: ``.csv`` or ``.npy``.
        output_path: the scores CSV, written atomically (:func:`utils.runs.outputs.check_output`); time-step
            inputs also get ``<stem>.incidents.csv`` beside it.
        stride: rows between window starts; default the window length (no overlap), with ``per_step`` 1.
        batch: windows scored at a time; default the detector's batch size, at most
            ``chunk_rows // window_length + 1`` (per-step: :data:`agents.score_loop.STEP_BATCH`).
        merge_gap: quiet rows inside one incident; default the run's, or the window length.
        incidents_path: instead of ``<output stem>.incidents.csv``.
        config_path: the config file the command read; no output may replace it.
        per_step: one row per time step (:class:`agents.score_loop.StepScorer`); time-step inputs only.
        baselines: add the run's baselines' scores and alarms (:class:`agents.score_rows.Scoring`).
        reference_rows: ``--reference-rows`` (:func:`agents.score_loop.recording_reference`).

    Returns:
        Summary: windows, rows, trailing rows not scored, alarms per score, thresholds, incidents.

    Raises:
        DataError: wrong columns or shape, non-numbers, NaN/inf (naming row and
            column), fewer rows than one window or than the reference rows of a per-recording normalised run.
        CheckpointError: ``baselines`` for a run whose best.pt holds none.
    """
    input_path = Path(input_path)
    output_path = check_output(output_path, overwrite, inputs=(input_path,), config=config_path)
    if stride is not None and stride < 1:
        raise DataError(f"--stride: expected a positive number of rows, got {stride}")
    window_length = detector.window_length
    if per_step:
        check_per_step(stride, window_length)
    scoring = Scoring(detector, baselines)
    source = _Input(input_path, detector, stride, chunk_rows)
    source.reference = scoring.reference = recording_reference(detector, source.header, str(input_path),
                                                                reference_rows)
    if source.windows_given and source.reference is not None:
        raise DataError(f"{input_path}: holds ready windows (N, T, F), but this run standardised each recording by "
                        "its training part (data.normalize=per_recording), which ready windows cannot be; pass the "
                        "recording's (rows, F) time steps or its CSV")
    if per_step:
        if source.windows_given:
            raise DataError(f"{input_path}: holds ready windows (N, T, F), which have no time steps; --per-step "
                            "scores (rows, F) time steps or a CSV")
        source.stride = stride or 1
    incidents = None if source.windows_given else IncidentStream(detector, merge_gap, source.row_times)
    if incidents is not None:
        if str(incidents_path) == "-":
            raise DataError("--incidents -: standard error takes incidents of live scoring only (--input - or "
                            "--output -); give batch scoring's incidents a file")
        incidents_path = checked_incidents_path(incidents_path, output_path, overwrite, (input_path,), config_path)
    if per_step:
        scorer = StepScorer(scoring, incidents, source.time_column, eager=False)
        batches = covering_windows(source.blocks(), window_length, source.stride, batch or scorer.batch)
    else:
        scorer = WindowScorer(scoring, incidents, source.time_column, numbered=not source.windows_given)
        # At most chunk_rows rows' worth of windows at a time, so memory does not grow with the window count
        # (+1: a block plus the carried-over rows holds up to chunk_rows // T + 1 windows at stride T).
        batches = source.windows(batch or max(1, min(detector.batch_size, chunk_rows // window_length + 1)))
    with ExitStack() as outputs:
        writer = csv.writer(outputs.enter_context(atomic_output(output_path, newline="")))
        writer.writerow(scorer.header())
        incident_writer = None
        if incidents is not None:
            incident_writer = csv.writer(outputs.enter_context(atomic_output(incidents_path, newline="")))
            incident_writer.writerow(INCIDENT_HEADER)

        def write(rows: list[list[Any]], found: list) -> None:
            writer.writerows(rows)
            if found:
                incident_writer.writerows(incidents.row_of(*f) for f in found)

        score_batches(scorer, batches, write)
        finish(scorer, write)  # per-step scoring may hold windows until here
        if scorer.windows == 0:
            rows = getattr(source, "rows_read", 0)
            raise DataError(f"{input_path}: {rows} rows, fewer than one window of {window_length} rows "
                            f"(the model's trained window length)")
    summary: dict[str, Any] = {"input": str(input_path), "output": str(output_path), "windows": scorer.windows,
                               "window_length": window_length, "thresholds": dict(scoring.thresholds),
                               "alarms": scorer.alarms, "unit": scorer.unit}
    if not source.windows_given:
        rows = source.rows_read
        last_end = (scorer.windows - 1) * source.stride + window_length
        summary.update(rows=rows, stride=source.stride, rows_not_scored=0 if per_step else max(rows - last_end, 0),
                       incidents=incidents.count,
                       incidents_output=None if incidents_path is None else str(incidents_path),
                       incident_score=incidents.score_name, incident_threshold=incidents.threshold,
                       merge_gap=incidents.merge_gap, point_aggregation=incidents.aggregation,
                       rows_between_windows=incidents.unscored)
    if per_step:
        summary["steps"] = scorer.steps
    return summary


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines for the console."""
    lines = [f"Scored {summary['windows']} windows of {summary['window_length']} steps from {summary['input']}"]
    if "rows" in summary:
        lines[0] += f" ({summary['rows']} rows, stride {summary['stride']}"
        lines[0] += f", last {summary['rows_not_scored']} rows not in a full window)" if summary["rows_not_scored"] \
            else ")"
    unit = summary.get("unit", "windows")
    total = summary["steps"] if "steps" in summary else summary["windows"]
    if "steps" in summary:
        lines.append(f"  one row per time step: {summary['steps']} time steps, each the "
                     f"{summary['point_aggregation']} of the windows covering it")
    for name, count in summary["alarms"].items():
        share = 100.0 * count / max(total, 1)
        lines.append(f"  alarm_{name}: {count} {unit} ({share:.2f}%), threshold {exact(summary['thresholds'][name])}")
    lines.append(f"Scores written to {summary['output']}")
    lines.append(incident_line(summary))
    return "\n".join(lines)


def incident_line(summary: dict[str, Any]) -> str:
    """What the summary says about incidents (or why there are none)."""
    if "incidents" not in summary:
        return "No incidents: ready windows (N, T, F) have no time axis; score (rows, F) time steps for incidents"
    line = (f"{summary['incidents']} incident{'s' if summary['incidents'] != 1 else ''} of "
            f"score_{summary['incident_score']} > {exact(summary['incident_threshold'])} (time steps take the "
            f"{summary['point_aggregation']} of their windows; merged over gaps of up to {summary['merge_gap']} rows)")
    if summary.get("incidents_output"):
        line += f" written to {summary['incidents_output']}"
    if summary["rows_between_windows"]:
        line += (f"; stride {summary['stride']} > window length {summary['window_length']}: "
                 f"{summary['rows_between_windows']} rows between windows have no score (quiet)")
    return line
