"""The one scoring loop of batch (:mod:`agents.score_files`) and live (:mod:`agents.live_scoring`) scoring.

Both cut row blocks into windows and hand each batch to a scorer (:class:`WindowScorer` or, for ``--per-step``,
:class:`StepScorer`); only the sinks of the rows differ. Columns and behaviour: docs/scoring.md.
Per-step windows are scored at fixed places in padded batches of :data:`STEP_BATCH`, so a file and the same rows
piped give byte-identical output. :func:`normalised_blocks` standardises a per-recording run's input.
"""
from __future__ import annotations

import csv
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from agents.detector.detector import Detector
from agents.detector.scaler import overflow_text, too_large
from agents.detector.streaming import Incident, PointAccumulator
from agents.detector.thresholds import adaptive_thresholds
from agents.score_rows import (INCIDENT_HEADER, IncidentStream, Scoring, adapt_rate, score_cells, score_columns,
                               window_header, window_rows)
from datasets.csv_reading import Block, iter_windows
from datasets.csv_recordings import by_reference, normalise_by_training_part, row_flags
from datasets.splits import training_windows
from utils.core.errors import CheckpointError, DataError

#: Windows per forward pass of per-step scoring (at most the run's ``evaluation.batch_size``).
STEP_BATCH = 256

#: start rows (n,) (None: ready windows), windows (n, T, F), text at the starts (n, K) or None
Batch = tuple[np.ndarray | None, np.ndarray, np.ndarray | None]
Found = list[tuple[int, Incident]]


def score_batches(scorer: WindowScorer | StepScorer, batches: Iterable[Batch],
                  write: Callable[[list[list[Any]], Found], None], check: Callable[[], None] | None = None) -> None:
    """Score every batch of windows and write what became final; ``check`` runs after each write."""
    for starts, windows, times in batches:
        write(*scorer.add(starts, windows, times))
        if check is not None:
            check()


class Sink:
    """Where the rows go: the scores CSV, and the incidents CSV or else readable lines on ``messages``; each write
    flushed (live output is read as it comes)."""

    def __init__(self, header: list[str], scores: TextIO, incidents: TextIO | None, stream: IncidentStream | None,
                 messages: TextIO | None = None) -> None:
        self.handles, self.stream, self.messages = (scores, incidents), stream, messages
        self.scores, self.incidents = csv.writer(scores), incidents and csv.writer(incidents)
        self([header], [])
        if incidents is not None:
            self.incidents.writerow(INCIDENT_HEADER)
            incidents.flush()

    def __call__(self, rows: list[list[Any]], found: Found) -> None:
        """Score rows, then the incidents they closed."""
        if rows:
            self.scores.writerows(rows)
            self.handles[0].flush()
        for number, incident in found:
            if self.incidents is None:
                print(f"incident {number}: {incident.text(self.stream.threshold)}", file=self.messages, flush=True)
            else:
                self.incidents.writerow(self.stream.row_of(number, incident))
                self.handles[1].flush()


class WindowScorer:
    """One scores-CSV row per window; incidents from the windows' scores (None: ready windows have no rows).

    A scorer's :meth:`add` and :meth:`finish` give the output rows and the ``(number, incident)`` closed; ``unit``
    says what a row is, ``windows`` counts the windows scored and ``alarms`` the alarmed rows by score.

    Args:
        time_column: the input's timestamp column (its text at each window's start is written), or None.
    """

    unit = "windows"

    def __init__(self, scoring: Scoring, incidents: IncidentStream | None, time_column: str | None) -> None:
        self.scoring, self.incidents, self.time_column = scoring, incidents, time_column
        self.windows = 0
        self.alarms = {n: 0 for n in scoring.names}

    def header(self) -> list[str]:
        return window_header(self.scoring, self.time_column)

    def add(self, starts: np.ndarray, windows: np.ndarray, times: np.ndarray | None) -> tuple[list[list[Any]], Found]:
        scores, contrib = self.scoring.score(windows)
        flags = self.scoring.flags(scores)
        rows = window_rows(self.scoring, self.windows, starts, times, scores, contrib, flags)
        self.windows += len(windows)
        for n in self.alarms:
            self.alarms[n] += int(flags[n].sum())
        return rows, [] if self.incidents is None else self.incidents.add(starts, scores, contrib)

    def finish(self) -> tuple[list[list[Any]], Found]:
        return [], [] if self.incidents is None else self.incidents.finish()


