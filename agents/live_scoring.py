"""Live scoring from a pipe: ``producer | python main.py CONFIG --mode score --input - --output -``.

Behaviour: docs/scoring.md "Live scoring from a pipe". A signal takes effect once the lines being scored are
written, so every line is whole; nothing is written atomically here: the files are the live output.
"""
from __future__ import annotations

import csv
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
from agents.score_loop import (Reference, Scorer, StepScorer, WindowScorer, check_per_step, checked_magnitudes,
                               covering_windows, finish, normalised_blocks, recording_reference, score_batches)
from agents.score_rows import (INCIDENT_HEADER, IncidentStream, RowTimes, Scoring, check_columns,
                               checked_incidents_path, exact, missing_fill, separator_hint)
from datasets.csv_reading import Block, CsvStream, iter_windows
from utils.core.errors import DataError
from utils.core.paths import unreadable_file
from utils.runs.outputs import WholeLines, check_output
from utils.runtime.signals import STOP_SIGNALS, Interrupted, ignore_stop_signals, restore_handlers, signal_name

STDIO = "-"


class _Stop:
    """SIGINT/SIGTERM: raise while waiting for input; while scoring, raise once the lines are written."""

    def __init__(self) -> None:
        self.signum: int | None = None
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


class _Waiting:
    """A binary stream whose reads a stop signal interrupts."""

    def __init__(self, stream: BinaryIO, stop: _Stop) -> None:
        self.stream, self.stop = stream, stop

    def read1(self, n: int) -> bytes:
        self.stop.waiting = True  # before the check: a signal from here on raises at once
        try:
            self.stop.check()
            return self.stream.read1(n)
        finally:
            self.stop.waiting = False


class _Writers:
    """Line-flushed outputs: the scores CSV, and the incidents CSV or readable lines on stderr."""

    def __init__(self, scores: TextIO, incidents: TextIO | None, messages: TextIO) -> None:
        self.scores, self.incidents, self.messages = csv.writer(scores), incidents and csv.writer(incidents), messages
        self._handles = (scores, incidents)

    def score_rows(self, rows: list[list[Any]]) -> None:
        if rows:
            self.scores.writerows(rows)
            self._handles[0].flush()

    def write(self, stream: IncidentStream, rows: list[list[Any]], found: list[tuple[int, Any]]) -> None:
        """Score rows, then the incidents they closed, each flushed."""
        self.score_rows(rows)
        for number, incident in found:
            self.incident(stream, number, incident)

    def incident(self, stream: IncidentStream, number: int, incident: Any) -> None:
        if self.incidents is None:
            print(f"incident {number}: {incident.text(stream.threshold)}", file=self.messages, flush=True)
            return
        self.incidents.writerow(stream.row_of(number, incident))
        self._handles[1].flush()


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
    if stride is not None and stride < 1:
        raise DataError(f"--stride: expected a positive number of rows, got {stride}")
    if per_step:
        check_per_step(stride, detector.window_length)
    scoring = Scoring(detector, baselines)
    inputs = () if input_path == STDIO else (input_path,)
    outputs = _output_paths(output_path, incidents_path, overwrite, inputs, config_path)
    stream = IncidentStream(detector, merge_gap)  # checks merge_gap before anything is read or written
    with ExitStack() as stack:
        stop = stack.enter_context(_Stop())
        source = stdin if input_path == STDIO else stack.enter_context(_open_csv(input_path))
        name = "<stdin>" if input_path == STDIO else input_path
        rows = CsvStream(_Waiting(source, stop), name, separator=detector.data_columns.get("separator"),
                         hint=separator_hint(detector), fill=missing_fill(detector, name),
                         decimal=detector.data_columns["decimal"])
        summary = {"input": rows.name, "output": output_path, "incidents_output": outputs[1], "stopped_by": None,
                   "exit_code": 0, "windows": 0, "window_length": detector.window_length}
        lines, error, scorer = None, None, None
        try:
            header = rows.read_header()
            time_column = check_columns(header, detector, rows.name)
            reference = scoring.reference = recording_reference(detector, header, rows.name, reference_rows)
            if time_column:
                stream.times = RowTimes(rows.name, time_column, detector.trained_period)
            files = [stack.enter_context(WholeLines(p)) if p else None for p in outputs]
            lines = _Writers(stdout if files[0] is None else files[0], files[1], stderr)
            scorer = (StepScorer(scoring, stream, time_column, eager=True) if per_step
                      else WindowScorer(scoring, stream, time_column))
            lines.score_rows([scorer.header()])
            if files[1] is not None:
                lines.incidents.writerow(INCIDENT_HEADER)
                files[1].flush()
            _score(scorer, rows, header, time_column, reference, lines, stride or (1 if per_step else None), stop,
                   summary)
        except Interrupted as err:
            summary.update(stopped_by=signal_name(err.signum), exit_code=err.exit_code)
        except DataError as err:  # a bad row: what came before it is scored and written, then the error
            error = err
        except BrokenPipeError:
            _silence(stdout)
            return {**summary, "stopped_by": "broken pipe"}
        previous = ignore_stop_signals()  # the end is written whole
        try:
            _finish(scorer, lines, summary, rows, check=error is None)
        except BrokenPipeError:
            _silence(stdout)
            return {**summary, "stopped_by": "broken pipe"}
        finally:
            restore_handlers(previous)
    if error is not None:
        raise error
    print(summary_line(summary), file=stderr, flush=True)
    return summary


