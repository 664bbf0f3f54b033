"""Score new data with a finished run: a file whole (:func:`score_file`, written atomically) or rows as they arrive
(:func:`live_score`: ``producer | python main.py CONFIG --mode score --input - --output -``, written line by line; a
signal takes effect once the lines being scored are written). Both run :mod:`agents.score_loop`; docs/scoring.md."""
from __future__ import annotations

import os
import signal
import stat
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, Self, TextIO

import numpy as np

from agents.detector.detector import Detector
from agents.detector.scaler import overflow_text, too_large
from agents.score_loop import (Batch, IncidentStream, Reference, RowTimes, Scoring, Sink, StepScorer, WindowScorer,
                               check_columns, checked_incidents_path, checked_stride, exact, missing_fill,
                               recording_reference, row_batches, separator_hint, too_few_rows)
from datasets.csv_reading import (DEFAULT_CHUNK_ROWS, Block, CsvStream, first_bad_value, iter_csv_blocks, open_csv,
                                  read_layout)
from utils.core.errors import DataError
from utils.core.paths import unreadable_file
from utils.runs.outputs import WholeLines, atomic_output, check_output
from utils.runtime.signals import STOP_SIGNALS, Interrupted, ignore_stop_signals, restore_handlers, signal_name

# ----- inputs --------------------------------------------------------------------------
class _Input:
    """An input file opened for streaming: row blocks or ready windows, standardised by :attr:`reference` if set."""

    def __init__(self, path: Path, detector: Detector, stride: int | None, chunk_rows: int) -> None:
        self.path, self.detector, self.chunk_rows = path, detector, chunk_rows
        self.window_length, self.features = detector.window_length, list(detector.feature_names)
        self.stride = stride or self.window_length
        self.time_column: str | None = None
        self.row_times: RowTimes | None = None  # the timestamps of the rows read, for the incidents
        self.header: list[str] | None = None
        self.reference: Reference | None = None
        self.rows_read = 0
        suffix = path.suffix.lower()
        if (problem := unreadable_file(path)) is not None:
            hint = ("; to score rows as they arrive, use --output - (live scoring) or pipe them into --input -"
                    if "regular" in problem else "")
            raise DataError(f"{path}: input file {problem}{hint}")
        if suffix == ".npy":
            self._open_npy()
        elif suffix in (".csv", ".txt"):
            self.header, self.separator = read_layout(path, detector.data_columns.get("separator"),
                                                      separator_hint(detector), detector.data_columns["header"])
            self.time_column = check_columns(self.header, detector, str(path))
            if self.time_column:
                self.row_times = RowTimes(path, self.time_column, detector.trained_period)
        else:
            raise DataError(f"{path}: unknown input type {suffix or '(no suffix)'!r}; expected .csv or .npy")
        self.windows_given = self.header is None and self.array.ndim == 3
        if self.windows_given and stride is not None:
            raise DataError(f"{path}: holds ready windows (N, T, F); --stride applies to (rows, F) input only")

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
        if arr.ndim not in (2, 3) or arr.shape[-1] != len(self.features):
            raise DataError(f"{self.path}: shape {arr.shape}; expected (rows, {len(self.features)}) time steps or "
                            f"(N, {self.window_length}, {len(self.features)}) windows of features {self.features}")
        if arr.ndim == 3 and arr.shape[1] != self.window_length:
            raise DataError(f"{self.path}: windows of {arr.shape[1]} time steps, but the model was trained on "
                            f"windows of {self.window_length} (shape {arr.shape}); pass (rows, F) time steps to "
                            "window them here")
        self.array = arr

    def windows(self, batch: int, cover: bool = False) -> Iterator[Batch]:
        """The input's batches of windows (``cover``: every row covered, for per-step scoring)."""
        if not self.windows_given:
            yield from row_batches(self._read_blocks(), self.reference, self.detector, self.path, self.stride, batch,
                                   cover)
            return
        for i in range(0, len(self.array), batch):
            chunk = np.asarray(self.array[i: i + batch], dtype=np.float64)
            if (bad := first_bad_value(chunk)) is not None:
                (w, t, f), what = bad
                raise DataError(f"{self.path}: window {i + w}, time step {t}, feature {f} ({self.features[f]!r}) "
                                f"holds {what}")
            if (bad := too_large(self.detector.scaler.unchecked(chunk))) is not None:
                (w, t, f), value = bad
                raise DataError(f"{self.path}: window {i + w}, time step {t}, feature {f} ({self.features[f]!r}): "
                                f"value {float(chunk[w, t, f]):.6g}, {overflow_text(value)}")
            yield None, chunk, None  # no start rows: the start_row column stays empty

    def _read_blocks(self) -> Iterator[Block]:
        """The input's rows as read: the features, then the timestamp and reference label columns as text."""
        if self.header is not None:
            text = ([self.time_column] if self.time_column else []) + (self.reference.label_columns
                                                                       if self.reference else [])
            blocks = iter_csv_blocks(self.path, self.header, self.features, text, self.chunk_rows,
                                     separator=self.separator, fill=missing_fill(self.detector, self.path),
                                     decimal=self.detector.data_columns["decimal"],
                                     has_header=self.detector.data_columns["header"])
        else:
            blocks = (Block(start, np.asarray(self.array[start: start + self.chunk_rows], dtype=np.float64))
                      for start in range(0, len(self.array), self.chunk_rows))
        for block in blocks:
            if self.header is None and (bad := first_bad_value(block.values)) is not None:
                (r, c), what = bad
                raise DataError(f"{self.path}: row {block.first_row + r}, column {c} ({self.features[c]!r}) "
                                f"holds {what}")
            self.rows_read = block.first_row + len(block.values)
            if self.row_times is not None:
                self.row_times.add(block)
            yield block