class StepScorer:
    """One row per time step, handed out once no later window covers it; incidents from the same values.

    A step takes the ``evaluation.point_aggregation`` of its windows' scores and contributions.

    Args:
        incidents: the incidents of the primary score; its ``times`` (the input's timestamps) give the time column.
        eager: score the windows as they come (live); else in full batches (a file: fewer forward passes).
    """

    unit = "time steps"

    def __init__(self, scoring: Scoring, incidents: IncidentStream, time_column: str | None, eager: bool) -> None:
        self.scoring, self.incidents, self.time_column, self.eager = scoring, incidents, time_column, eager
        detector = scoring.detector
        self.features = np.asarray(detector.feature_names)
        self.batch = max(1, min(detector.batch_size, STEP_BATCH))
        self.points = PointAccumulator(detector.window_length, incidents.aggregation,
                                       len(scoring.names) + len(self.features), strict=True)
        self.primary = scoring.names.index(incidents.score_name)
        self.windows, self.steps = 0, 0
        self.alarms = {n: 0 for n in scoring.names}
        # per-step thresholds with evaluation.threshold_adapt_rate (none when it is 0)
        self.adaptive = adaptive_thresholds(scoring.calibration, detector.false_alarm_rate, adapt_rate(detector))
        self._queue: list[tuple[np.ndarray, np.ndarray]] = []  # windows not scored yet, in order

    def header(self) -> list[str]:
        return ["row", *(["time"] if self.time_column else []), *score_columns(self.scoring), "top_feature"]

    def add(self, starts: np.ndarray, windows: np.ndarray, times: np.ndarray | None) -> tuple[list[list[Any]], Found]:
        self._queue.append((starts, windows))
        return self._score(everything=self.eager)

    def finish(self) -> tuple[list[list[Any]], Found]:
        rows, found = self._score(everything=True)
        more_rows, more_found = self._steps(*self.points.finish())
        return rows + more_rows, found + more_found + self.incidents.finish()

    def _score(self, everything: bool) -> tuple[list[list[Any]], Found]:
        """Score the queued windows (all of them, or only whole batches); the time steps they made final."""
        rows: list[list[Any]] = []
        found: Found = []
        queued = sum(len(s) for s, _ in self._queue)
        place = self.windows % self.batch
        while queued and (everything or place + queued >= self.batch):
            take = min(queued, self.batch - place)
            starts, windows = (np.concatenate(a) for a in zip(*self._queue))
            self._queue = [(starts[take:], windows[take:])]
            starts, windows = starts[:take], windows[:take]
            padded = np.broadcast_to(windows[:1], (self.batch, *windows.shape[1:])).copy()
            padded[place: place + take] = windows
            scores, contrib = self.scoring.score(padded)
            values = np.column_stack([*(scores[n][place: place + take] for n in self.scoring.names),
                                      contrib[place: place + take]])
            new_rows, new_found = self._steps(*self.points.add(starts, values))
            rows += new_rows
            found += new_found
            self.windows += take
            queued -= take
            place = self.windows % self.batch
        return rows, found

    def _steps(self, first: int, values: np.ndarray) -> tuple[list[list[Any]], Found]:
        """The output rows of final time steps ``first..`` with values (m, scores + F), and incidents they closed."""
        m = len(values)
        if m == 0:
            return [], []
        names = self.scoring.names
        times = self.incidents.times.take(first, m) if self.incidents.times is not None else None
        scores = {n: values[:, i] for i, n in enumerate(names)}
        contrib = values[:, len(names):]
        limits = {n: a.thresholds(scores[n]) for n, a in self.adaptive.items()}
        flags = self.scoring.flags(scores, limits)
        top = self.features[contrib.argmax(axis=1)]
        for n in names:
            self.alarms[n] += int(flags[n].sum())
        self.steps += m
        rows = [[first + i, *([times[1][i]] if times is not None else []), *cells, top[i]]
                for i, cells in enumerate(score_cells(scores, flags, self.scoring.p_values(scores)))]
        found = self.incidents.track(first, np.column_stack([values[:, self.primary], contrib]), times,
                                     limits.get(self.incidents.score_name))
        return rows, found