def _output_paths(output: str, incidents: str | None, overwrite: bool, inputs: tuple[str, ...],
                  config: str | None) -> tuple[str | None, str | None]:
    """The scores and incidents files (None: standard output / lines on stderr), checked before writing."""
    scores = None if output == STDIO else check_output(output, overwrite, inputs, config=config)
    if incidents == STDIO:  # as with --output -: one readable line each on standard error
        return None if scores is None else str(scores), None
    checked = checked_incidents_path(incidents, scores, overwrite, inputs, config)
    return None if scores is None else str(scores), None if checked is None else str(checked)


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


def _score(scorer: Scorer, rows: CsvStream, header: list[str], time_column: str | None, reference: Reference | None,
           lines: _Writers, stride: int | None, stop: _Stop, summary: dict[str, Any]) -> None:
    """Score the windows as their rows arrive, until the end of input (or a signal: Interrupted)."""
    detector, stream = scorer.scoring.detector, scorer.incidents
    stride = stride or detector.window_length
    summary.update(stride=stride, rows=0, alarms=0, score=stream.score_name, threshold=stream.threshold,
                   unit=scorer.unit)
    text = ([time_column] if time_column else []) + (reference.label_columns if reference else [])
    blocks = checked_magnitudes(normalised_blocks(_counted(rows.blocks(header, detector.feature_names, text), stream,
                                                           summary), reference), detector, rows.name,
                                detector.feature_names)
    if isinstance(scorer, StepScorer):
        batches = covering_windows(blocks, detector.window_length, stride, scorer.batch)
    else:
        batches = iter_windows(blocks, detector.window_length, stride, max(1, min(detector.batch_size, 4096)))
    score_batches(scorer, batches, lambda found_rows, found: _written(scorer, lines, summary, found_rows, found),
                  stop.check)


def _written(scorer: Scorer, lines: _Writers, summary: dict[str, Any], rows: list[list[Any]],
             found: list[tuple[int, Any]]) -> None:
    """Write rows and incidents, and count what was scored into the summary."""
    lines.write(scorer.incidents, rows, found)
    summary.update(windows=scorer.windows, alarms=scorer.alarms[scorer.incidents.score_name])


def _counted(blocks: Iterator[Block], stream: IncidentStream, summary: dict[str, Any]) -> Iterator[Block]:
    """The blocks, their timestamps handed to the incidents and their rows counted."""
    for block in blocks:
        if stream.times is not None:
            stream.times.add(block)
        summary["rows"] = block.first_row + len(block.values)
        yield block


def _finish(scorer: Scorer | None, lines: _Writers | None, summary: dict[str, Any], rows: CsvStream,
            check: bool = True) -> None:
    """Write the rows still held and close the open incident; with ``check``, DataError for under one window."""
    if check and summary["windows"] == 0 and summary["stopped_by"] is None:
        raise DataError(f"{rows.name}: {summary.get('rows', 0)} rows, fewer than one window of "
                        f"{summary['window_length']} rows (the model's trained window length)")
    if lines is not None and scorer is not None:
        finish(scorer, lambda found_rows, found: _written(scorer, lines, summary, found_rows, found))
        summary.update(incidents=scorer.incidents.count, rows_between_windows=scorer.incidents.unscored)


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
                 f"{summary.get('unit', 'windows')} and "
                 f"{summary.get('incidents', 0)} incident(s) of score_{summary['score']} > {exact(summary['threshold'])}")
    line += f"; scores to {'standard output' if summary['output'] == STDIO else summary['output']}"
    if summary.get("incidents_output"):
        line += f", incidents to {summary['incidents_output']}"
    if summary.get("rows_between_windows"):
        line += f"; {summary['rows_between_windows']} rows between windows have no score (stride > window length)"
    return line
