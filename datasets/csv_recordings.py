"""The ``csv`` loader: the CSV files ``data.path`` names, each column's role (a label-looking one is no sensor unless
listed), many files split by one rule and their windows pooled (never across files): docs/data.md.
"""
from __future__ import annotations

import glob
import json
import logging
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Literal

import numpy as np

from datasets.csv_reading import (ISO_EXAMPLE, MISSING_CELLS, RATE_RATIO, SEPARATOR_HINT, PreviousFill, header_text,
                                  iter_csv_blocks, parse_times, read_header, read_layout, sample_period,
                                  seconds_since_first, time_jumps)
from datasets.splits import (NORMAL, DataSplits, Recording, Split, check_shares, checked_args, split_normal_only,
                             split_stream, stretch_bounds, warn_about_labels, window_labels,
                             windows_at)
from utils.core.errors import ConfigError, DataError
from utils.core.paths import unreadable_file
from utils.core.registry import register_dataset
from utils.core.types import Fraction, PositiveInt, Separator, TrainEnd, UserPath
from utils.metrics.ranges import window_starts
from utils.runtime.memory import check_fits

#: What else a user can do about timestamps the reader cannot parse (e.g. 05/01/2024 08:00): train without them.
TIME_HINT = ("; write the times as ISO 8601 or as numbers, or train without them: data.timestamp_column null and the "
             "column in data.ignore_columns (the rows are then taken as evenly spaced)")

logger = logging.getLogger("anomaly")

LABEL_WORDS = ("label", "labels", "anomaly", "anomalies", "anomalous", "changepoint", "changepoints", "change_point",
               "change_points", "outlier", "outliers", "fault", "faults", "target", "class", "attack", "attacks",
               "is_anomaly")
NORMAL_LABELS = frozenset({"", "normal", "false", "no", "ok"})  # and any number equal to 0
ANOMALY_LABELS = frozenset({"true", "yes"})  # of kind "anomaly", as a number other than 0
VALID_LABELS = ("empty, 0, normal, false, no or ok for a normal row; 1, true, yes or any other text (e.g. a fault's "
                "name) for an anomalous one")
TEXT_HINT = ("; a column of text is no sensor: list the sensors in data.feature_columns or skip this column with "
             "data.ignore_columns")
DEFAULT_TEST_FRACTION = 0.15  # without train_end
_LABEL_NAME = re.compile(r"(?<![a-z])(" + "|".join(sorted(LABEL_WORDS, key=len, reverse=True)) + r")(?![a-z])")
_CAMEL = re.compile(r"(?<=[a-z0-9])(?=[A-Z])")
_KEYS = "data.label_columns, data.ignore_columns or data.feature_columns"
_GLOB_CHARS = frozenset("*?[")
_UTC_OFFSET = re.compile(r"[T ]\d\d(:\d\d)*(\.\d*)?(Z|[+-]\d\d(:?\d\d)?)$")  # T08:00:00Z, T08:00+0530, not 2024-05-01
_EXAMPLE = '"examples/converter_telemetry.csv", a folder of CSV files, or a glob such as "data/SKAB/valve1/*.csv"'


# ----- the columns ----------------------------------------------------------------------
@dataclass(frozen=True)
class Columns:
    """The roles of a file's columns (a row is anomalous where any of the ``labels`` marks it); ``explicit_features``:
    the features were listed by ``feature_columns`` (no label-looking check)."""

    features: list[str]
    labels: list[str]
    timestamp: str | None
    explicit_features: bool

    @property
    def text(self) -> list[str]:
        """The columns read as text: the labels, then the timestamp."""
        return self.labels + ([self.timestamp] if self.timestamp else [])


