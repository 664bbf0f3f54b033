"""The one scoring loop of batch (:mod:`agents.score_files`) and live (:mod:`agents.live_scoring`) scoring.

Both read row blocks (a file's, or a pipe's as they arrive), cut them into windows
(:func:`datasets.csv_windows.iter_windows`; :func:`covering_windows` for per-step scoring) and hand
each batch to a scorer, whose output rows and closed incidents go to a sink: the atomic files of batch
scoring, or flushed lines live (:func:`score_batches`, then :func:`finish`). Only the sinks differ.

* :class:`WindowScorer`: one row per window (the default), columns :func:`agents.score_rows.window_header`.
* :class:`StepScorer` (``--per-step``): one row per time step, written once no later window covers it,

      row, [time], score_<name>..., alarm_<name>..., pvalue_<name>..., top_feature

  the columns of a run's ``out/stream_scores.csv`` (without its label and kind) plus the p-values and the
  top sensor. A time step takes the run's ``evaluation.point_aggregation`` (default max) of the scores of
  the windows covering it (:class:`agents.detector.streaming.PointAccumulator`), and of their per-sensor
  contributions (``top_feature`` is the largest); ``alarm_<name>`` is that score above the window
  threshold (with the max: one of its windows alarmed; with the run's ``evaluation.threshold_adapt_rate``,
  above its adaptive threshold, :class:`agents.detector.thresholds.AdaptiveThreshold`), ``pvalue_<name>`` its
  conformal p-value against the window calibration scores. Windows are scored in batches of :data:`STEP_BATCH` at fixed places
  (window ``k`` always at place ``k % STEP_BATCH`` of a batch of that size, the rest padding), so every
  window's arithmetic is the same however the rows arrived: a file and the same rows piped give
  byte-identical output.

A run that standardised each recording by its own training part (``data.normalize="per_recording"``)
scores an input as one recording standardised the same way: :func:`normalised_blocks`, one stage on the
row blocks of file and pipe alike, holds the first R rows (:func:`recording_reference`), standardises
every row by their mean and standard deviation (:func:`datasets.csv_recordings.normalise_by_training_part`)
and hands the blocks on, the held ones first. Other runs' blocks pass through untouched.
"""
from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from agents.detector.detector import Detector
from agents.detector.scaler import overflow_text, too_large
from agents.detector.streaming import Incident, PointAccumulator
from agents.score_rows import IncidentStream, Scoring, exact, window_header, window_rows
from datasets.csv_columns import row_flags
from datasets.csv_reading import Block
from datasets.csv_recordings import by_reference, normalise_by_training_part
from datasets.csv_windows import iter_windows
from datasets.stream_split import training_windows
from utils.core.errors import CheckpointError, DataError

#: Windows per forward pass of per-step scoring (at most the run's ``evaluation.batch_size``).
STEP_BATCH = 256

Batch = tuple[np.ndarray, np.ndarray, np.ndarray | None]  # start rows (n,), windows (n, T, F), text at starts
Found = list[tuple[int, Incident]]


class Scorer(Protocol):
    """What the loop drives: output rows and closed incidents per batch of windows."""

    unit: str  # what a row is: "windows" or "time steps"
    scoring: Scoring
    incidents: IncidentStream | None
    windows: int  # scored so far
    alarms: dict[str, int]  # alarmed rows so far, by score

    def header(self) -> list[str]: ...

    def add(self, starts: np.ndarray, windows: np.ndarray, times: np.ndarray | None) -> tuple[list[list[Any]], Found]:
        ...

    def finish(self) -> tuple[list[list[Any]], Found]: ...


def score_batches(scorer: Scorer, batches: Iterable[Batch], write: Callable[[list[list[Any]], Found], None],
                  check: Callable[[], None] | None = None) -> None:
    """Score every batch of windows and write what became final; ``check`` runs after each write."""
    for starts, windows, times in batches:
        write(*scorer.add(starts, windows, times))
        if check is not None:
            check()


def finish(scorer: Scorer, write: Callable[[list[list[Any]], Found], None]) -> None:
    """The end of the input: write the rows still held and the open incident."""
    write(*scorer.finish())


