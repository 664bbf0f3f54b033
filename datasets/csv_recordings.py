"""CSV recordings: which files ``data.path`` names, each file's rows by its columns' roles, and many files split
by one boundary rule (windows never cross files; the splits pool the windows of all files). See docs/data.md.
"""
from __future__ import annotations

import glob
import logging
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from datasets.splits import NORMAL, Recording, Split
from datasets.csv_columns import VALID_LABELS, Columns, row_flags
from datasets.csv_reading import (ISO_EXAMPLE, RATE_RATIO, PreviousFill, header_text, iter_csv_blocks,
                                  parse_times, sample_period, seconds_since_first, time_jumps)
from datasets.stream_split import split_stream, stretch_bounds, warn_about_labels
from utils.core.errors import ConfigError, DataError
from utils.core.paths import unreadable_file
from utils.core.types import TrainEnd

logger = logging.getLogger("anomaly")

TEXT_HINT = ("; a column of text is no sensor: list the sensors in data.feature_columns or skip this column with "
             "data.ignore_columns")
_GLOB_CHARS = frozenset("*?[")
_EXAMPLE = '"examples/converter_telemetry.csv", a folder of CSV files, or a glob such as "data/SKAB/valve1/*.csv"'


def csv_paths(path: str | list[str] | None) -> list[Path]:
    """The CSV files ``data.path`` names (files, folders' ``*.csv``, globs), in order, each once."""
    if not path:
        raise ConfigError(f"data.path: required for the csv dataset: the CSV file(s) to read, e.g. {_EXAMPLE}")
    entries = [path] if isinstance(path, str) else list(path)
    return list(dict.fromkeys(f for entry in entries for f in _files_of(str(entry))))


def _files_of(entry: str) -> list[Path]:
    """The files of one ``data.path`` entry: the file itself, a folder's ``*.csv``, a glob's matches."""
    if _GLOB_CHARS & set(entry):
        found = sorted(Path(p) for p in glob.glob(entry) if Path(p).is_file())
        if not found:
            raise ConfigError(f"data.path: the pattern {entry!r} matches no file (relative paths are relative to "
                              f"the current directory, {Path.cwd()})")
        return found
    target = Path(entry)
    if target.is_dir():
        found = sorted(p for p in target.glob("*.csv") if p.is_file())
        if not found:
            raise ConfigError(f"data.path: the folder {target} holds no *.csv file (sub-folders are not searched; "
                              f"give a glob such as \"{target}/*/*.csv\" for them)")
        return found
    problem = unreadable_file(target)
    if problem == "not found":
        raise ConfigError(f"data.path: file not found: {target} (relative paths are relative to the current "
                          f"directory, {Path.cwd()})")
    if problem is not None:
        raise ConfigError(f"data.path: {target} {problem}; give a CSV file")
    return [target]


def check_same_header(headers: dict[Path, list[str]]) -> None:
    """DataError naming the first file whose columns differ from the first file's (in any order), and how."""
    (first, expected), *rest = headers.items()
    want = set(expected)  # sets: headers may hold 100,000 columns
    for path, header in rest:
        have = set(header)
        if have == want:
            continue
        missing = [c for c in expected if c not in have]
        extra = [c for c in header if c not in want]
        what = "; ".join(part for part in (f"it lacks {missing}" if missing else "",
                                           f"it has {extra} besides" if extra else "") if part)
        raise DataError(f"{path}: its header differs from that of {first} ({what}); every file of data.path needs the "
                        f"same columns, in any order ({header_text(expected)})")


@dataclass
class Rows:
    """One file's rows.

    Attributes:
        values: (n, F) float32 features.
        labels: (n,) int64, 1 = anomalous (zeros without label columns).
        kinds: (n,) str.
        label_text: (n, K) str, the label columns' cells as written.
        times: (n,) float64 or datetime64[ns] timestamps, or None.
        time_text: (n,) str, the timestamps as written, or None.
        filled: ``{column: missing cells given the value before them}``.
    """

    path: Path
    values: np.ndarray
    labels: np.ndarray
    kinds: np.ndarray
    label_text: np.ndarray
    times: np.ndarray | None = None
    time_text: np.ndarray | None = None
    filled: dict[str, int] = field(default_factory=dict)


def read_rows(path: Path, header: list[str], separator: str, columns: Columns, text_hint: str = TEXT_HINT,
              missing_values: str = "refuse", decimal: str = ".") -> Rows:
    """Read a file's feature, label and timestamp columns; ``missing_values="previous"`` fills missing cells."""
    fill = PreviousFill(path, columns.features) if missing_values == "previous" else None
    blocks = list(iter_csv_blocks(path, header, columns.features, columns.text, chunk_rows=65536, separator=separator,
                                  text_hint=text_hint, fill=fill, decimal=decimal))
    if not blocks:
        raise DataError(f"{path}: no data rows after the header")
    values = np.concatenate([b.values for b in blocks]).astype(np.float32)
    text = np.concatenate([b.text for b in blocks]) if columns.text else np.zeros((len(values), 0), dtype=str)
    line_nos = np.concatenate([b.line_nos for b in blocks])
    k = len(columns.labels)
    if k:
        labels, kinds = row_flags(text[:, :k], columns.labels, path, line_nos)
        if labels.all():
            _warn_all_anomalous(path, columns.labels, text[:, :k])
    else:
        labels, kinds = np.zeros(len(values), dtype=np.int64), np.full(len(values), NORMAL)
    rows = Rows(path, values, labels, kinds, text[:, :k], filled=fill.counts if fill is not None else {})
    if columns.timestamp is not None:
        rows.time_text = text[:, k]
        rows.times = parse_times(rows.time_text, path, columns.timestamp, line_nos)
    return rows