def check_stride(stride: int | None, window_length: int, per_step: bool) -> None:
    """A positive ``--stride``; per-step scoring needs every row covered: a stride of at most the window length."""
    if stride is not None and stride < 1:
        raise DataError(f"--stride: expected a positive number of rows, got {stride}")
    if per_step and stride is not None and stride > window_length:
        raise DataError(f"--stride {stride} with --per-step: windows {stride} rows apart leave rows between them "
                        f"without a score; give a stride of at most the window length {window_length} (default 1)")


def too_few_rows(source: str | Path, rows: int, window_length: int) -> DataError:
    """The error of an input that ended before its first window."""
    return DataError(f"{source}: {rows} rows, fewer than one window of {window_length} rows "
                     "(the model's trained window length)")


def row_batches(blocks: Iterable[Block], reference: Reference | None, detector: Detector, source: str | Path,
                stride: int, batch: int, cover: bool = False) -> Iterator[Batch]:
    """The windows of an input's row blocks, standardised (:func:`normalised_blocks`) and checked, in batches.

    Args:
        cover: end with a window over the final rows where the stride did not (per-step scoring; see
            :func:`~datasets.csv_reading.iter_windows`).
    """
    blocks = checked_magnitudes(normalised_blocks(blocks, reference), detector, source)
    yield from iter_windows(blocks, detector.window_length, stride, batch, cover)


# ----- per-recording normalisation --------------------------------------------------------
@dataclass
class Reference:
    """How an input is standardised as the run standardised each of its recordings.

    Attributes:
        rows: R, the first rows whose mean and standard deviation standardise every row.
        label_columns: the blocks' last text columns; their labelled rows are left out of the reference (as
            ``data.train_labels="exclude"`` did in training); empty: every reference row counts.
        given: R came from ``--reference-rows`` (for messages).
        training_rows: the first rows whose windows fit the run's per-recording scores; None: the run has none.
        stride: ``data.stride``, between those windows' starts.
        window_length: T of those windows.
        windows: the input's standardised training windows (N, T, F), cut as a recording's were in training, once
            its first R rows are read (:func:`normalised_blocks`).
    """

    rows: int
    label_columns: list[str]
    source: str
    given: bool = False
    training_rows: int | None = None
    stride: int = 1
    whiten: bool = False
    window_length: int = 1
    windows: np.ndarray | None = None


def recording_reference(detector: Detector, header: list[str] | None, source: str,
                        reference_rows: int | None = None) -> Reference | None:
    """The input's :class:`Reference` for a run normalised per recording, else None.

    Args:
        header: the input's columns (None: an array, which has no label columns).
        reference_rows: ``--reference-rows``: R instead of the run's.

    Raises:
        DataError: ``reference_rows`` below 1, or given for a run that did not normalise per recording.
        CheckpointError: R unknown (a best.pt saved before it recorded R, and a ``data.train_end`` that is no row).
    """
    if reference_rows is not None and reference_rows < 1:
        raise DataError(f"--reference-rows: expected a positive number of rows, got {reference_rows}")
    if not detector.normalised_per_recording:
        if reference_rows is not None:
            raise DataError("--reference-rows: this run did not standardise its recordings (data.normalize is not "
                            "\"per_recording\"), so its inputs are scored as they are; leave --reference-rows out")
        return None
    rows = reference_rows if reference_rows is not None else detector.reference_rows
    if rows is None:
        raise CheckpointError(f"{source}: this run standardised each recording by its training part "
                              f"(data.normalize=per_recording), but its best.pt predates recording how many rows "
                              f"that was and data.train_end={detector.config['data'].get('train_end')!r} is no row; "
                              "give --reference-rows N (the rows of a recording's training part) or train the run "
                              "again")
    columns = detector.data_columns
    labels = [c for c in dict.fromkeys([*columns["label_columns"], columns["label_column"]]) if c]
    exclude = detector.config["data"].get("train_labels") != "ignore"
    training = None
    if detector.per_recording:
        training = (detector.recording or {}).get("training_rows")
        if training is None:
            raise CheckpointError(f"{source}: the scores {detector.per_recording} are fitted on each recording's "
                                  "training windows, but this best.pt does not record how many rows precede a "
                                  "recording's validation stretch (scoring.recording.training_rows); train the run "
                                  "again")
        training = min(int(training), int(rows))
    return Reference(int(rows), [c for c in labels if header and c in header] if exclude else [], source,
                     reference_rows is not None, training, int(detector.config["data"].get("stride") or 1),
                     whiten=detector.config["data"].get("normalize") == "per_recording_whitened",
                     window_length=detector.window_length)


