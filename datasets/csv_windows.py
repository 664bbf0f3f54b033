"""Your own multivariate time series from a CSV file: the ``csv`` loader and chunked readers.

The file has a header row naming the columns and one row per time step::

    timestamp,voltage,current,temperature,label
    2024-05-01T08:00:00,48.012,10.05,42.31,0
    ...

* feature columns: every column except the label and timestamp columns, or the
  explicit ``feature_columns`` list; numbers only (no NaN, inf or empty cells);
* ``label_column`` (optional): empty, ``0`` or ``normal`` marks a normal row,
  anything else an anomalous one. A window holding any anomalous row is an
  anomaly; its kind is the first anomalous row's label text (numeric labels
  give the kind ``"anomaly"``). Without a label column every window counts as
  normal and the test split holds held-out normals only (no ROC/PR AUC);
* ``timestamp_column`` (optional): dropped from the features and checked to
  never go backwards (numbers, or ISO 8601 dates/times in one format).

Windows of ``window_length`` rows start every ``stride`` rows (default: no
overlap). ``split="contiguous"`` (default) cuts the rows in order into train,
validation and test stretches (:func:`datasets.stream_split.split_stream`):
training and validation windows hold no anomalous row, the test split is every
window of the last stretch every ``eval_stride`` rows, in order, and no window
is shared across splits. ``split="random"`` splits the windows at random by
:func:`datasets.base.split_normal_only` (every anomaly to test).

The readers (:func:`~datasets.csv_reading.read_header`,
:func:`~datasets.csv_reading.iter_csv_blocks`, :func:`iter_windows`) read a file
block by block, so scoring a large file (:mod:`agents.score_files`) keeps memory
bounded; :mod:`datasets.csv_reading` says what they accept and refuse, and
:mod:`datasets.csv_times` what a timestamp column may hold.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from datasets.base import NORMAL, DataSplits, split_normal_only
from datasets.csv_labels import row_labels, sample_period, seconds_since_first, window_kinds
from datasets.csv_reading import (
    DEFAULT_CHUNK_ROWS,
    Block,
    header_text,
    iter_csv_blocks,
    read_header,
)
from datasets.csv_times import parse_times
from datasets.stream_split import split_stream
from utils.core.errors import ConfigError, DataError
from utils.core.paths import unreadable_file
from utils.core.registry import register_dataset
from utils.core.types import Fraction, PositiveInt
from utils.runtime.memory import check_fits
from utils.scoring.stream import window_starts

logger = logging.getLogger("anomaly")

__all__ = ["DEFAULT_CHUNK_ROWS", "Block", "iter_csv_blocks", "iter_windows", "load_csv", "read_csv_series",
           "read_header", "window_starts"]


# ----- windows ------------------------------------------------------------------------
def iter_windows(blocks: Iterable[Block], window_length: int, stride: int, batch: int,
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, list[Block]]]:
    """Consecutive windows of a stream of row blocks, ``batch`` windows at a time.

    Windows start at rows 0, stride, 2*stride, ... (as :func:`window_starts`),
    possibly spanning block boundaries. Only the rows a later window still needs
    are carried over, so memory stays at about one block plus one batch.

    Yields:
        ``(starts, windows, text_at_start)``: start rows (n,), float64 windows
        (n, window_length, F), and the text columns (n, K) at each start row (or None).
    """
    buf: np.ndarray | None = None
    text_buf: np.ndarray | None = None
    buf_start = 0  # absolute row of buf[0]
    next_start = 0
    for block in blocks:
        if buf is None:
            buf, text_buf = block.values, block.text
        else:
            buf = np.concatenate([buf, block.values])
            text_buf = None if block.text is None else np.concatenate([text_buf, block.text])
        last_start = buf_start + len(buf) - window_length
        if last_start >= next_start:
            starts = np.arange(next_start, last_start + 1, stride, dtype=np.int64)
            view = sliding_window_view(buf, window_length, axis=0)  # (n, F, T), no copy
            for i in range(0, len(starts), batch):
                s = starts[i: i + batch]
                local = s - buf_start
                text = None if text_buf is None else text_buf[local]
                yield s, np.ascontiguousarray(view[local].transpose(0, 2, 1)), text
            next_start = int(starts[-1]) + stride
        drop = min(next_start - buf_start, len(buf))
        buf = buf[drop:].copy() if drop < len(buf) else buf[:0]
        text_buf = None if text_buf is None else text_buf[drop:].copy()
        buf_start += drop


# ----- the loader ---------------------------------------------------------------------
def _check_fraction(name: str, value: object) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value < 1.0:
        raise ConfigError(f"data.{name}: invalid value {value!r}; expected a number strictly between 0 and 1")


def read_csv_series(path: str | Path, feature_columns: list[str] | None = None, label_column: str | None = None,
                    timestamp_column: str | None = None) -> tuple[np.ndarray, list[str], np.ndarray | None,
                                                                   np.ndarray | None]:
    """Read a whole CSV time series.

    Returns:
        ``(values (rows, F) float32, feature names, labels (rows,) str or None,
        timestamps (rows,) float64 or datetime64[ns], or None)``.

    Raises:
        ConfigError: a named column is not in the header.
        DataError: bad cells (see :func:`iter_csv_blocks`), timestamps going backwards.
    """
    return _read_series(path, feature_columns, label_column, timestamp_column)[:4]


def _read_series(path: str | Path, feature_columns: list[str] | None, label_column: str | None,
                 timestamp_column: str | None) -> tuple:
    """:func:`read_csv_series` plus the timestamp column's text (rows,) str, or None."""
    path = Path(path)
    header = read_header(path)
    for key, column in (("label_column", label_column), ("timestamp_column", timestamp_column)):
        if column is not None and column not in header:
            raise ConfigError(f"data.{key}: column {column!r} is not in the header of {path}; "
                              f"columns: {header_text(header)}")
    special = [c for c in (label_column, timestamp_column) if c is not None]
    if feature_columns is None:
        features = [c for c in header if c not in special]
    else:
        unknown = [c for c in feature_columns if c not in header]
        if unknown:
            raise ConfigError(f"data.feature_columns: {unknown} not in the header of {path}; "
                              f"columns: {header_text(header)}")
        clash = [c for c in feature_columns if c in special]
        if clash:
            raise ConfigError(f"data.feature_columns: {clash} is also the label or timestamp column")
        if len(set(feature_columns)) != len(feature_columns):
            raise ConfigError(f"data.feature_columns: duplicate names in {feature_columns}")
        features = list(feature_columns)
    if not features:
        raise ConfigError(f"data.feature_columns: {path} has no feature column left (columns: {header_text(header)})")
    blocks = list(iter_csv_blocks(path, header, features, special, chunk_rows=65536))
    if not blocks:
        raise DataError(f"{path}: no data rows after the header")
    values = np.concatenate([b.values for b in blocks]).astype(np.float32)
    text = np.concatenate([b.text for b in blocks]) if special else None
    labels = times = time_text = None
    if label_column is not None:
        labels = text[:, special.index(label_column)]
    if timestamp_column is not None:
        line_nos = np.concatenate([b.line_nos for b in blocks])
        time_text = text[:, special.index(timestamp_column)]
        times = parse_times(time_text, path, timestamp_column, line_nos)
    return values, features, labels, times, time_text