# ----- scoring -------------------------------------------------------------------------
def score_file(detector: Detector, input_path: str | Path, output_path: str | Path, stride: int | None = None,
               chunk_rows: int = DEFAULT_CHUNK_ROWS, batch: int | None = None, overwrite: bool = False,
               merge_gap: int | None = None, incidents_path: str | Path | None = None,
               config_path: str | Path | None = None, per_step: bool = False,
               baselines: bool = False, reference_rows: int | None = None) -> dict[str, Any]:
    """Score every window of ``input_path`` (``.csv`` or ``.npy``), windows every ``stride`` rows (default the window
    length, with ``per_step`` 1); one CSV row per window (or time step) to ``output_path``, written atomically, and a
    time-step input's incidents beside it (or to ``incidents_path``). ``batch``: windows read at a time (default the
    scoring batch, :class:`agents.score_loop.PlacedScoring`); ``merge_gap``: as --merge-gap; ``config_path``: the
    file no output may replace. The summary: windows, rows, trailing rows not scored, alarms, thresholds, incidents."""
    input_path = Path(input_path)
    output_path = check_output(output_path, overwrite, inputs=(input_path,), config=config_path)
    window_length = detector.window_length
    step = checked_stride(stride, window_length, per_step)
    scoring = Scoring(detector, baselines)
    source = _Input(input_path, detector, stride, chunk_rows)
    source.reference = scoring.reference = recording_reference(detector, source.header, str(input_path), reference_rows)
    if source.windows_given and source.reference is not None:
        raise DataError(f"{input_path}: holds ready windows (N, T, F), but this run standardised each recording by "
                        "its training part (data.normalize=per_recording), which ready windows cannot be; pass the "
                        "recording's (rows, F) time steps or its CSV")
    if per_step and source.windows_given:
        raise DataError(f"{input_path}: holds ready windows (N, T, F), which have no time steps; --per-step "
                        "scores (rows, F) time steps or a CSV")
    source.stride = step
    incidents = None if source.windows_given else IncidentStream(detector, merge_gap, source.row_times)
    if incidents is not None:
        if str(incidents_path) == "-":
            raise DataError("--incidents -: standard error takes incidents of live scoring only (--input - or "
                            "--output -); give batch scoring's incidents a file")
        incidents_path = checked_incidents_path(incidents_path, output_path, overwrite, (input_path,), config_path)
    scorer = (StepScorer if per_step else WindowScorer)(scoring, incidents, source.time_column, eager=False)
    batch = batch or scorer.batch
    with ExitStack() as outputs:
        files = [outputs.enter_context(atomic_output(path, newline="")) if path else None
                 for path in (output_path, incidents_path if incidents is not None else None)]
        write = Sink(scorer.header(), *files, incidents)
        for windows in source.windows(batch, cover=per_step):
            write(*scorer.add(*windows))
        write(*scorer.finish())  # per-step scoring may hold windows until here
        if scorer.windows == 0:
            raise too_few_rows(input_path, source.rows_read, window_length)
    summary: dict[str, Any] = {"input": str(input_path), "output": str(output_path), "windows": scorer.windows,
                               "window_length": window_length, "thresholds": dict(scoring.thresholds),
                               "alarms": scorer.alarms, "unit": scorer.unit}
    if not source.windows_given:
        summary.update(rows=source.rows_read, stride=step,
                       rows_not_scored=_after_windows(source.rows_read, 0 if per_step else scorer.windows, step,
                                                      window_length), incidents=incidents.count,
                       incidents_output=None if incidents_path is None else str(incidents_path),
                       incident_score=incidents.score_name, incident_threshold=incidents.threshold,
                       merge_gap=incidents.merge_gap, point_aggregation=incidents.aggregation,
                       rows_between_windows=incidents.unscored)
    if per_step:
        summary["steps"] = scorer.steps
    return summary