def choose_columns(header: list[str], path: Path, feature_columns: list[str] | None, label_columns: list[str],
                   timestamp_column: str | None, ignore_columns: list[str], label_key: str = "label_columns",
                   ) -> Columns:
    """The columns' roles; ConfigError naming the key for a column not in the header, a clash, a label-looking name.

    ``feature_columns`` None: every column not named elsewhere; ``label_key``: the key the labels were given by."""
    named = {label_key: label_columns, "timestamp_column": [timestamp_column] if timestamp_column else [],
             "ignore_columns": ignore_columns, "feature_columns": feature_columns or []}
    in_header = set(header)  # a 100,000-column header: membership in a list would be quadratic
    for key, columns in named.items():
        unknown = [c for c in columns if c not in in_header]
        if unknown:
            shown = f"column {unknown[0]!r} is" if key in ("label_column", "timestamp_column") else unknown
            raise ConfigError(f"data.{key}: {shown} not in the header of {path}; columns: {header_text(header)}")
        if len(set(columns)) != len(columns):
            raise ConfigError(f"data.{key}: duplicate names in {columns}")
    roles: dict[str, str] = {}
    for key, columns in named.items():
        for column in columns:
            if column in roles:
                raise ConfigError(f"data.{key}: {column!r} is also in data.{roles[column]}; a column has one role")
            roles[column] = key
    if feature_columns is None:
        features = [c for c in header if c not in roles]
        for column in features:
            if _LABEL_NAME.search(_CAMEL.sub("_", column).lower()):  # a label word as a name part: FaultFlag
                raise ConfigError(f"{path}: column {column!r} looks like a label, not a sensor; name it in "
                                  f"{_KEYS} (a label column never becomes a feature)")
    else:
        features = list(feature_columns)
    if not features:
        raise ConfigError(f"data.feature_columns: {path} has no feature column left (columns: {header_text(header)})")
    return Columns(features, list(label_columns), timestamp_column, feature_columns is not None)


def refuse_flag_features(values: list[np.ndarray], columns: Columns, source: str) -> None:
    """ConfigError for an implicit feature holding only 0 and 1 (both present) in every file's rows (n_i, F)."""
    if columns.explicit_features:
        return
    flags = np.all([((rows == 0) | (rows == 1)).all(axis=0) for rows in values], axis=0)
    flags &= np.any([(rows == 0).any(axis=0) for rows in values], axis=0)
    flags &= np.any([(rows == 1).any(axis=0) for rows in values], axis=0)
    if flags.any():
        column = columns.features[int(np.flatnonzero(flags)[0])]
        raise ConfigError(f"{source}: column {column!r} holds only 0 and 1, like a label, not a sensor; name it in "
                          f"{_KEYS} (list the sensors in data.feature_columns to keep it as one)")