def normalised_blocks(blocks: Iterable[Block], reference: Reference | None) -> Iterator[Block]:
    """The blocks standardised (float32) by the input's first ``reference.rows`` rows, held until they arrived.

    The label text columns are dropped from the blocks handed on; None: blocks unchanged.

    Raises:
        DataError: the input ends before R rows, or its reference rows are all labelled.
    """
    if reference is None:
        yield from blocks
        return
    k = len(reference.label_columns)
    blocks = iter(blocks)
    held: list[Block] = []
    count = 0
    for block in blocks:
        held.append(block)
        count += len(block.values)
        if count >= reference.rows:
            break
    else:
        whence = "--reference-rows" if reference.given else "the run's training part of a recording"
        setting = ("data.normalize=per_recording_whitened: standardised, then decorrelated" if reference.whiten
                   else "data.normalize=per_recording: standardised")
        raise DataError(f"{reference.source}: {count} rows, fewer than the {reference.rows} reference rows "
                        f"({whence}): this run normalised each recording by its training part ({setting}), so "
                        f"an input is one recording normalised by its first {reference.rows} rows, taken as "
                        "normal operation; score a longer recording, or give --reference-rows N for fewer (less "
                        "exact) reference rows")
    values = np.concatenate([b.values for b in held]).astype(np.float32)
    labels = (row_flags(np.concatenate([b.text[:, b.text.shape[1] - k:] for b in held]), reference.label_columns,
                        reference.source, np.concatenate([b.line_nos for b in held]))[0] if k
              else np.zeros(len(values), dtype=np.int64))
    try:
        values, stats = normalise_by_training_part(values, labels, reference.rows, use_labelled=False,
                                                   whiten=reference.whiten)
    except DataError:
        raise DataError(f"{reference.source}: every one of the first {reference.rows} rows is labelled anomalous "
                        f"(columns {reference.label_columns}), so none is left to standardise the recording by "
                        "(the run leaves labelled rows out of a recording's training part)") from None
    if reference.training_rows is not None:
        reference.windows = training_windows(values, labels.astype(bool), reference.training_rows,
                                             reference.window_length, reference.stride)
    for block, part in zip(held, np.split(values, np.cumsum([len(b.values) for b in held])[:-1])):
        yield _without_labels(block, part, k)
    for block in blocks:
        yield _without_labels(block, by_reference(block.values.astype(np.float32), stats), k)


def checked_magnitudes(blocks: Iterable[Block], detector: Detector, source: str | Path) -> Iterator[Block]:
    """The blocks unchanged; DataError naming the first value too large once scaled (:mod:`agents.detector.scaler`)."""
    for block in blocks:
        bad = too_large(detector.scaler.unchecked(block.values))
        if bad is not None:
            (r, c), value = bad
            line = f" (line {int(block.line_nos[r])})" if block.line_nos is not None else ""
            raise DataError(f"{source}: row {block.first_row + r}{line}, column {detector.feature_names[c]!r}: value "
                            f"{float(block.values[r, c]):.6g}, {overflow_text(value)}")
        yield block


def _without_labels(block: Block, values: np.ndarray, k: int) -> Block:
    """The block with ``values`` and without its last ``k`` text columns (None when no text is left)."""
    text = block.text
    if k:
        text = text[:, : text.shape[1] - k] if text.shape[1] > k else None
    return Block(block.first_row, values, text, block.line_nos)