def _after_windows(rows: int, windows: int, stride: int, window_length: int) -> int:
    """The rows after the last of ``windows`` full windows every ``stride`` rows from row 0: not scored."""
    return max(rows - ((windows - 1) * stride + window_length), 0) if windows else 0


def format_summary(summary: dict[str, Any]) -> str:
    """A few lines for the console."""
    lines = [f"Scored {summary['windows']} windows of {summary['window_length']} steps from {summary['input']}"]
    if "rows" in summary:
        lines[0] += f" ({summary['rows']} rows, stride {summary['stride']}"
        lines[0] += f", last {summary['rows_not_scored']} rows not in a full window)" if summary["rows_not_scored"] \
            else ")"
    if "steps" in summary:
        lines.append(f"  one row per time step: {summary['steps']} time steps, each the "
                     f"{summary['point_aggregation']} of the windows covering it")
    for name, count in summary["alarms"].items():
        share = 100.0 * count / max(summary.get("steps", summary["windows"]), 1)
        lines.append(f"  alarm_{name}: {count} {summary['unit']} ({share:.2f}%), threshold "
                     f"{exact(summary['thresholds'][name])}")
    lines.append(f"Scores written to {summary['output']}")
    if "incidents" not in summary:
        lines.append("No incidents: ready windows (N, T, F) have no time axis; score (rows, F) time steps for "
                     "incidents")
        return "\n".join(lines)
    line = (f"{summary['incidents']} incident{'s' if summary['incidents'] != 1 else ''} of "
            f"score_{summary['incident_score']} > {exact(summary['incident_threshold'])} (time steps take the "
            f"{summary['point_aggregation']} of their windows; merged over gaps of up to {summary['merge_gap']} rows)")
    if summary.get("incidents_output"):
        line += f" written to {summary['incidents_output']}"
    if summary["rows_between_windows"]:
        line += (f"; stride {summary['stride']} > window length {summary['window_length']}: "
                 f"{summary['rows_between_windows']} rows between windows have no score (quiet)")
    return "\n".join([*lines, line])


# ----- live scoring ------------------------------------------------------------------
STDIO = "-"