class WindowScorer:
    """One scores-CSV row per window; incidents from the windows' scores (None: ready windows have no rows).

    Args:
        scoring: the scores to write.
        incidents: the incidents of the primary score, or None.
        time_column: the input's timestamp column (its text at each window's start is written), or None.
        numbered: windows have start rows (False: ready windows, the start_row column is empty).
    """

    unit = "windows"

    def __init__(self, scoring: Scoring, incidents: IncidentStream | None, time_column: str | None,
                 numbered: bool = True) -> None:
        self.scoring, self.incidents, self.time_column, self.numbered = scoring, incidents, time_column, numbered
        self.windows = 0
        self.alarms = {n: 0 for n in scoring.names}

    def header(self) -> list[str]:
        return window_header(self.scoring, self.time_column)

    def add(self, starts: np.ndarray, windows: np.ndarray, times: np.ndarray | None) -> tuple[list[list[Any]], Found]:
        scores, contrib = self.scoring.score(windows)
        flags = self.scoring.flags(scores)
        rows = window_rows(self.scoring, self.windows, starts if self.numbered else None, times, scores, contrib,
                           flags)
        self.windows += len(windows)
        for n in self.alarms:
            self.alarms[n] += int(flags[n].sum())
        return rows, [] if self.incidents is None else self.incidents.add(starts, scores, contrib)

    def finish(self) -> tuple[list[list[Any]], Found]:
        return [], [] if self.incidents is None else self.incidents.finish()


