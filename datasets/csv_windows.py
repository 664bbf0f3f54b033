"""Your own multivariate time series from CSV files: the ``csv`` loader, and windows over streamed row blocks.

The format, the columns' roles and the splits: docs/data.md; the keys: docs/configuration.md.
"""
from __future__ import annotations

import logging
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from datasets.splits import DataSplits, check_shares, checked_args, split_normal_only
from datasets.csv_columns import choose_columns, refuse_flag_features
from datasets.csv_reading import SEPARATOR_HINT, Block, read_header, read_layout
from datasets.csv_recordings import Rows, check_same_header, csv_paths, read_rows, split_recordings
from datasets.stream_split import window_labels
from utils.core.errors import ConfigError, DataError
from utils.core.registry import register_dataset
from utils.core.types import Fraction, PositiveInt, Separator, TrainEnd
from utils.runtime.memory import check_fits
from utils.metrics.ranges import window_starts

logger = logging.getLogger("anomaly")

DEFAULT_TEST_FRACTION = 0.15  # without train_end

# ----- windows ------------------------------------------------------------------------
def iter_windows(blocks: Iterable[Block], window_length: int, stride: int, batch: int,
                 ) -> Iterator[tuple[np.ndarray, np.ndarray, list[Block]]]:
    """Consecutive windows (every ``stride`` rows, across blocks) of a stream of row blocks, ``batch`` at a time.

    Only the rows a later window still needs are carried over: memory stays at about one block plus one batch.

    Yields:
        ``(starts (n,), windows (n, window_length, F) float64, text columns at each start (n, K) or None)``.
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
def read_csv_series(path: str | Path, feature_columns: list[str] | None = None, label_column: str | None = None,
                    timestamp_column: str | None = None) -> tuple[np.ndarray, list[str], np.ndarray | None,
                                                                   np.ndarray | None]:
    """Read a whole comma-separated time series (every column but the label and timestamp is a feature by default).

    Returns:
        ``(values (rows, F) float32, feature names, labels (rows,) str or None,
        timestamps (rows,) float64 or datetime64[ns], or None)``.
    """
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
def load_csv(seed: int, path: str | list[str] | None = None, window_length: PositiveInt = 50,
             stride: PositiveInt | None = None, feature_columns: list[str] | None = None,
             label_column: str | None = None, label_columns: list[str] | None = None,
             timestamp_column: str | None = None, ignore_columns: list[str] | None = None,
             separator: Separator | None = None, val_fraction: Fraction = 0.15, test_fraction: Fraction | None = None,
             split: Literal["contiguous", "random"] = "contiguous", eval_stride: PositiveInt | None = None,
             train_end: TrainEnd | None = None, train_labels: Literal["exclude", "ignore"] = "exclude",
             normalize: Literal["none", "per_recording", "per_recording_whitened"] = "none",
             missing_values: Literal["refuse", "previous"] = "refuse", decimal: Literal[".", ","] = ".") -> DataSplits:
    """Sliding windows over one or many CSV recordings, split normal-only (keys: docs/configuration.md).

    Returns:
        DataSplits of (N, window_length, F) windows; ``info`` records the files, the windowing, a note
        without labels, and per recording its rows, stretches, windows and labelled ranges.
    """
    files = csv_paths(path)
    label_key, labels = _label_columns(label_column, label_columns)
    _check_keys(len(files), separator, train_end, test_fraction, split, normalize)
    test_fraction = test_fraction if test_fraction is not None or train_end is not None else DEFAULT_TEST_FRACTION
    stride = stride or window_length
    eval_stride = eval_stride or min(stride, window_length)
    # the rows are held as float64 (about the files' size again; text such as "1.0," is shorter than 8 bytes)
    check_fits(2 * sum(f.stat().st_size for f in files), f"the rows of {_shown(files)}", f"data.path={path}")
    layouts = {f: read_layout(f, separator, SEPARATOR_HINT) for f in files}
    check_same_header({f: header for f, (header, _) in layouts.items()})
    first_header = layouts[files[0]][0]
    columns = choose_columns(first_header, files[0], feature_columns, labels, timestamp_column, ignore_columns or [],
                             label_key)
    _check_decimal(decimal, layouts)
    read = [read_rows(f, header, sep, columns, missing_values=missing_values, decimal=decimal)
            for f, (header, sep) in layouts.items()]
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
                             "(100 - threshold_percentile)% of normal windows")
        logger.warning("data: %s", data.info["note"])
    return data


def _check_decimal(decimal: str, layouts: dict[Path, tuple[list[str], str]]) -> None:
    """ConfigError naming the first file separated by commas when the numbers are written with decimal commas."""
    comma = [f for f, (_, sep) in layouts.items() if sep == ","]
    if decimal == "," and comma:
        raise ConfigError(f"data.decimal: \",\" (decimal commas) needs files separated otherwise, but {comma[0]} is "
                          "separated by commas (or has one column); set data.separator to \";\", tab or \"|\" as the "
                          "file is, or data.decimal to \".\"")


def _check_keys(n_files: int, separator: str | None, train_end: TrainEnd | None, test_fraction: float | None,
                split: str, normalize: str) -> None:
    """ConfigError naming the keys that do not go together (or a separator that cannot separate fields)."""
    if separator is not None and (separator.isalnum() or separator in '."+-\r\n '):
        raise ConfigError(f"data.separator: {separator!r} cannot separate fields (it occurs in numbers or ends "
                          "lines); give one of , ; | or a tab, or null to detect it from the header")
    if train_end is not None and test_fraction is not None:
        raise ConfigError(f"data.test_fraction: {test_fraction} is given with data.train_end={train_end!r}; with "
                          "train_end every row from it on is test, so leave data.test_fraction out")
    if (train_end is not None or n_files > 1) and split != "contiguous":
        raise ConfigError(f"data.split: {split!r} splits one file's windows at random; many files and data.train_end "
                          "need split=\"contiguous\"")
    if normalize != "none" and split != "contiguous":
        raise ConfigError(f"data.normalize: {normalize!r} standardises a recording by its training part, which the "
                          "random split does not have; use split=\"contiguous\" or normalize=\"none\"")


def _label_columns(label_column: str | None, label_columns: list[str] | None) -> tuple[str, list[str]]:
    """The key the labels were given by and the label columns; ConfigError when both spellings are given."""
    if label_column is not None and label_columns is not None:
        raise ConfigError(f"data.label_columns: given with data.label_column={label_column!r}; set only one "
                          f"(label_columns: [{label_column!r}, ...] lists several)")
    if label_column is not None:
        return "label_column", [label_column]
    return "label_columns", list(label_columns or [])


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
            raise DataError(f"{rows.path}: {len(rows.values)} rows, fewer than one window of "
                            f"data.window_length={window_length}")
    keys = f"data.window_length={window_length}, data.stride={stride}"
    keys += f", data.eval_stride={eval_stride}" if eval_stride < stride else ""
    _windows_fit([len(r.values) for r in read], len(info["features"]), window_length, min(stride, eval_stride), keys,
                 _shown(files))
    pooled = split_recordings(read, [str(f) for f in files], window_length, stride, eval_stride, val_fraction,
                              test_fraction, train_end, train_labels, timestamp_column, normalize)
    if len(read) == 1:  # one file: its split's figures at the top level, as before
        info.update({k: v for k, v in pooled.infos[0].items() if k not in ("name", "time_range")})
        if "time_range" in pooled.infos[0]:
            info["time_range"] = pooled.infos[0]["time_range"]
    else:
        parts = ("train", "val", "test")
        info.update(split="contiguous", eval_stride=int(eval_stride),
                    windows={p: len(getattr(pooled, p)) for p in parts},
                    **{key: {part: sum(r[key][part] for r in pooled.infos) for part in parts}
                       for key in ("anomalous_rows", "labelled_ranges")})
    info["recordings"] = pooled.infos
    streams = {"val": pooled.recordings[0].val, "test": pooled.recordings[0].test} if len(read) == 1 else {}
    return DataSplits(train=pooled.train, val=pooled.val, test=pooled.test, feature_names=info["features"],
                      info=info, streams=streams, recordings=pooled.recordings)


def _random(rows: Rows, info: dict, window_length: int, stride: int, val_fraction: float, test_fraction: float,
            seed: int) -> DataSplits:
    """One file's windows split at random (:func:`split_normal_only`: every anomaly to test)."""
    check_shares(val_fraction, test_fraction)
    values = rows.values
    starts = window_starts(len(values), window_length, stride)
    if len(starts) == 0:
        raise DataError(f"{rows.path}: {len(values)} rows, fewer than one window of "
                        f"data.window_length={window_length}")
    _windows_fit([len(values)], values.shape[1], window_length, stride,
                 f"data.window_length={window_length}, data.stride={stride}", str(rows.path))
    x = sliding_window_view(values, window_length, axis=0)[starts].transpose(0, 2, 1)
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