@register_dataset("csv")
def load_csv(
    seed: int,
    path: str | None = None,
    window_length: PositiveInt = 50,
    stride: PositiveInt | None = None,
    feature_columns: list[str] | None = None,
    label_column: str | None = None,
    timestamp_column: str | None = None,
    val_fraction: Fraction = 0.15,
    test_fraction: Fraction = 0.15,
    split: Literal["contiguous", "random"] = "contiguous",
    eval_stride: PositiveInt | None = None,
) -> DataSplits:
    """Sliding windows over a multivariate CSV time series, split normal-only.

    Args:
        seed: fixes the random split (the contiguous split is by row order).
        path: the CSV file (relative paths are relative to the current directory).
        window_length: rows per window T.
        stride: rows between (training) window starts; default ``window_length`` (no
            overlap). With overlap, the random split puts rows of one window into
            neighbouring windows of other splits, which flatters the test.
        feature_columns: the feature columns in order; default every column
            except the label and timestamp columns.
        label_column: optional label column (see the module docstring).
        timestamp_column: optional timestamp column, dropped from the features.
        val_fraction: share of the rows (contiguous) or normal windows (random) for validation.
        test_fraction: share of the rows (contiguous) or normal windows (random, plus every anomaly) for test.
        split: ``"contiguous"`` stretches of rows, or ``"random"`` windows (see the module docstring).
        eval_stride: contiguous only: rows between validation and test window starts, at most
            ``window_length``; default ``stride`` capped at ``window_length``.

    Returns:
        DataSplits of (N, window_length, F) windows; ``info`` records the file,
        the windowing, the counts per kind per split, and a note when there are no labels;
        contiguous: ``streams`` ``"val"`` and ``"test"`` and the stretches (:func:`split_stream`).
    """
    file = _checked_path(path, val_fraction, test_fraction)
    stride = stride or window_length
    eval_stride = eval_stride or min(stride, window_length)
    # the rows are held as float64 (about the file's size again; text such as "1.0," is shorter than 8 bytes)
    check_fits(2 * file.stat().st_size, f"the rows of {file}", f"data.path={path}")
    values, features, labels, times, time_text = _read_series(file, feature_columns, label_column, timestamp_column)
    contiguous = split == "contiguous"
    step = min(stride, eval_stride) if contiguous else stride
    starts = window_starts(len(values), window_length, step)  # contiguous: at most this many windows in all
    if len(starts) == 0:
        raise DataError(f"{file}: {len(values)} rows, fewer than one window of data.window_length={window_length}")
    # the windows are copied (float64, then float32 splits and scaled copies): stride 1 repeats every row T times
    keys = f"data.window_length={window_length}, data.stride={stride}"
    keys += f", data.eval_stride={eval_stride}" if contiguous and eval_stride < stride else ""
    check_fits(len(starts) * window_length * values.shape[1] * (8 + 4 * 3), f"the {len(starts)} windows of {file}",
               keys)
    info = {"dataset": "csv", "path": str(file), "rows": int(len(values)), "features": features,
            "window_length": window_length, "stride": stride, "label_column": label_column,
            "timestamp_column": timestamp_column, "seed": int(seed), "val_fraction": val_fraction,
            "test_fraction": test_fraction, "split": split}
    if contiguous:
        flags, kinds = (row_labels(labels) if labels is not None
                        else (np.zeros(len(values), dtype=np.int64), np.full(len(values), NORMAL)))
        seconds = None if times is None else seconds_since_first(times)
        period = sample_period(seconds, file, timestamp_column)
        train, val, test, streams, split_info = split_stream(
            values, flags, kinds, window_length, stride, eval_stride, val_fraction, test_fraction,
            times=seconds, time_text=time_text, sample_period_s=period, size_hint=f"a longer file than {file}")
        info.update(split_info, sample_period_s=period)
    else:
        x = sliding_window_view(values, window_length, axis=0)[starts].transpose(0, 2, 1)
        kind = np.full(len(starts), NORMAL) if labels is None else window_kinds(labels, starts, window_length)
        train, val, test = split_normal_only(x, kind, val_fraction, test_fraction, seed)
        streams = {}
        info.update(windows=int(len(starts)), rows_not_in_a_window=int(len(values) - (starts[-1] + window_length)))
        if stride < window_length:
            logger.warning("data: stride %d < window_length %d: overlapping windows are split at random, so test "
                           "windows share rows with training windows and the test metrics are optimistic",
                           stride, window_length)
    info["counts"] = {name: {str(k): int(c) for k, c in zip(*np.unique(s.kind, return_counts=True))}
                      for name, s in (("train", train), ("val", val), ("test", test))}
    if times is not None:
        info["time_range"] = [str(times[0]), str(times[-1])]
    if labels is None:
        info["note"] = ("no label column: every window is treated as normal, so the test split holds held-out "
                        "normals only and ROC/PR AUC are undefined; the threshold still flags about "
                        "(100 - threshold_percentile)% of normal windows")
        logger.warning("data: %s", info["note"])
    return DataSplits(train=train, val=val, test=test, feature_names=features, info=info, streams=streams)


def _checked_path(path: str | None, val_fraction: float, test_fraction: float) -> Path:
    """The CSV file; ConfigError naming data.path or the fractions when they are wrong."""
    if not path:
        raise ConfigError('data.path: required for the csv dataset: the CSV file to read, e.g. '
                          '"examples/converter_telemetry.csv"')
    _check_fraction("val_fraction", val_fraction)
    _check_fraction("test_fraction", test_fraction)
    if val_fraction + test_fraction >= 1.0:
        raise ConfigError(f"data.val_fraction: val_fraction + test_fraction must be below 1, got "
                          f"{val_fraction} + {test_fraction}")
    file = Path(path)
    problem = unreadable_file(file)
    if problem == "not found":
        raise ConfigError(f"data.path: file not found: {file} (relative paths are relative to the current "
                          f"directory, {Path.cwd()})")
    if problem is not None:
        raise ConfigError(f"data.path: {file} {problem}; give a CSV file")
    return file
