"""Live scoring from a pipe: ``producer | python main.py CONFIG --mode score --input - --output -``.

Behaviour: docs/scoring.md "Live scoring from a pipe". A signal takes effect once the lines being scored are
written, so every line is whole; nothing is written atomically here: the files are the live output.
"""
from __future__ import annotations

import os
import signal
import sys
import threading
from collections.abc import Iterator
from contextlib import ExitStack
from pathlib import Path
from types import FrameType
from typing import Any, BinaryIO, Self, TextIO

from agents.detector.detector import Detector
from agents.score_loop import (Sink, StepScorer, WindowScorer, check_stride, recording_reference, row_batches,
                               score_batches, too_few_rows)
from agents.score_rows import (IncidentStream, RowTimes, Scoring, check_columns, checked_incidents_path, exact,
                               missing_fill, separator_hint)
from datasets.csv_reading import Block, CsvStream
from utils.core.errors import DataError
from utils.core.paths import unreadable_file
from utils.runs.outputs import WholeLines, check_output
from utils.runtime.signals import STOP_SIGNALS, Interrupted, ignore_stop_signals, restore_handlers, signal_name

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
    """Score CSV rows as they arrive; window rows and incidents written line by line (module docstring).

    Args:
        input_path: ``"-"`` (standard input) or a CSV file.
        output_path: ``"-"`` (standard output) or the scores CSV to write (an existing one only with ``overwrite``).
        incidents_path: default ``<output stem>.incidents.csv``, or lines on stderr for ``"-"``.
        stdin, stdout, stderr: the standard streams (default ``sys``'s): stdin binary, the others text.
        stride, merge_gap, config_path, per_step, baselines, reference_rows: as for
            :func:`agents.score_files.score_file` (per-step rows are written once final).

    Returns:
        Summary: windows, rows, alarms (of the first score), incidents, ``stopped_by`` (None, "SIGINT", "SIGTERM",
        "broken pipe") and ``exit_code`` (0, 130, 143).

    Raises:
        DataError: a bad header or row (naming the line; the lines before it are written), fewer rows than
            one window at the end of input.
    """
    stdin = stdin or sys.stdin.buffer
    stdout, stderr = stdout or sys.stdout, stderr or sys.stderr
    window_length = detector.window_length
    check_stride(stride, window_length, per_step)
    scoring = Scoring(detector, baselines)
    inputs = () if input_path == STDIO else (input_path,)
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
                         decimal=detector.data_columns["decimal"])
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
                scorer = (StepScorer(scoring, stream, time_column, eager=True) if per_step
                          else WindowScorer(scoring, stream, time_column))
                write = Sink(scorer.header(), stdout if files[0] is None else files[0], files[1], stream, stderr)
                summary.update(stride=stride or (1 if per_step else window_length), rows=0, alarms=0,
                               score=stream.score_name, threshold=stream.threshold, unit=scorer.unit)
                text = ([time_column] if time_column else []) + (reference.label_columns if reference else [])
                blocks = counted(rows.blocks(header, detector.feature_names, text))
                batch = scorer.batch if per_step else max(1, min(detector.batch_size, 4096))
                score_batches(scorer, row_batches(blocks, reference, detector, rows.name, summary["stride"], batch,
                                                  cover=per_step), written, stop.check)
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
                    summary.update(incidents=stream.count, rows_between_windows=stream.unscored)
            finally:
                restore_handlers(previous)
        except BrokenPipeError:
            _silence(stdout)
            return {**summary, "stopped_by": "broken pipe"}
    if error is not None:
        raise error
    print(summary_line(summary), file=stderr, flush=True)
    return summary


def _open_csv(path: str) -> BinaryIO:
    if Path(path).suffix.lower() not in (".csv", ".txt"):
        raise DataError(f"{path}: --output - streams the scores of CSV input only; write the scores of "
                        f"{Path(path).suffix or 'this'} input to a file")
    problem = unreadable_file(path, allow_stream=True)  # a named pipe is read as its rows arrive
    if problem is not None:
        raise DataError(f"{path}: input file {problem}")
    try:
        return open(path, "rb")
    except OSError as err:
        raise DataError(f"{path}: cannot read the file ({err.strerror or err})") from None


def _silence(stdout: TextIO) -> None:
    """After a broken pipe: standard output to /dev/null, so the flush at exit does not fail again."""
    try:
        os.dup2(os.open(os.devnull, os.O_WRONLY), stdout.fileno())
    except (OSError, ValueError, AttributeError):  # not a real file (a test's StringIO)
        pass


def summary_line(summary: dict[str, Any]) -> str:
    """One line for standard error at the end."""
    end = "ended at the end of input" if summary["stopped_by"] is None else f"stopped by {summary['stopped_by']}"
    line = (f"Live scoring of {summary['input']} {end}: {summary['windows']} windows of "
            f"{summary['window_length']} rows")
    if "rows" in summary:
        line += (f" (stride {summary['stride']}) from {summary['rows']} rows; {summary['alarms']} alarmed "
                 f"{summary['unit']} and {summary.get('incidents', 0)} incident(s) of score_{summary['score']} > "
                 f"{exact(summary['threshold'])}")
    line += f"; scores to {'standard output' if summary['output'] == STDIO else summary['output']}"
    if summary.get("incidents_output"):
        line += f", incidents to {summary['incidents_output']}"
    if summary.get("rows_between_windows"):
        line += f"; {summary['rows_between_windows']} rows between windows have no score (stride > window length)"
    return line