def row_flags(texts: np.ndarray, names: list[str] | None = None, source: str | Path = "<input>",
              line_nos: np.ndarray | None = None, first_row: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Per-row ``(labels (n,) int64 1 = anomalous, kinds (n,) str)`` of (n, K) label cells ``texts``: anomalous where
    any marks it, of the first marking column's kind; ``names``, ``line_nos`` (n,), ``first_row``: for messages."""
    labels, kinds = np.zeros(len(texts), dtype=np.int64), np.full(len(texts), NORMAL, dtype=object)
    for k in range(texts.shape[1]):
        cells = texts[:, k].astype(str)
        missing = np.isin(np.char.lower(np.char.strip(cells)), list(MISSING_CELLS))
        if missing.any():
            r = int(np.argmax(missing))
            name = names[k] if names is not None else f"label column {k}"
            line = f" (line {int(line_nos[r])})" if line_nos is not None else ""
            raise DataError(f"{source}: row {first_row + r}{line}, column {name!r}: label {str(texts[r, k])!r} marks a "
                            f"missing label, neither normal nor anomalous; valid labels: {VALID_LABELS}")
        uniques, inverse = np.unique(np.char.strip(cells), return_inverse=True)  # few distinct labels: name each
        named = [_kind_name(t) for t in uniques]
        marks = np.array([name is not None for name in named])[inverse.reshape(-1)] & (labels == 0)
        labels[marks] = 1
        kinds[marks] = np.array(named, dtype=object)[inverse.reshape(-1)][marks]
    return labels, kinds.astype(str)


def _kind_name(text: str) -> str | None:
    """The anomaly kind a (stripped) label cell names, or None for a normal row."""
    if text.lower() in NORMAL_LABELS:
        return None
    if text.lower() in ANOMALY_LABELS:
        return "anomaly"
    try:  # a decimal comma (0,0 in a ';' file) reads as a number too
        return None if float(text.replace(",", ".") if text.count(",") == 1 else text) == 0 else "anomaly"
    except ValueError:
        return text


# ----- the files and their rows ---------------------------------------------------------
def csv_paths(path: str | list[str] | None) -> list[Path]:
    """The CSV files ``data.path`` names (files, folders' ``*.csv``, globs), in order, each once."""
    if not path:
        raise ConfigError(f"data.path: required for the csv dataset: the CSV file(s) to read, e.g. {_EXAMPLE}")
    entries = [path] if isinstance(path, str) else list(path)
    files: dict[Path, Path] = {}  # by the file itself: a/b.csv, ./a/b.csv and /abs/a/b.csv are one recording
    for entry in entries:
        for found in _files_of(str(entry)):
            files.setdefault(found.resolve(), found)
    return list(files.values())


def _files_of(entry: str) -> list[Path]:
    """One ``data.path`` entry's files: itself (even with ``[`` or ``*`` in its name), a folder's ``*.csv`` (any case),
    a glob's matches (``**``: any depth)."""
    if _GLOB_CHARS & set(entry) and not Path(entry).exists():
        found = sorted(Path(p) for p in glob.glob(entry, recursive=True) if Path(p).is_file())
        if not found:
            raise ConfigError(f"data.path: the pattern {entry!r} matches no file (relative paths are relative to "
                              f"the current directory, {Path.cwd()})")
        return found
    target = Path(entry)
    if target.is_dir():
        # A.CSV too; hidden files skipped as a glob skips them (macOS writes ._a.csv beside a.csv on other disks)
        found = sorted(p for p in target.iterdir()
                       if p.suffix.lower() == ".csv" and not p.name.startswith(".") and p.is_file())
        if not found:
            raise ConfigError(f"data.path: the folder {target} holds no *.csv file (sub-folders are not searched; "
                              f"give a glob such as \"{target}/**/*.csv\" for them)")
        return found
    problem = unreadable_file(target)
    if problem == "not found":
        parts = [part.strip() for part in entry.split(",")]
        listed = f"; several files are a JSON list: --set 'data.path={json.dumps(parts)}'" \
            if len(parts) > 1 and all(Path(part).exists() for part in parts) else ""
        raise ConfigError(f"data.path: file not found: {target} (relative paths are relative to the current "
                          f"directory, {Path.cwd()}){listed}")
    if problem is not None:
        raise ConfigError(f"data.path: {target} {problem}; give a CSV file")
    return [target]


def check_same_header(headers: dict[Path, list[str]]) -> None:
    """DataError naming the first file whose columns differ (in any order), and how, from those most files share (the
    first file's on a tie): the odd file out is named, not the files that agree."""
    sets = {path: frozenset(header) for path, header in headers.items()}  # headers may hold 100,000 columns
    counts = Counter(sets.values())
    first = next(path for path in headers if counts[sets[path]] == max(counts.values()))
    expected, want = headers[first], sets[first]
    shared = f", as {counts[want]} of the {len(headers)} files' do" if counts[want] > 1 else ""
    for path, header in headers.items():
        have = sets[path]
        if have == want:
            continue
        missing = [c for c in expected if c not in have]
        extra = [c for c in header if c not in want]
        what = "; ".join(part for part in (f"it lacks {missing}" if missing else "",
                                           f"it has {extra} besides" if extra else "") if part)
        raise DataError(f"{path}: its header differs from that of {first}{shared} ({what}); every file of data.path "
                        f"needs the same columns, in any order ({header_text(expected)})")


@dataclass
class Rows:
    """One file's rows: ``values`` (n, F) float32, ``labels`` (n,) int64 1 = anomalous, ``kinds`` (n,) str,
    ``label_text`` (n, K) str as written; ``times`` (n,) float64 or datetime64[ns] and ``time_text`` (n,) str, or None;
    ``filled``: ``{column: missing cells given the value before them}``."""

    path: Path
    values: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray
    label_text: np.ndarray
    times: np.ndarray | None = None
    time_text: np.ndarray | None = None
    filled: dict[str, int] = field(default_factory=dict)


def read_rows(path: Path, header: list[str], separator: str, columns: Columns, text_hint: str = TEXT_HINT,
              missing_values: str = "refuse", decimal: str = ".", has_header: bool = True) -> Rows:
    """Read a file's feature, label and timestamp columns; ``missing_values="previous"`` fills missing cells."""
    fill = PreviousFill(path, columns.features) if missing_values == "previous" else None
    blocks = list(iter_csv_blocks(path, header, columns.features, columns.text, chunk_rows=65536, separator=separator,
                                  text_hint=text_hint, fill=fill, decimal=decimal, has_header=has_header))
    if not blocks:
        raise DataError(f"{path}: no data rows after the header")
    values = np.concatenate([b.values for b in blocks]).astype(np.float32)
    text = np.concatenate([b.text for b in blocks]) if columns.text else np.zeros((len(values), 0), dtype=str)
    line_nos = np.concatenate([b.line_nos for b in blocks])
    k = len(columns.labels)
    labels, kinds = row_flags(text[:, :k], columns.labels, path, line_nos)  # all normal without label columns
    if k and labels.all():  # another convention, most likely
        seen = [repr(str(v)) for v in np.unique(text[:, :k])]  # the cells are stripped as read
        logger.warning("data: %s: the label column(s) %s mark every row anomalous (values %s); %s. Where one of them "
                       "means normal (e.g. scikit-learn's 1 = inlier, -1 = outlier), relabel those rows", path,
                       columns.labels, ", ".join(seen[:6]) + (", ..." if len(seen) > 6 else ""), VALID_LABELS)
    rows = Rows(path, values, labels, kinds, text[:, :k], filled=fill.counts if fill is not None else {})
    if columns.timestamp is not None:
        rows.time_text = text[:, k]
        rows.times = parse_times(rows.time_text, path, columns.timestamp, line_nos, TIME_HINT)
    return rows


def train_end_row(train_end: TrainEnd | None, rows: Rows, column: str | None) -> int | None:
    """The first test row of a file: ``train_end`` as a row, a share of the rows, or a time; None if unset."""
    n = len(rows.values)
    if train_end is None:
        return None
    if isinstance(train_end, float):
        return int(round(train_end * n))
    if isinstance(train_end, int):
        if train_end >= n:
            numeric_time = rows.times is not None and rows.times.dtype.kind == "f" and \
                rows.times[0] < train_end <= rows.times[-1]
            fix = (f"a number is a row; as a time of the timestamp column {column!r}, give it as text: "
                   f"\"{train_end}\"" if numeric_time else "lower data.train_end so that rows are left to test")
            raise DataError(f"{rows.path}: data.train_end={train_end} is not before the file's last row ({n} rows, "
                            f"0..{n - 1}); {fix}")
        return train_end
    when = parse_train_end_time(train_end, column, rows.times, "" if rows.time_text is None else rows.time_text[0],
                                rows.path)
    if not rows.times[0] < when <= rows.times[-1]:
        raise DataError(f"{rows.path}: data.train_end={train_end!r} lies outside the file's times ({rows.time_text[0]} "
                        f"to {rows.time_text[-1]}); give a time after its first row and no later than its last")
    return int(np.searchsorted(rows.times, when, side="left"))


def parse_train_end_time(text: str, column: str | None, times: np.ndarray | None, first: str,
                         source: Path | None = None) -> np.generic:
    """``data.train_end`` as text, read by the rules of the timestamp column (``first``: its first cell as written);
    ConfigError if it cannot be, or if only one of the two has a UTC offset (naming the file ``source``: the files of
    a folder may write their times differently)."""
    where = f"{source}: " if source is not None else ""
    if column is None or times is None:
        raise ConfigError(f"data.train_end: {text!r} is a time, which needs data.timestamp_column; or give a row "
                          "number, or a share of the rows between 0 and 1")
    try:
        when = parse_times(np.array([text.strip()]), Path("data.train_end"), column)[0]
    except DataError:
        raise ConfigError(f"data.train_end: {text!r} is neither a number nor an ISO 8601 date/time ({ISO_EXAMPLE}); "
                          "give a time as the timestamp column writes it, a row number, or a share of the rows"
                          ) from None
    if np.asarray(when).dtype.kind != times.dtype.kind:
        kind = {"M": "dates/times", "f": "numbers"}
        raise ConfigError(f"{where}data.train_end: {text!r} is read as {kind[np.asarray(when).dtype.kind]}, but the "
                          f"timestamp column {column!r} holds {kind[times.dtype.kind]}; write it as that column does")
    offset = bool(_UTC_OFFSET.search(text.strip()))
    if times.dtype.kind == "M" and offset != bool(_UTC_OFFSET.search(first)):
        # numpy reads an offset by converting to UTC, and a time without one as UTC: a mix cuts hours off
        said = "has a UTC offset, but the timestamp column {!r} writes none" if offset \
            else "has no UTC offset, but the timestamp column {!r} writes one"
        raise ConfigError(f"{where}data.train_end: {text!r} {said.format(column)} ({first[:40]!r}), so the two would be "
                          "read hours apart; write data.train_end as the column writes its times")
    return when


def split_recordings(files: list[Rows], names: list[str], window_length: int, stride: int, eval_stride: int,
                     val_fraction: float, test_fraction: float | None, train_end: TrainEnd | None, train_labels: str,
                     timestamp_column: str | None, normalize: str = "none",
                     ) -> tuple[Split, Split, Split, list[Recording], list[dict]]:
    """Split every file by :func:`~datasets.splits.split_stream`'s rule and pool the windows: ``(train, val, test,
    recordings, infos)``; ``names``: what reports call the files; ``normalize``: each by its own training part first."""
    single = len(files) == 1
    splits, recordings, infos, timing = [], [], [], []
    for rows, name in zip(files, names, strict=True):
        seconds = None if rows.times is None else seconds_since_first(rows.times)
        period = sample_period(seconds, rows.path, timestamp_column)
        timing.append((rows.path, period, time_jumps(seconds, period)))
        end = train_end_row(train_end, rows, timestamp_column)
        values, reference = rows.values, None
        if normalize != "none":
            learn_end = end if end is not None else stretch_bounds(len(values), val_fraction, test_fraction or 0)[2][0]
            values, reference = normalise_by_training_part(values, rows.labels, learn_end, train_labels == "ignore",
                                                           whiten=normalize == "per_recording_whitened",
                                                           source=rows.path)
        train, val, test, parts, info = split_stream(
            values, rows.labels, rows.kinds, window_length, stride, eval_stride, val_fraction, test_fraction,
            times=seconds, time_text=rows.time_text, sample_period_s=period, train_end=end, train_labels=train_labels,
            size_hint=f"a longer file than {rows.path}", source=None if single else str(rows.path),
            min_train_windows=1 if single else 0, min_val_windows=4 if single else 0)
        splits.append((train, val, test))
        recordings.append(Recording(name, parts["test"], parts["val"], len(train)))
        info.update(name=name, sample_period_s=period, **({"normalized_by": reference} if reference else {}),
                    **({"filled_cells": rows.filled} if rows.filled else {}))
        if rows.times is not None:
            info["time_range"] = [str(rows.times[0]), str(rows.times[-1])]
        infos.append(info)
    train, val, test = (_concat(parts) for parts in zip(*splits))
    if len(train) == 0:
        raise DataError(f"the training parts of the {len(files)} files hold no window of data.window_length="
                        f"{window_length} rows without an anomalous row; raise data.train_end, lower "
                        "data.window_length, or set data.train_labels=ignore if their labels may be ignored there")
    if len(val) < 4:
        raise DataError(f"the calibration stretches of the {len(files)} files hold {len(val)} windows of "
                        f"data.window_length={window_length} rows without an anomalous row, fewer than the 4 the "
                        "thresholds need; raise data.val_fraction, lower data.eval_stride or data.window_length")
    warn_about_labels(infos)
    warn_about_rows(files, timing, timestamp_column, window_length)
    return train, val, test, recordings, infos


def warn_about_rows(files: list[Rows], timing: list[tuple[Path, float | None, str | None]],
                    timestamp_column: str | None, window_length: int) -> None:
    """One warning per finding over the files: missing cells filled, gaps or repeats in time, differing rates;
    ``timing``: per file its path, sample period (or None) and :func:`datasets.csv_reading.time_jumps`."""
    def listed(found: list[str]) -> str:
        return " | ".join(found[:3]) + (f" | and {len(found) - 3} more" if len(found) > 3 else "")

    filled = [f"{r.path} ({', '.join(f'{c}: {n}' for c, n in r.filled.items())})" for r in files if r.filled]
    if filled:
        logger.warning("data: missing cells given the value before them (data.missing_values=\"previous\"), per "
                       "file and column: %s", listed(filled))
    irregular = [f"{path}: {jumps}" for path, _, jumps in timing if jumps]
    if irregular:
        logger.warning("data: the timestamps (column %r) of %d of %d file(s) are irregular; windows are cut by rows, "
                       "so one spanning a jump joins stretches recorded apart (split the file there, or fill the "
                       "missing rows): %s", timestamp_column, len(irregular), len(files), listed(irregular))
    periods = [(period, path) for path, period, _ in timing if period is not None]
    if periods and max(periods)[0] > RATE_RATIO * min(periods)[0]:
        (slow, slow_path), (fast, fast_path) = max(periods), min(periods)
        logger.warning("data: the files are sampled at different rates (every %.6g s in %s, every %.6g s in %s), so "
                       "a window of %d rows spans %.6g s in one and %.6g s in the other; resample them to one rate",
                       fast, fast_path, slow, slow_path, window_length, fast * window_length, slow * window_length)


def normalise_by_training_part(values: np.ndarray, labels: np.ndarray, learn_end: int, use_labelled: bool,
                               whiten: bool = False, source: str | Path | None = None) -> tuple[np.ndarray, dict]:
    """``(values (n, F) float32, {"rows", "mean", "std"[, "whitening"]})``: one recording's sensors standardised by
    its training part (rows before ``learn_end``, with the labelled ones if ``use_labelled``), decorrelated too if
    ``whiten`` (:func:`whitening_matrix`); ``source``: the recording, named first in messages."""
    keep = np.ones(learn_end, dtype=bool) if use_labelled else labels[:learn_end] == 0
    reference = values[:learn_end][keep].astype(np.float64)
    if len(reference) == 0:
        where = f"{source}: " if source is not None else ""
        raise DataError(f"{where}data.normalize=per_recording: the training part (rows 0..{learn_end - 1}) holds no "
                        "normal row to standardise by; move data.train_end later or set data.normalize to none")
    mean, std = reference.mean(axis=0), reference.std(axis=0)
    std = np.where(std > 1e-8 * np.maximum(1.0, np.abs(mean)), std, 1.0)  # a constant sensor keeps std 1
    stats = {"rows": int(len(reference)), "mean": mean.tolist(), "std": std.tolist()}
    if whiten:
        standardised = by_reference(reference, stats)  # stats holds no whitening yet: standardised only
        stats["whitening"] = whitening_matrix(standardised).tolist()
    return by_reference(values, stats), stats


def whitening_matrix(rows: np.ndarray) -> np.ndarray:
    """ZCA whitening (F, F) float64 of standardised rows (n, F): ``C^-1/2`` of their Ledoit-Wolf covariance (symmetric,
    so each output column stays mostly its own sensor; eigenvalues floored at 1e-3 of the largest)."""
    rows = np.asarray(rows, dtype=np.float64)
    if len(rows) < 2:
        return np.eye(rows.shape[1])
    eigenvalues, vectors = np.linalg.eigh(ledoit_wolf_covariance(rows))
    floor = 1e-3 * max(float(eigenvalues.max()), 1e-12)
    return (vectors / np.sqrt(np.maximum(eigenvalues, floor))) @ vectors.T


def ledoit_wolf_covariance(rows: np.ndarray) -> np.ndarray:
    """The Ledoit-Wolf shrunk covariance (F, F) of rows (n, F), n >= 1, as scikit-learn's ``LedoitWolf`` (tested),
    written out: importing scikit-learn costs about a second of every run's start-up."""
    x = rows - rows.mean(axis=0)
    n, p = x.shape
    empirical = x.T @ x / n
    mu = np.trace(empirical) / p
    squared = x**2
    delta_sum = np.sum((x.T @ x) ** 2) / n**2
    beta = (np.sum(squared.T @ squared) / n - delta_sum) / (p * n)
    delta = (delta_sum - 2.0 * mu * np.trace(empirical) + p * mu**2) / p
    beta = min(beta, delta)
    shrinkage = 0.0 if beta == 0 else beta / delta
    return (1.0 - shrinkage) * empirical + shrinkage * mu * np.eye(p)


def by_reference(values: np.ndarray, stats: dict) -> np.ndarray:
    """Rows (n, F) standardised (and whitened, with ``stats["whitening"]``) by reference statistics, float32."""
    standardised = ((values - np.asarray(stats["mean"])) / np.asarray(stats["std"])).astype(np.float32)
    if "whitening" not in stats:
        return standardised
    return (standardised.astype(np.float64) @ np.asarray(stats["whitening"])).astype(np.float32)


def _concat(splits: tuple[Split, ...]) -> Split:
    if len(splits) == 1:
        return splits[0]
    return Split(x=np.concatenate([s.x for s in splits]), y=np.concatenate([s.y for s in splits]),
                 kind=np.concatenate([s.kind for s in splits]))


# ----- the loader ---------------------------------------------------------------------
def read_csv_series(path: str | Path, feature_columns: list[str] | None = None, label_column: str | None = None,
                    timestamp_column: str | None = None) -> tuple[np.ndarray, list[str], np.ndarray | None,
                                                                   np.ndarray | None]:
    """A whole comma-separated series (features by default: all but label and timestamp): ``(values (rows, F)
    float32, feature names, labels (rows,) str or None, timestamps (rows,) float64 or datetime64[ns] or None)``."""
    path = Path(path)
    header = read_header(path)
    special = [c for c in (label_column, timestamp_column) if c is not None]
    features = feature_columns if feature_columns is not None else [c for c in header if c not in special]
    columns = choose_columns(header, path, features, [label_column] if label_column else [], timestamp_column, [],
                             label_key="label_column")
    rows = read_rows(path, header, ",", columns, text_hint="")
    return rows.values, columns.features, rows.label_text[:, 0] if label_column else None, rows.times


@register_dataset("csv")
@checked_args
def load_csv(seed: int, path: UserPath[str | list[str] | None] = None, window_length: PositiveInt = 50,
             stride: PositiveInt | None = None, feature_columns: list[str] | None = None,
             label_column: str | None = None, label_columns: list[str] | None = None,
             timestamp_column: str | None = None, ignore_columns: list[str] | None = None,
             separator: Separator | None = None, val_fraction: Fraction = 0.15, test_fraction: Fraction | None = None,
             split: Literal["contiguous", "random"] = "contiguous", eval_stride: PositiveInt | None = None,
             train_end: TrainEnd | None = None, train_labels: Literal["exclude", "ignore"] = "exclude",
             normalize: Literal["none", "per_recording", "per_recording_whitened"] = "none",
             missing_values: Literal["refuse", "previous"] = "refuse", decimal: Literal[".", ","] = ".",
             header: bool = True) -> DataSplits:
    """DataSplits of (N, window_length, F) windows over one or many CSV recordings, split normal-only (keys:
    docs/configuration.md); ``info``: the files, windowing, a note without labels, and per recording its figures."""
    files = csv_paths(path)
    _check_keys(len(files), label_column, label_columns, separator, train_end, test_fraction, split, normalize,
                eval_stride)
    label_key = "label_column" if label_column is not None else "label_columns"
    labels = [label_column] if label_column is not None else list(label_columns or [])
    test_fraction = test_fraction if test_fraction is not None or train_end is not None else DEFAULT_TEST_FRACTION
    stride = stride or window_length
    eval_stride = eval_stride or min(stride, window_length)
    # the rows are held as float64 (about the files' size again; text such as "1.0," is shorter than 8 bytes)
    check_fits(2 * sum(f.stat().st_size for f in files), f"the rows of {_shown(files)}", f"data.path={path}")
    layouts = {f: read_layout(f, separator, SEPARATOR_HINT, header) for f in files}
    check_same_header({f: names for f, (names, _) in layouts.items()})
    columns = choose_columns(layouts[files[0]][0], files[0], feature_columns, labels, timestamp_column,
                             ignore_columns or [], label_key)
    comma = [f for f, (_, sep) in layouts.items() if sep == ","]
    if decimal == "," and comma:
        raise ConfigError(f"data.decimal: \",\" (decimal commas) needs files separated otherwise, but {comma[0]} is "
                          "separated by commas (or has one column); set data.separator to \";\", tab or \"|\" as the "
                          "file is, or data.decimal to \".\"")
    read = [read_rows(f, names, sep, columns, missing_values=missing_values, decimal=decimal, has_header=header)
            for f, (names, sep) in layouts.items()]
    refuse_flag_features([r.values for r in read], columns, _shown(files))
    n_rows = sum(len(r.values) for r in read)
    info = {"dataset": "csv", "path": str(files[0]) if len(files) == 1 else path, "files": [str(f) for f in files],
            "rows": int(n_rows), "features": columns.features, "window_length": window_length, "stride": stride,
            "label_column": label_column, "label_columns": labels, "timestamp_column": timestamp_column,
            "ignore_columns": ignore_columns or [], "separator": sorted({sep for _, sep in layouts.values()}),
            "seed": int(seed), "val_fraction": val_fraction, "test_fraction": test_fraction, "split": split,
            "train_end": train_end, "train_labels": train_labels, "normalize": normalize}
    if split == "contiguous":
        data = _contiguous(read, files, info, window_length, stride, eval_stride, val_fraction, test_fraction,
                           train_end, train_labels, timestamp_column, normalize)
    else:
        data = _random(read[0], info, window_length, stride, val_fraction, test_fraction, seed)
    if not labels:
        data.info["note"] = ("no label column: every window is treated as normal, so the test split holds held-out "
                             "normals only and ROC/PR AUC are undefined; the threshold still flags about "
                             "evaluation.false_alarm_rate of normal windows")
        logger.warning("data: %s", data.info["note"])
    return data


def _check_keys(n_files: int, label_column: str | None, label_columns: list[str] | None, separator: str | None,
                train_end: TrainEnd | None, test_fraction: float | None, split: str, normalize: str,
                eval_stride: int | None) -> None:
    """ConfigError naming the keys that do not go together (or a separator that cannot separate fields)."""
    if label_column is not None and label_columns is not None:
        raise ConfigError(f"data.label_columns: given with data.label_column={label_column!r}; set only one "
                          f"(label_columns: [{label_column!r}, ...] lists several)")
    if separator is not None and (separator.isalnum() or separator in '."+-\r\n '):
        raise ConfigError(f"data.separator: {separator!r} cannot separate fields (it occurs in numbers or ends "
                          "lines); give one of , ; | or a tab, or null to detect it from the header")
    if train_end is not None and test_fraction is not None:
        raise ConfigError(f"data.test_fraction: {test_fraction} is given with data.train_end={train_end!r}; with "
                          "train_end every row from it on is test, so leave data.test_fraction out")
    if (train_end is not None or n_files > 1) and split != "contiguous":
        raise ConfigError(f"data.split: {split!r} splits one file's windows at random; many files and data.train_end "
                          "need split=\"contiguous\"")
    if eval_stride is not None and split != "contiguous":
        raise ConfigError(f"data.eval_stride: {eval_stride} spaces the windows of a contiguous test stretch, which the "
                          "random split does not have (its test windows are drawn among the data.stride ones); "
                          "leave data.eval_stride out, or use split=\"contiguous\"")
    if normalize != "none" and split != "contiguous":
        raise ConfigError(f"data.normalize: {normalize!r} standardises a recording by its training part, which the "
                          "random split does not have; use split=\"contiguous\" or normalize=\"none\"")


def _shown(files: list[Path]) -> str:
    return str(files[0]) if len(files) == 1 else f"the {len(files)} files {files[0]} ... {files[-1]}"


def _windows_fit(rows: list[int], n_features: int, window_length: int, step: int, keys: str, what: str) -> None:
    """ConfigError naming ``keys`` when the windows of files of ``rows`` rows each would not fit in memory."""
    # the windows are copied (float64, then float32 splits and scaled copies): stride 1 repeats every row T times
    windows = sum((n - window_length) // step + 1 for n in rows if n >= window_length)
    check_fits(windows * window_length * n_features * (8 + 4 * 3), f"the {windows} windows of {what}", keys)


def _contiguous(read: list[Rows], files: list[Path], info: dict, window_length: int, stride: int, eval_stride: int,
                val_fraction: float, test_fraction: float | None, train_end: TrainEnd | None, train_labels: str,
                timestamp_column: str | None, normalize: str) -> DataSplits:
    """Each file cut into its stretches by one rule, the windows pooled (:func:`split_recordings`)."""
    for rows in read:
        if len(rows.values) < window_length:
            others = "; leave the file out of data.path, or" if len(read) > 1 else "; give a longer recording, or"
            raise DataError(f"{rows.path}: {len(rows.values)} rows, fewer than one window of "
                            f"data.window_length={window_length}{others} lower data.window_length")
    keys = f"data.window_length={window_length}, data.stride={stride}"
    keys += f", data.eval_stride={eval_stride}" if eval_stride < stride else ""
    _windows_fit([len(r.values) for r in read], len(info["features"]), window_length, min(stride, eval_stride), keys,
                 _shown(files))
    train, val, test, recordings, infos = split_recordings(read, [str(f) for f in files], window_length, stride,
                                                           eval_stride, val_fraction, test_fraction, train_end,
                                                           train_labels, timestamp_column, normalize)
    if len(read) == 1:  # one file: its split's figures at the top level, as before
        info.update({k: v for k, v in infos[0].items() if k != "name"})
    else:
        info.update(split="contiguous", eval_stride=int(eval_stride),
                    windows={"train": len(train), "val": len(val), "test": len(test)},
                    **{key: {part: sum(r[key][part] for r in infos) for part in ("train", "val", "test")}
                       for key in ("anomalous_rows", "labelled_ranges")})
    info["recordings"] = infos
    streams = {"val": recordings[0].val, "test": recordings[0].test} if len(read) == 1 else {}
    return DataSplits(train=train, val=val, test=test, feature_names=info["features"], info=info, streams=streams,
                      recordings=recordings)


def _random(rows: Rows, info: dict, window_length: int, stride: int, val_fraction: float, test_fraction: float,
            seed: int) -> DataSplits:
    """One file's windows split at random (:func:`split_normal_only`: every anomaly to test)."""
    check_shares(val_fraction, test_fraction)
    values = rows.values
    starts = window_starts(len(values), window_length, stride)
    if len(starts) == 0:
        raise DataError(f"{rows.path}: {len(values)} rows, fewer than one window of data.window_length={window_length}")
    _windows_fit([len(values)], values.shape[1], window_length, stride,
                 f"data.window_length={window_length}, data.stride={stride}", str(rows.path))
    x = windows_at(values, starts, window_length)
    kind = window_labels(rows.labels, rows.kinds, starts, window_length)[1]
    train, val, test = split_normal_only(x, kind, val_fraction, test_fraction, seed)
    info.update(windows=int(len(starts)), rows_not_in_a_window=int(len(values) - (starts[-1] + window_length)))
    if stride < window_length:
        logger.warning("data: stride %d < window_length %d: overlapping windows are split at random, so test "
                       "windows share rows with training windows and the test metrics are optimistic",
                       stride, window_length)
    if rows.times is not None:
        info["time_range"] = [str(rows.times[0]), str(rows.times[-1])]
    return DataSplits(train=train, val=val, test=test, feature_names=info["features"], info=info)