def _warn_all_anomalous(path: Path, names: list[str], cells: np.ndarray) -> None:
    """Warn that label columns mark every row anomalous, with the values seen: another convention, most likely."""
    seen = [repr(str(v)) for v in np.unique(np.char.strip(cells.astype(str)))]
    shown = ", ".join(seen[:6]) + (", ..." if len(seen) > 6 else "")
    logger.warning("data: %s: the label column(s) %s mark every row anomalous (values %s); %s. Where one of them "
                   "means normal (e.g. scikit-learn's 1 = inlier, -1 = outlier), relabel those rows", path, names,
                   shown, VALID_LABELS)


def train_end_row(train_end: TrainEnd | None, rows: Rows, column: str | None) -> int | None:
    """The first test row of a file: ``train_end`` as a row, a share of the rows, or a time; None if unset."""
    n = len(rows.values)
    if train_end is None:
        return None
    if isinstance(train_end, float):
        return int(round(train_end * n))
    if isinstance(train_end, int):
        if train_end >= n:
            raise DataError(f"{rows.path}: data.train_end={train_end} is not before the file's last row ({n} rows, "
                            f"0..{n - 1}); lower data.train_end so that rows are left to test")
        return train_end
    when = parse_train_end_time(train_end, column, rows.times)
    first, last = rows.times[0], rows.times[-1]
    if not first < when <= last:
        raise DataError(f"{rows.path}: data.train_end={train_end!r} lies outside the file's times ({rows.time_text[0]} "
                        f"to {rows.time_text[-1]}); give a time after its first row and no later than its last")
    return int(np.searchsorted(rows.times, when, side="left"))


def parse_train_end_time(text: str, column: str | None, times: np.ndarray | None) -> np.generic:
    """``data.train_end`` given as text: a time read by the timestamp column's rules; ConfigError if it cannot be."""
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
        raise ConfigError(f"data.train_end: {text!r} is read as {kind[np.asarray(when).dtype.kind]}, but the "
                          f"timestamp column {column!r} holds {kind[times.dtype.kind]}; write it as that column does")
    return when


@dataclass
class Pooled:
    """The splits of many recordings and what the report needs of them."""

    train: Split
    val: Split
    test: Split
    recordings: list[Recording]
    infos: list[dict]


def split_recordings(files: list[Rows], names: list[str], window_length: int, stride: int, eval_stride: int,
                     val_fraction: float, test_fraction: float | None, train_end: TrainEnd | None, train_labels: str,
                     timestamp_column: str | None, normalize: str = "none") -> Pooled:
    """Split every file by :func:`~datasets.stream_split.split_stream`'s rule and pool the windows.

    Args:
        names: what reports call the files.
        normalize: ``"per_recording"`` standardises each file by its own training part first.
    """
    single = len(files) == 1
    splits: dict[str, list[Split]] = {"train": [], "val": [], "test": []}
    recordings, infos, timing = [], [], []
    for rows, name in zip(files, names, strict=True):
        seconds = None if rows.times is None else seconds_since_first(rows.times)
        period = sample_period(seconds, rows.path, timestamp_column)
        timing.append((rows.path, period, time_jumps(seconds, period)))
        end = train_end_row(train_end, rows, timestamp_column)
        values, reference = rows.values, None
        if normalize != "none":
            learn_end = end if end is not None else stretch_bounds(len(values), val_fraction, test_fraction or 0)[2][0]
            values, reference = normalise_by_training_part(values, rows.labels, learn_end, train_labels == "ignore",
                                                           whiten=normalize == "per_recording_whitened")
        train, val, test, parts, info = split_stream(
            values, rows.labels, rows.kinds, window_length, stride, eval_stride, val_fraction, test_fraction,
            times=seconds, time_text=rows.time_text, sample_period_s=period, train_end=end, train_labels=train_labels,
            size_hint=f"a longer file than {rows.path}", source=None if single else str(rows.path),
            min_train_windows=1 if single else 0, min_val_windows=4 if single else 0)
        for key, split in (("train", train), ("val", val), ("test", test)):
            splits[key].append(split)
        recordings.append(Recording(name, parts["test"], parts["val"], len(train)))
        info.update(name=name, sample_period_s=period, **({"normalized_by": reference} if reference else {}),
                    **({"filled_cells": rows.filled} if rows.filled else {}))
        if rows.times is not None:
            info["time_range"] = [str(rows.times[0]), str(rows.times[-1])]
        infos.append(info)
    pooled = {key: _concat(parts) for key, parts in splits.items()}
    _check_pooled(pooled, len(files), window_length)
    warn_about_labels(infos)
    warn_about_rows(files, timing, timestamp_column, window_length)
    return Pooled(pooled["train"], pooled["val"], pooled["test"], recordings, infos)