class _Stop:
    """SIGINT/SIGTERM: raise while waiting for input (:meth:`read1` of ``stream``); while scoring, raise once the
    lines are written."""

    def __init__(self) -> None:
        self.signum: int | None = None
        self.stream: BinaryIO | None = None
        self.waiting = False
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> Self:
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._handle) for sig in STOP_SIGNALS}
        return self

    def __exit__(self, *exc: object) -> None:
        restore_handlers(self._previous)

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        self.signum = signum
        if self.waiting:
            self.check()

    def check(self) -> None:
        """Raise :class:`Interrupted` if a signal came."""
        if self.signum is not None:
            raise Interrupted(self.signum, f"{signal_name(self.signum)} received")

    def read1(self, n: int) -> bytes:
        """Read ``stream`` as CsvStream does; a stop signal interrupts the wait."""
        self.waiting = True  # before the check: a signal from here on raises at once
        try:
            self.check()
            return self.stream.read1(n)
        finally:
            self.waiting = False


def live_score(detector: Detector, input_path: str, output_path: str, stride: int | None = None,
               merge_gap: int | None = None, overwrite: bool = False, incidents_path: str | None = None,
               stdin: BinaryIO | None = None, stdout: TextIO | None = None,
               stderr: TextIO | None = None, config_path: str | None = None, per_step: bool = False,
               baselines: bool = False, reference_rows: int | None = None) -> dict[str, Any]:
    """Score CSV rows as they arrive from ``input_path`` (``"-"``: ``stdin``, binary) to ``output_path`` (``"-"``:
    ``stdout``), incidents to ``incidents_path`` (default ``<output stem>.incidents.csv``; ``"-"``: lines on
    ``stderr``), line by line; the other arguments as for :func:`score_file`. The summary: windows, rows, alarms (of
    the first score), incidents, ``stopped_by`` (None, "SIGINT", "SIGTERM", "broken pipe") and ``exit_code`` (0, 130,
    143). A bad header or row raises DataError naming the line, once the lines before it are written."""
    stdin, stdout, stderr = stdin or sys.stdin.buffer, stdout or sys.stdout, stderr or sys.stderr
    window_length = detector.window_length
    step = checked_stride(stride, window_length, per_step)
    scoring = Scoring(detector, baselines)
    inputs = _stdin_file(stdin) if input_path == STDIO else (input_path,)
    scores = None if output_path == STDIO else check_output(output_path, overwrite, inputs, config=config_path)
    incidents = (None if incidents_path == STDIO  # as --output -: one readable line each on standard error
                 else checked_incidents_path(incidents_path, scores, overwrite, inputs, config_path))
    outputs = [None if path is None else str(path) for path in (scores, incidents)]
    stream = IncidentStream(detector, merge_gap)  # checks merge_gap before anything is read or written
    with ExitStack() as stack:
        stop = stack.enter_context(_Stop())
        stop.stream = stdin if input_path == STDIO else stack.enter_context(_open_csv(input_path))
        name = "<stdin>" if input_path == STDIO else input_path
        rows = CsvStream(stop, name, separator=detector.data_columns.get("separator"),
                         hint=separator_hint(detector), fill=missing_fill(detector, name),
                         decimal=detector.data_columns["decimal"], has_header=detector.data_columns["header"])
        summary = {"input": rows.name, "output": output_path, "incidents_output": outputs[1], "stopped_by": None,
                   "exit_code": 0, "windows": 0, "window_length": window_length}
        write, error, scorer = None, None, None

        def written(found_rows: list[list[Any]], found: list[tuple[int, Any]]) -> None:
            write(found_rows, found)
            summary.update(windows=scorer.windows, alarms=scorer.alarms[stream.score_name])

        def counted(blocks: Iterator[Block]) -> Iterator[Block]:
            for block in blocks:  # timestamps handed to the incidents, rows counted
                if stream.times is not None:
                    stream.times.add(block)
                summary["rows"] = block.first_row + len(block.values)
                yield block

        try:
            try:
                header = rows.read_header()
                time_column = check_columns(header, detector, rows.name)
                reference = scoring.reference = recording_reference(detector, header, rows.name, reference_rows)
                if time_column:
                    stream.times = RowTimes(rows.name, time_column, detector.trained_period)
                files = [stack.enter_context(WholeLines(p)) if p else None for p in outputs]
                scorer = (StepScorer if per_step else WindowScorer)(scoring, stream, time_column, eager=True)
                write = Sink(scorer.header(), stdout if files[0] is None else files[0], files[1], stream, stderr)
                summary.update(stride=step, rows=0, alarms=0,
                               score=stream.score_name, threshold=stream.threshold, unit=scorer.unit)
                text = ([time_column] if time_column else []) + (reference.label_columns if reference else [])
                blocks = counted(rows.blocks(header, detector.feature_names, text))
                for windows in row_batches(blocks, reference, detector, rows.name, step, scorer.batch, per_step):
                    written(*scorer.add(*windows))
                    stop.check()
            except Interrupted as err:
                summary.update(stopped_by=signal_name(err.signum), exit_code=err.exit_code)
            except DataError as err:  # a bad row: what came before it is scored and written, then the error
                error = err
            previous = ignore_stop_signals()  # the end is written whole
            try:
                if error is None and summary["windows"] == 0 and summary["stopped_by"] is None:
                    raise too_few_rows(rows.name, summary.get("rows", 0), window_length)
                if scorer is not None:
                    written(*scorer.finish())
                    summary.update(incidents=stream.count, rows_between_windows=stream.unscored,
                                   rows_not_scored=_after_windows(summary["rows"], 0 if per_step else scorer.windows,
                                                                  step, window_length))
            finally:
                restore_handlers(previous)
        except BrokenPipeError:
            try:  # standard output to /dev/null, so the flush at exit does not fail again
                os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
            except (OSError, ValueError, AttributeError):  # not a real file (a test's StringIO)
                pass
            return {**summary, "stopped_by": "broken pipe"}
    if error is not None:
        raise error
    print(summary_line(summary), file=stderr, flush=True)
    return summary