class StepScorer:
    """One row per time step, handed out once final (module docstring); incidents from the same values.

    Args:
        scoring: the scores to write.
        incidents: the incidents of the primary score; its ``times`` (the input's timestamps) give the time column.
        time_column: the input's timestamp column, or None.
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
        self.adaptive = scoring.adaptive()  # per-step thresholds with evaluation.threshold_adapt_rate
        self._queue: list[tuple[np.ndarray, np.ndarray]] = []  # windows not scored yet, in order

    def header(self) -> list[str]:
        names = self.scoring.names
        return (["row", *(["time"] if self.time_column else []), *[f"score_{n}" for n in names],
                 *[f"alarm_{n}" for n in names], *[f"pvalue_{n}" for n in self.scoring.p_names], "top_feature"])

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
            starts, windows = self._dequeue(take)
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

    def _dequeue(self, n: int) -> tuple[np.ndarray, np.ndarray]:
        """The first ``n`` queued windows ``(starts (n,), windows (n, T, F))``."""
        starts, windows = np.concatenate([s for s, _ in self._queue]), np.concatenate([w for _, w in self._queue])
        self._queue = [(starts[n:], windows[n:])] if n < len(starts) else []
        return starts[:n], windows[:n]

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
        flags, p_values = self.scoring.flags(scores, limits), self.scoring.p_values(scores)
        top = self.features[contrib.argmax(axis=1)]
        for n in names:
            self.alarms[n] += int(flags[n].sum())
        self.steps += m
        rows = []
        for i in range(m):
            rows.append([first + i, *([times[1][i]] if times is not None else []),
                         *[exact(scores[n][i]) for n in names], *[int(flags[n][i]) for n in names],
                         *[exact(p[i]) for p in p_values.values()], top[i]])
        found = self.incidents.track(first, np.column_stack([values[:, self.primary], contrib]), times,
                                     limits.get(self.incidents.score_name))
        return rows, found


def check_per_step(stride: int | None, window_length: int) -> None:
    """Per-step scoring needs every row covered: a stride of at most the window length."""
    if stride is not None and stride > window_length:
        raise DataError(f"--stride {stride} with --per-step: windows {stride} rows apart leave rows between them "
                        f"without a score; give a stride of at most the window length {window_length} (default 1)")


def covering_windows(blocks: Iterable[Block], window_length: int, stride: int, batch: int) -> Iterator[Batch]:
    """:func:`~datasets.csv_windows.iter_windows`, plus at the end a window over the last ``window_length`` rows
    when the stride did not end there (as :func:`utils.metrics.ranges.covering_starts`), so every row is covered."""
    tail = _Tail(window_length)
    last = -1
    for starts, windows, text in iter_windows(tail.watch(blocks), window_length, stride, batch):
        last = int(starts[-1])
        yield starts, windows, text
    start = tail.rows - window_length
    if last >= 0 and start != last:
        yield np.array([start], dtype=np.int64), tail.values[None].copy(), tail.text_at_start()


class _Tail:
    """The last ``n`` rows (values and text) of the blocks passed through :meth:`watch`."""

    def __init__(self, n: int) -> None:
        self.n, self.rows = n, 0
        self.values: np.ndarray | None = None
        self.text: np.ndarray | None = None

    def watch(self, blocks: Iterable[Block]) -> Iterator[Block]:
        for block in blocks:
            values = block.values if self.values is None else np.concatenate([self.values, block.values])
            self.values = values[-self.n:].copy()
            if block.text is not None:
                text = block.text if self.text is None else np.concatenate([self.text, block.text])
                self.text = text[-self.n:].copy()
            self.rows = block.first_row + len(block.values)
            yield block

    def text_at_start(self) -> np.ndarray | None:
        """The text columns (1, K) of the first of the last ``n`` rows, or None."""
        return None if self.text is None else self.text[:1]


# ----- per-recording normalisation --------------------------------------------------------
@dataclass
class Reference:
    """How an input is standardised as the run standardised each of its recordings.

    Attributes:
        rows: R, the first rows whose mean and standard deviation standardise every row.
        label_columns: the run's label columns the input holds, read as the blocks' last text columns: their
            labelled rows are left out of the reference, as the run left them out of its training parts
            (``data.train_labels="exclude"``); empty: every reference row counts.
        source: the input's name, for messages.
        given: R came from ``--reference-rows`` (for messages).
        training_rows: the first rows whose windows (at ``stride``) fit the run's per-recording scores, as a
            recording's training windows fitted them (:attr:`Detector.per_recording`); None: the run has none.
        stride: rows between those windows' starts (``data.stride``).
        whiten: the run also whitened its recordings (``data.normalize="per_recording_whitened"``).
        held: the first R rows standardised (R', F) and their labelled flags (R',), once
            :func:`normalised_blocks` has read them.
    """

    rows: int
    label_columns: list[str]
    source: str
    given: bool = False
    training_rows: int | None = None
    stride: int = 1
    held: tuple[np.ndarray, np.ndarray] | None = None
    whiten: bool = False

    def training_windows(self, window_length: int) -> np.ndarray:
        """The input's training windows (N, T, F), standardised: of its first :attr:`training_rows` rows, at
        :attr:`stride`, without labelled rows (as :func:`datasets.stream_split.split_stream` cut a recording's)."""
        if self.held is None or self.training_rows is None:
            raise ValueError("the reference rows have not been read yet")
        values, labels = self.held
        return training_windows(values, labels.astype(bool), self.training_rows, window_length, self.stride)


def recording_reference(detector: Detector, header: list[str] | None, source: str,
                        reference_rows: int | None = None) -> Reference | None:
    """The input's :class:`Reference` for a run normalised per recording, else None.

    Args:
        detector: the run's detector.
        header: the input's columns (None: an array, which has no label columns).
        source: the input's name.
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
                     whiten=detector.config["data"].get("normalize") == "per_recording_whitened")


def normalised_blocks(blocks: Iterable[Block], reference: Reference | None) -> Iterator[Block]:
    """The blocks standardised by the input's first ``reference.rows`` rows (unchanged for None).

    The first R rows are held until they have all arrived; their statistics then standardise them and every
    later row (float32, as the run's recordings). The label text columns of :attr:`Reference.label_columns`
    are dropped from the blocks handed on.

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
    while count < reference.rows:
        block = next(blocks, None)
        if block is None:
            raise DataError(_too_short(reference, count))
        held.append(block)
        count += len(block.values)
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
    reference.held = (values, labels)
    start = 0
    for block in held:
        yield _without_labels(block, values[start: start + len(block.values)], k)
        start += len(block.values)
    for block in blocks:
        yield _without_labels(block, by_reference(block.values.astype(np.float32), stats), k)


def checked_magnitudes(blocks: Iterable[Block], detector: Detector, source: str | Path,
                       features: list[str]) -> Iterator[Block]:
    """The blocks handed on unchanged; DataError naming the file, row (and line) and column of the first value
    whose scaled magnitude the model cannot compute with (:mod:`agents.detector.scaler`, :data:`SCALED_LIMIT`)."""
    for block in blocks:
        bad = too_large(detector.scaler.unchecked(block.values))
        if bad is not None:
            (r, c), value = bad
            line = f" (line {int(block.line_nos[r])})" if block.line_nos is not None else ""
            raise DataError(f"{source}: row {block.first_row + r}{line}, column {features[c]!r}: value "
                            f"{float(block.values[r, c]):.6g}, {overflow_text(value)}")
        yield block


def _without_labels(block: Block, values: np.ndarray, k: int) -> Block:
    """The block with ``values`` and without its last ``k`` text columns (None when no text is left)."""
    text = block.text
    if k:
        text = text[:, : text.shape[1] - k] if text.shape[1] > k else None
    return Block(block.first_row, values, text, block.line_nos)


def _too_short(reference: Reference, count: int) -> str:
    """Why an input shorter than its reference rows cannot be scored."""
    whence = "--reference-rows" if reference.given else "the run's training part of a recording"
    return (f"{reference.source}: {count} rows, fewer than the {reference.rows} reference rows ({whence}): this run "
            f"normalised each recording by its training part ({_normalize_setting(reference)}), so an input is one "
            f"recording normalised by its first "
            f"{reference.rows} rows, taken as normal operation; score a longer recording, or give "
            "--reference-rows N for fewer (less exact) reference rows")


def _normalize_setting(reference: Reference) -> str:
    """The run's ``data.normalize`` value and what it did, for messages."""
    return ("data.normalize=per_recording_whitened: standardised, then decorrelated" if reference.whiten
            else "data.normalize=per_recording: standardised")
