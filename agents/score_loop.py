"""What batch and live scoring (:mod:`agents.score_files`) share: the header check, window scores, rows, timestamps,
incidents and the scorers, which score windows at fixed places in padded batches (:class:`PlacedScoring`), so a file
and the same rows piped give byte-identical output. Columns and behaviour: docs/scoring.md."""
from __future__ import annotations

import csv
import logging
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TextIO

import numpy as np

from agents.detector.detector import Detector
from agents.detector.scaler import overflow_text, too_large
from agents.detector.streaming import INCIDENT_COLUMNS, Incident, IncidentTracker, PointAccumulator
from agents.detector.thresholds import adaptive_thresholds, conformal_p_values
from agents.fitting_configs import configs_reading, trained_on
from datasets.csv_reading import GAP_PERIODS, RATE_RATIO, Block, PreviousFill, iter_windows, parse_times
from datasets.csv_recordings import by_reference, normalise_by_training_part, row_flags
from datasets.splits import training_windows
from utils.core.arrays import predict
from utils.core.errors import CheckpointError, DataError
from utils.runs.outputs import check_output

#: Steps of time an input's rate is judged on (:class:`RowTimes`).
RATE_ROWS = 20

logger = logging.getLogger("anomaly")

#: The incidents CSV: :data:`agents.detector.streaming.INCIDENT_COLUMNS`, the score they are of and its threshold.
INCIDENT_HEADER = (*INCIDENT_COLUMNS, "score", "threshold")
#: Windows per forward pass of scoring (at most the run's ``evaluation.batch_size``).
SCORE_BATCH = 256
#: start rows (n,) (None: ready windows), windows (n, T, F), text at the starts (n, K) or None
Batch = tuple[np.ndarray | None, np.ndarray, np.ndarray | None]
#: ``(number, incident)`` of the incidents closed, numbered from 1 in order
Found = list[tuple[int, Incident]]


def check_columns(header: list[str], detector: Detector, source: str) -> str | None:
    """Check a CSV header holds every feature, and besides them only the run's timestamp, label and ignored columns;
    the timestamp column when the header has it, else None."""
    features, data = list(detector.feature_names), detector.data_columns
    declared = [data.get("timestamp_column"), data.get("label_column"), *data.get("label_columns", []),
                *data.get("ignore_columns", [])]
    ignorable = [c for c in dict.fromkeys(declared) if c]
    have, known = set(header), set(features) | set(ignorable)  # sets: a header may hold 100,000 columns
    missing = [c for c in features if c not in have]
    unexpected = [c for c in header if c not in known]
    if missing or unexpected:
        parts = [f"{what} column(s) {cols}" for what, cols in (("missing", missing), ("unexpected", unexpected)) if cols]
        fitting = [str(path) for path in configs_reading(source)]
        hint = (f"; {' and '.join(fitting)} train{'s' if len(fitting) == 1 else ''} on this file: train "
                f"{'it' if len(fitting) == 1 else 'one'} and score with it" if fitting
                else "; score with a run trained on data with these columns")
        raise DataError(f"{source}: line 1: {'; '.join(parts)}; the run loaded ({detector.config.get('exp_name')}, "
                        f"trained on {trained_on(detector.config)}) takes the features {features}"
                        + (f" (columns {ignorable} may also be present)" if ignorable else "") + hint)
    time_column = data.get("timestamp_column")
    return time_column if time_column in header else None


def missing_fill(detector: Detector, source: str | Path) -> PreviousFill | None:
    """What fills an input's missing cells as the run's did (``data.missing_values="previous"``); None: refused."""
    fill = detector.data_columns["missing_values"] == "previous"
    return PreviousFill(source, list(detector.feature_names)) if fill else None


def separator_hint(detector: Detector) -> str:
    """What to do when an input's header is not separated as the run's files were, for messages."""
    if (separator := detector.data_columns.get("separator")) is None:
        return "; separate the fields by one of , ; tab |"
    return f"; this run reads files separated by {separator!r} (data.separator): write the input so"