def _stdin_file(stdin: BinaryIO) -> tuple[str, ...]:
    """Standard input's path when it is a regular file (``--input - < data.csv``), so no output replaces the rows
    being read; else none (a pipe, a terminal, a test's BytesIO)."""
    try:
        fd = stdin.fileno()
        return (f"/dev/fd/{fd}",) if stat.S_ISREG(os.fstat(fd).st_mode) else ()
    except (OSError, ValueError, AttributeError):  # io.UnsupportedOperation is both of the first two
        return ()


def _open_csv(path: str) -> BinaryIO:
    if (problem := unreadable_file(path, allow_stream=True)) is not None:  # a named pipe is read as its rows arrive
        raise DataError(f"{path}: input file {problem}")
    # a stream (a named pipe, <(producer)'s /dev/fd/N) is CSV rows whatever its name: only a file's suffix says
    if Path(path).suffix.lower() not in (".csv", ".txt") and stat.S_ISREG(os.stat(path).st_mode):
        raise DataError(f"{path}: --output - streams the scores of CSV input only; write the scores of "
                        f"{Path(path).suffix or 'this'} input to a file")
    return open_csv(path)


def summary_line(summary: dict[str, Any]) -> str:
    """One line for standard error at the end."""
    end = "ended at the end of input" if summary["stopped_by"] is None else f"stopped by {summary['stopped_by']}"
    line = (f"Live scoring of {summary['input']} {end}: {summary['windows']} windows of "
            f"{summary['window_length']} rows")
    if "rows" in summary:
        line += f" (stride {summary['stride']}) from {summary['rows']} rows"
        if summary.get("rows_not_scored"):
            line += f" (last {summary['rows_not_scored']} rows not in a full window)"
        line += (f"; {summary['alarms']} alarmed "
                 f"{summary['unit']} and {summary.get('incidents', 0)} incident(s) of score_{summary['score']} > "
                 f"{exact(summary['threshold'])}")
    line += f"; scores to {'standard output' if summary['output'] == STDIO else summary['output']}"
    if summary.get("incidents_output"):
        line += f", incidents to {summary['incidents_output']}"
    if summary.get("rows_between_windows"):
        line += f"; {summary['rows_between_windows']} rows between windows have no score (stride > window length)"
    return line