def warn_about_rows(files: list[Rows], timing: list[tuple[Path, float | None, str | None]],
                    timestamp_column: str | None, window_length: int) -> None:
    """One warning per finding over the files: missing cells filled, gaps or repeats in time, differing rates.

    Args:
        timing: per file, its path, sample period (or None) and :func:`datasets.csv_reading.time_jumps`.
    """
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
                               whiten: bool = False) -> tuple[np.ndarray, dict]:
    """Standardise one recording's sensors (n, F) by its own training part (rows before ``learn_end``).

    Args:
        use_labelled: take labelled rows of the training part too (``train_labels="ignore"``).
        whiten: also decorrelate by the training part's covariance (:func:`whitening_matrix`).

    Returns:
        ``(values (n, F) float32, {"rows", "mean", "std"[, "whitening"]})``; a constant sensor keeps std 1.
    """
    keep = np.ones(learn_end, dtype=bool) if use_labelled else labels[:learn_end] == 0
    reference = values[:learn_end][keep]
    if len(reference) == 0:
        raise DataError(f"data.normalize=per_recording: the training part (rows 0..{learn_end - 1}) holds no normal "
                        "row to standardise by; move data.train_end later or set data.normalize to none")
    mean, std = reference_statistics(reference)
    stats = {"rows": int(len(reference)), "mean": mean.tolist(), "std": std.tolist()}
    if whiten:
        stats["whitening"] = whitening_matrix(standardise(reference, mean, std)).tolist()
    return by_reference(values, stats), stats


def whitening_matrix(rows: np.ndarray) -> np.ndarray:
    """ZCA whitening (F, F) float64 of standardised rows (n, F): ``C^-1/2`` of their Ledoit-Wolf covariance.

    Symmetric, so each output column stays mostly its own sensor; eigenvalues are floored at 1e-3 of the largest.
    """
    rows = np.asarray(rows, dtype=np.float64)
    if len(rows) < 2:
        return np.eye(rows.shape[1])
    eigenvalues, vectors = np.linalg.eigh(ledoit_wolf_covariance(rows))
    floor = 1e-3 * max(float(eigenvalues.max()), 1e-12)
    return (vectors / np.sqrt(np.maximum(eigenvalues, floor))) @ vectors.T


def ledoit_wolf_covariance(rows: np.ndarray) -> np.ndarray:
    """The Ledoit-Wolf shrunk covariance (F, F) of rows (n, F), n >= 1, as scikit-learn's ``LedoitWolf`` (tested).

    Written out: importing scikit-learn costs about a second of every run's start-up.
    """
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
    standardised = standardise(values, np.asarray(stats["mean"]), np.asarray(stats["std"]))
    if "whitening" not in stats:
        return standardised
    return (standardised.astype(np.float64) @ np.asarray(stats["whitening"])).astype(np.float32)


def reference_statistics(reference: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``(mean (F,), std (F,))`` float64 of reference rows (n, F), n >= 1; a constant sensor's std is 1."""
    reference = np.asarray(reference).astype(np.float64)
    mean, std = reference.mean(axis=0), reference.std(axis=0)
    return mean, np.where(std > 1e-8 * np.maximum(1.0, np.abs(mean)), std, 1.0)


def standardise(values: np.ndarray, mean: np.ndarray, std: np.ndarray) -> np.ndarray:
    """Rows (n, F) standardised by :func:`reference_statistics`, as float32 (what the windows hold)."""
    return ((values - mean) / std).astype(np.float32)


def _concat(splits: list[Split]) -> Split:
    if len(splits) == 1:
        return splits[0]
    return Split(x=np.concatenate([s.x for s in splits]), y=np.concatenate([s.y for s in splits]),
                 kind=np.concatenate([s.kind for s in splits]))


def _check_pooled(pooled: dict[str, Split], n_files: int, window_length: int) -> None:
    """DataError when the files together give no training window or fewer than 4 calibration windows."""
    if len(pooled["train"]) == 0:
        raise DataError(f"the training parts of the {n_files} files hold no window of data.window_length="
                        f"{window_length} rows without an anomalous row; raise data.train_end, lower "
                        "data.window_length, or set data.train_labels=ignore if their labels may be ignored there")
    if len(pooled["val"]) < 4:
        raise DataError(f"the calibration stretches of the {n_files} files hold {len(pooled['val'])} windows of "
                        f"data.window_length={window_length} rows without an anomalous row, fewer than the 4 the "
                        "thresholds need; raise data.val_fraction, lower data.eval_stride or data.window_length")