def checked_incidents_path(incidents: str | Path | None, scores: Path | None, overwrite: bool,
                           inputs: tuple[str | Path, ...], config: str | Path | None = None) -> Path | None:
    """The incidents file, checked (:func:`utils.runs.outputs.check_output`): ``--incidents``, else
    ``scores.incidents.csv`` beside the ``scores`` file (None: standard output), else None."""
    path = (Path(incidents) if incidents is not None else None if scores is None
            else scores.with_name(f"{scores.stem}.incidents.csv"))
    if path is None:
        return None
    if scores is not None and path.resolve() == scores.resolve():
        raise DataError(f"--incidents {path}: is the --output file; give the incidents another file")
    return check_output(path, overwrite, inputs, "--incidents" if incidents is not None else "the incidents file",
                        config, example="scores.incidents.csv")


# ----- scores of windows ----------------------------------------------------------------
class Scoring:
    """The scores of raw windows: the detector's, and with ``baselines`` the run's baselines' too (named by their
    display names, as in ``metrics.json``; they score the scaled windows)."""

    def __init__(self, detector: Detector, baselines: bool = False) -> None:
        self.detector = detector
        #: the input's :class:`Reference`: its training windows fit the per-recording scores
        self.reference: Reference | None = None
        self._recording_statistics: dict[str, Any] | None = None
        if baselines and not detector.baselines:
            why = ("this run's best.pt holds no fitted baselines: the run predates --baselines (best.pt keeps them "
                   "since); train the run again to score them, or" if detector.baselines is None
                   else "this run has no baselines (its evaluation.baselines is empty);")
            raise CheckpointError(f"--baselines: {why} leave out --baselines")
        self._baselines = {b.fitted.display_name: b for b in detector.baselines.values()} if baselines else {}
        self.names = [*detector.score_names, *self._baselines]
        self.thresholds = {**detector.thresholds, **{n: b.promise.threshold for n, b in self._baselines.items()}}
        self.calibration = {**detector.calibration, **{n: b.calibration for n, b in self._baselines.items()}}

    @property
    def p_names(self) -> list[str]:
        """The scores with calibration scores (p-values)."""
        return [n for n in self.names if n in self.calibration]

    def score(self, windows: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray]:
        """``(scores {name: (n,)}, contributions (n, F))`` of raw windows (n, T, F)."""
        x = self.detector.prepare(windows)
        scores, contrib = self.detector.analyse(x, self.recording_statistics())
        if self._baselines:
            scaled = x.detach().cpu().double().numpy()
            scores.update({name: b.score(scaled) for name, b in self._baselines.items()})
        return scores, contrib

    def recording_statistics(self) -> dict[str, Any] | None:
        """The per-recording scores' statistics, fitted once on the input's training windows (or None)."""
        if not self.detector.per_recording:
            return None
        if self._recording_statistics is None:
            windows = self.reference.windows
            if len(windows) < 2:
                ref, needed = self.reference, self.detector.window_length + self.reference.stride
                fix = (f"give --reference-rows {needed} or more, or leave it out" if ref.given
                       else "score a longer recording")
                raise DataError(f"{ref.source}: the scores {self.detector.per_recording} are fitted on the "
                                f"recording's training windows (of its first {ref.training_rows} rows, windows of "
                                f"{self.detector.window_length} rows every {ref.stride}), and it holds "
                                f"{len(windows)}, fewer than 2; {fix}")
            self._recording_statistics = self.detector.reference_statistics(self.detector.prepare(windows))
        return self._recording_statistics

    def flags(self, scores: dict[str, np.ndarray],
              limits: dict[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """Alarms ``{name: (n,) 0/1}``: the score above its threshold, or above its ``limits`` (n,) where given."""
        limits = limits or {}
        return {n: (s > limits[n]).astype(np.int64) if n in limits else predict(s, self.thresholds[n])
                for n, s in scores.items()}

    def p_values(self, scores: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Conformal p-values ``{name: (n,)}`` of the scores with calibration scores."""
        return {n: conformal_p_values(self.calibration[n], scores[n]) for n in self.p_names}


def adapt_rate(detector: Detector) -> float:
    """The run's ``evaluation.threshold_adapt_rate`` (0: the calibrated thresholds stay)."""
    return detector.config.get("evaluation", {}).get("threshold_adapt_rate") or 0.0


# ----- window rows ---------------------------------------------------------------------
def exact(value: float) -> str:
    """A score, p-value or threshold as written: ``repr``, which reads back as the same float64 (exact alarms)."""
    return repr(float(value))


def score_columns(scoring: Scoring) -> list[str]:
    """The columns of the scores, their alarms and their p-values, in every scores CSV."""
    names = scoring.names
    return [f"score_{n}" for n in names] + [f"alarm_{n}" for n in names] + [f"pvalue_{n}" for n in scoring.p_names]


def score_cells(scores: dict[str, np.ndarray], flags: dict[str, np.ndarray],
                p_values: dict[str, np.ndarray]) -> list[tuple[Any, ...]]:
    """The cells of :func:`score_columns` per row, as written; each argument ``{name: (n,)}``."""
    return list(zip(*([exact(v) for v in s] for s in scores.values()), *(f.tolist() for f in flags.values()),
                    *([exact(v) for v in p] for p in p_values.values())))


def window_header(scoring: Scoring, time_column: str | None, labelled: bool = False) -> list[str]:
    """The scores CSV's columns; ``labelled``: with ``label`` and ``kind`` after the start (a run's test windows)."""
    cols = ["window", "start_row"] + ([f"start_{time_column}"] if time_column else [])
    cols += ["label", "kind"] if labelled else []
    return cols + score_columns(scoring) + [f"contrib_{f}" for f in scoring.detector.feature_names] + ["top_feature"]


def window_rows(scoring: Scoring, number: int, starts: np.ndarray | None, start_times: np.ndarray | None,
                scores: dict[str, np.ndarray], contrib: np.ndarray, flags: dict[str, np.ndarray],
                labels: tuple[np.ndarray, np.ndarray] | None = None) -> list[list[Any]]:
    """The scores-CSV rows of windows numbered from ``number``: ``starts`` (n,) or None (ready windows have none),
    ``start_times`` (n, 1) timestamp text or None, ``labels`` ``(label (n,), kind (n,))`` of labelled windows or None."""
    top = np.asarray(scoring.detector.feature_names)[contrib.argmax(axis=1)]
    return [[number + i, "" if starts is None else int(starts[i]),
             *([start_times[i, 0]] if start_times is not None else []),
             *([int(labels[0][i]), labels[1][i]] if labels is not None else []),
             *cells, *[f"{v:.6g}" for v in contrib[i]], top[i]]
            for i, cells in enumerate(score_cells(scores, flags, scoring.p_values(scores)))]


# ----- times -----------------------------------------------------------------------------
class RowTimes:
    """The timestamp column of the rows read so far, kept from the first row not yet handed out; numbers are seconds,
    ISO dates/times seconds since the first row's. An input sampled at another rate than ``trained_period`` (seconds;
    None: unknown) by its first :data:`RATE_ROWS` rows' median step is warned of once."""

    def __init__(self, source: str | Path, column: str, trained_period: float | None = None) -> None:
        self.source, self.column, self.trained_period = source, column, trained_period
        self.base = 0  # row of self.text[0]
        self.text, self.seconds = np.zeros(0, dtype=str), np.zeros(0)
        self._last: tuple[str, int] | None = None  # the previous row's text and line: times never go backwards
        self._origin: np.datetime64 | None = None
        # the first RATE_ROWS steps, until the rate is checked
        self._steps: list[np.ndarray] | None = None if trained_period is None else []
        self._previous: float | None = None  # the last row's seconds: a jump across blocks is seen too
        self._jump_told = trained_period is None

    def add(self, block: Block) -> None:
        """Take the timestamps of a block's rows (its text column 0), checked as a file's are."""
        texts, lines = block.text[:, 0], block.line_nos
        if self._last is not None:
            texts, lines = np.concatenate([[self._last[0]], texts]), np.concatenate([[self._last[1]], lines])
        try:
            times = parse_times(texts, self.source, self.column, lines)
        except DataError as err:
            shift = block.first_row - (1 if self._last is not None else 0)  # rows of the whole input in the message
            raise DataError(re.sub(r": row (\d+)", lambda m: f": row {int(m.group(1)) + shift}", str(err),
                                   count=1)) from None
        if self._last is not None:
            texts, times = texts[1:], times[1:]
        if times.dtype.kind == "M":
            self._origin = times[0] if self._origin is None else self._origin
            times = (times - self._origin) / np.timedelta64(1, "s")
        self._last = (str(texts[-1]), int(lines[-1]))
        if self._steps is not None:
            self._steps.append(np.diff(np.concatenate([self.seconds[-1:], times])))
            if len(steps := np.concatenate(self._steps)) >= RATE_ROWS:
                self._steps = None
                period, trained = float(np.median(steps)), self.trained_period
                if period > 0 and not trained / RATE_RATIO <= period <= trained * RATE_RATIO:
                    logger.warning("%s: column %r steps every %.6g s, but the run was trained on rows every %.6g s: "
                                   "a window of its rows spans %.3g times the time the model learnt from; resample "
                                   "the input to the run's rate", self.source, self.column, period, trained,
                                   period / trained)
        steps = np.diff(np.concatenate([[] if self._previous is None else [self._previous], times]))
        if not self._jump_told and len(jumps := np.flatnonzero(steps >= GAP_PERIODS * self.trained_period)):
            self._jump_told = True
            logger.warning("%s: row %d, column %r: time jumps %.6g s (the run's rows are %.6g s apart): windows across "
                           "it join rows that were not consecutive; later jumps are not reported", self.source,
                           block.first_row + int(jumps[0]) + (self._previous is None), self.column,
                           float(steps[jumps[0]]), self.trained_period)
        self._previous = float(times[-1]) if len(times) else self._previous
        self.text, self.seconds = np.concatenate([self.text, texts]), np.concatenate([self.seconds, times])

    def take(self, first: int, n: int) -> tuple[np.ndarray, np.ndarray]:
        """``(seconds (n,), text (n,))`` of rows ``first..first+n-1``; earlier rows are dropped."""
        lo, hi = first - self.base, first - self.base + n
        out = self.seconds[lo:hi], self.text[lo:hi]
        self.text, self.seconds, self.base = self.text[hi:], self.seconds[hi:], first + n
        return out


# ----- incidents -------------------------------------------------------------------------
class IncidentStream:
    """Incidents of the primary score (the detector's first) from window scores fed in start order; ``merge_gap``:
    quiet rows inside one incident (None: the run's, or the window length)."""

    def __init__(self, detector: Detector, merge_gap: int | None = None, times: RowTimes | None = None) -> None:
        evaluation = detector.config.get("evaluation", {})
        if merge_gap is not None and (isinstance(merge_gap, bool) or not isinstance(merge_gap, int) or merge_gap < 0):
            raise DataError(f"--merge-gap: expected a number of rows >= 0, got {merge_gap!r}")
        merge_gap = evaluation.get("incident_merge_gap") if merge_gap is None else merge_gap
        self.score_name = detector.score_names[0]
        self.threshold = float(detector.thresholds[self.score_name])
        self.merge_gap = detector.window_length if merge_gap is None else int(merge_gap)
        self.aggregation = evaluation.get("point_aggregation") or "max"
        self.times = times
        self._points = PointAccumulator(detector.window_length, self.aggregation, 1 + len(detector.feature_names))
        self._tracker = IncidentTracker(self.threshold, self.merge_gap, detector.feature_names)
        own = {name: cal for name, cal in detector.calibration.items() if name == self.score_name}  # only its own
        self._adaptive = adaptive_thresholds(own, detector.false_alarm_rate, adapt_rate(detector)).get(self.score_name)
        self.unscored, self.count = 0, 0

    def add(self, starts: np.ndarray, scores: dict[str, np.ndarray], contrib: np.ndarray) -> Found:
        """The incidents closed by windows starting at ``starts`` (n,), their scores and contributions (n, F)."""
        return self.track(*self._points.add(starts, np.column_stack([scores[self.score_name], contrib])))

    def finish(self) -> Found:
        """The end of the input: ``(number, incident)`` of the incidents still open."""
        return self.track(*self._points.finish()) + self._numbered(self._tracker.close())

    def track(self, first: int, values: np.ndarray, times: tuple[np.ndarray, np.ndarray] | None = None,
              limits: np.ndarray | None = None) -> Found:
        """The incidents closed by final time steps from ``first``: ``values`` (m, 1 + F) the primary score and the
        contributions, ``times`` ``(seconds (m,), text (m,))`` if the caller took them from :attr:`times`, ``limits``
        (m,) the primary score's adaptive thresholds if the caller advanced them."""
        if len(values) == 0:
            return []
        if times is None:
            times = self.times.take(first, len(values)) if self.times is not None else (None, None)
        seconds, text = times
        self.unscored += int(np.isnan(values[:, 0]).sum())
        if limits is None and self._adaptive is not None:
            limits = self._adaptive.thresholds(values[:, 0])
        return self._numbered(self._tracker.update(first, values[:, 0], values[:, 1:], seconds, text, limits))

    def _numbered(self, incidents: list[Incident]) -> Found:
        first, self.count = self.count + 1, self.count + len(incidents)
        return list(enumerate(incidents, start=first))


# ----- the loop ----------------------------------------------------------------------------
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
                self.incidents.writerow([*incident.as_row(number), self.stream.score_name,
                                         f"{self.stream.threshold:.8g}"])
                self.handles[1].flush()


class PlacedScoring:
    """Windows scored at fixed places in padded batches: the k-th window of an input is always scored at place
    ``k % batch`` of a batch of exactly :attr:`batch` windows, however the input's batches come (a forward pass's
    float arithmetic depends on its batch's size), so a file and the same rows piped give the same bytes.
    ``eager``: score windows as they come (live), else in whole batches until :meth:`finish`. :meth:`add` and
    :meth:`finish` give the output rows and the incidents closed (by ``_scored``); ``unit`` says what a row is,
    ``windows`` counts the windows scored and ``alarms`` the alarmed rows by score."""

    unit = ""

    def __init__(self, scoring: Scoring, incidents: IncidentStream | None, time_column: str | None,
                 eager: bool) -> None:
        self.scoring, self.incidents, self.time_column, self.eager = scoring, incidents, time_column, eager
        self.batch = max(1, min(scoring.detector.batch_size, SCORE_BATCH))
        self.windows = 0
        self.alarms = {n: 0 for n in scoring.names}
        self._queue: list[Batch] = []  # windows not scored yet, in order

    def add(self, starts: np.ndarray | None, windows: np.ndarray,
            times: np.ndarray | None) -> tuple[list[list[Any]], Found]:
        self._queue.append((starts, windows, times))
        return self._score(everything=self.eager)

    def finish(self) -> tuple[list[list[Any]], Found]:
        return self._score(everything=True)

    def _score(self, everything: bool) -> tuple[list[list[Any]], Found]:
        """Score the queued windows (all of them, or only whole batches); the rows and incidents they gave."""
        rows, found = [], []
        queued = sum(len(w) for _, w, _ in self._queue)
        while queued and (everything or self.windows % self.batch + queued >= self.batch):
            place = self.windows % self.batch
            take = min(queued, self.batch - place)
            starts, windows, times = (None if parts[0] is None else np.concatenate(parts)
                                      for parts in zip(*self._queue))
            self._queue = [tuple(None if a is None else a[take:] for a in (starts, windows, times))]
            padded = np.broadcast_to(windows[:1], (self.batch, *windows.shape[1:])).copy()
            padded[place: place + take] = windows[:take]
            scores, contrib = self.scoring.score(padded)
            new_rows, new_found = self._scored(None if starts is None else starts[:take],
                                               None if times is None else times[:take],
                                               {n: v[place: place + take] for n, v in scores.items()},
                                               contrib[place: place + take])
            rows += new_rows
            found += new_found
            self.windows += take
            queued -= take
        return rows, found


class WindowScorer(PlacedScoring):
    """One scores-CSV row per window; incidents from the windows' scores (None: ready windows have no rows)."""

    unit = "windows"

    def header(self) -> list[str]:
        return window_header(self.scoring, self.time_column)

    def finish(self) -> tuple[list[list[Any]], Found]:
        rows, found = super().finish()
        return rows, found + ([] if self.incidents is None else self.incidents.finish())

    def _scored(self, starts: np.ndarray | None, times: np.ndarray | None, scores: dict[str, np.ndarray],
                contrib: np.ndarray) -> tuple[list[list[Any]], Found]:
        flags = self.scoring.flags(scores)
        for n in self.alarms:
            self.alarms[n] += int(flags[n].sum())
        rows = window_rows(self.scoring, self.windows, starts, times, scores, contrib, flags)
        return rows, [] if self.incidents is None else self.incidents.add(starts, scores, contrib)


class StepScorer(PlacedScoring):
    """One row per time step, handed out once no later window covers it, the ``evaluation.point_aggregation`` of
    its windows' scores and contributions; incidents from the same values (their ``times`` give the time column)."""

    unit = "time steps"

    def __init__(self, scoring: Scoring, incidents: IncidentStream, time_column: str | None, eager: bool) -> None:
        super().__init__(scoring, incidents, time_column, eager)
        detector = scoring.detector
        self.features = np.asarray(detector.feature_names)
        self.points = PointAccumulator(detector.window_length, incidents.aggregation,
                                       len(scoring.names) + len(self.features), strict=True)
        self.primary = scoring.names.index(incidents.score_name)
        self.steps = 0
        # per-step thresholds with evaluation.threshold_adapt_rate (none when it is 0)
        self.adaptive = adaptive_thresholds(scoring.calibration, detector.false_alarm_rate, adapt_rate(detector))

    def header(self) -> list[str]:
        return ["row", *(["time"] if self.time_column else []), *score_columns(self.scoring), "top_feature"]

    def finish(self) -> tuple[list[list[Any]], Found]:
        rows, found = super().finish()
        more_rows, more_found = self._steps(*self.points.finish())
        return rows + more_rows, found + more_found + self.incidents.finish()

    def _scored(self, starts: np.ndarray | None, times: np.ndarray | None, scores: dict[str, np.ndarray],
                contrib: np.ndarray) -> tuple[list[list[Any]], Found]:
        values = np.column_stack([*(scores[n] for n in self.scoring.names), contrib])
        return self._steps(*self.points.add(starts, values))

    def _steps(self, first: int, values: np.ndarray) -> tuple[list[list[Any]], Found]:
        """The output rows of final time steps ``first..`` with values (m, scores + F), and incidents they closed."""
        if (m := len(values)) == 0:
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
        return rows, self.incidents.track(first, np.column_stack([values[:, self.primary], contrib]), times,
                                          limits.get(self.incidents.score_name))


def checked_stride(stride: int | None, window_length: int, per_step: bool) -> int:
    """``--stride`` checked, or its default: the window length, with ``per_step`` 1 (every row needs a window, so
    a given stride must be positive and, per step, at most the window length)."""
    if stride is not None and stride < 1:
        raise DataError(f"--stride: expected a positive number of rows, got {stride}")
    if per_step and stride is not None and stride > window_length:
        raise DataError(f"--stride {stride} with --per-step: windows {stride} rows apart leave rows between them "
                        f"without a score; give a stride of at most the window length {window_length} (default 1)")
    return stride or (1 if per_step else window_length)


def too_few_rows(source: str | Path, rows: int, window_length: int) -> DataError:
    """The error of an input that ended before its first window."""
    return DataError(f"{source}: {rows} rows, fewer than one window of {window_length} rows "
                     "(the model's trained window length)")


def row_batches(blocks: Iterable[Block], reference: Reference | None, detector: Detector, source: str | Path,
                stride: int, batch: int, cover: bool = False) -> Iterator[Batch]:
    """The windows of an input's row blocks, standardised (:func:`normalised_blocks`) and checked, in batches;
    ``cover``: ending with a window over the final rows (per-step; :func:`~datasets.csv_reading.iter_windows`)."""
    blocks = checked_magnitudes(normalised_blocks(blocks, reference), detector, source)
    yield from iter_windows(blocks, detector.window_length, stride, batch, cover)


# ----- per-recording normalisation --------------------------------------------------------
@dataclass
class Reference:
    """How an input is standardised as the run standardised each recording: by the mean and standard deviation of its
    first ``rows`` (R) rows, less those labelled in ``label_columns`` (the blocks' last text columns; empty: all count);
    ``given``: R came from ``--reference-rows``; the ``windows`` (N, T, F) of the first ``training_rows`` (None: none)
    every ``stride`` fit the per-recording scores, once the first R rows are read (:func:`normalised_blocks`)."""

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
    """The input's :class:`Reference` for a run normalised per recording, else None; ``header``: the input's columns
    (None: an array, which has no label columns), ``reference_rows``: ``--reference-rows``, R instead of the run's."""
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
    """The blocks standardised (float32) by the input's first ``reference.rows`` rows, held until they arrived,
    without the label text columns; None: blocks unchanged."""
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
        if (bad := too_large(detector.scaler.unchecked(block.values))) is not None:
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

