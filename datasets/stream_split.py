"""Contiguous train / validation / test stretches of one long labelled recording (docs/streams.md).

No window crosses a stretch boundary, so no row is shared by two splits (a random split of overlapping windows
would flatter the test). Ranges are ``[start, end)`` rows.
"""
from __future__ import annotations

import logging
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

from datasets.splits import NORMAL, Split, StreamPart, check_shares, checked_args
from utils.core.errors import ConfigError, DataError
from utils.core.types import Fraction, PositiveInt
from utils.metrics.ranges import covering_starts, kind_runs, window_starts

logger = logging.getLogger("anomaly")


def stretch_bounds(n_rows: int, val_fraction: float, test_fraction: float | None = None,
                   train_end: int | None = None) -> list[tuple[int, int]]:
    """``[(0, a), (a, b), (b, n_rows)]``: the train, validation and test stretches' rows.

    With ``train_end``, the validation stretch is the last ``val_fraction`` of rows ``[0, train_end)``; the rest test.
    """
    if train_end is not None:
        a = train_end - int(round(val_fraction * train_end))
        return [(0, a), (a, train_end), (train_end, n_rows)]
    n_val, n_test = int(round(val_fraction * n_rows)), int(round(test_fraction * n_rows))
    a, b = n_rows - n_val - n_test, n_rows - n_test
    return [(0, max(a, 0)), (max(a, 0), max(b, 0)), (max(b, 0), n_rows)]


def kind_ranges(labels: np.ndarray, kinds: np.ndarray, offset: int = 0) -> list[dict]:
    """Runs of anomalous rows of one kind in (n,) ``labels``/``kinds``, plus ``offset``: ``[{start, end, kind}]``."""
    return [{"start": s + offset, "end": e + offset, "kind": kind} for s, e, kind in kind_runs(labels, kinds)]


def _clean_starts(anomalous_before: np.ndarray, starts: np.ndarray, window_length: int) -> np.ndarray:
    """The starts whose window ``[s, s + T)`` holds no anomalous row (``anomalous_before``: cumulative counts)."""
    return starts[anomalous_before[starts + window_length] == anomalous_before[starts]]


def training_windows(values: np.ndarray, excluded: np.ndarray, rows: int, window_length: int,
                     stride: int) -> np.ndarray:
    """A recording's training windows (N, T, F) in its first ``rows`` rows, none holding an ``excluded`` row."""
    anomalous_before = np.concatenate([[0], np.cumsum(excluded[:rows])])
    rows = min(rows, len(values))
    return _windows(values, _clean_starts(anomalous_before, window_starts(rows, window_length, stride), window_length),
                    window_length)


def _windows(values: np.ndarray, starts: np.ndarray, window_length: int) -> np.ndarray:
    """(N, T, F) windows ``values[s : s + T]`` (a view into ``values``)."""
    if len(starts) == 0:
        return np.zeros((0, window_length, values.shape[1]), dtype=values.dtype)
    return sliding_window_view(values, window_length, axis=0)[starts].transpose(0, 2, 1)


def window_labels(labels: np.ndarray, kinds: np.ndarray, starts: np.ndarray, window_length: int,
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Per window at ``starts``: ``(y (N,) int64 1 = holds an anomalous row, kind (N,) str: the first one's kind)``."""
    flags = sliding_window_view(np.asarray(labels) != 0, window_length)[starts]  # (N, T)
    hit = flags.any(axis=1)
    kind = np.full(len(starts), NORMAL, dtype=object)
    kind[hit] = np.asarray(kinds)[starts[hit] + flags[hit].argmax(axis=1)]
    return hit.astype(np.int64), kind.astype(str)


@checked_args
def split_stream(values: np.ndarray, labels: np.ndarray, kinds: np.ndarray, window_length: PositiveInt,
                 stride: PositiveInt, eval_stride: PositiveInt, val_fraction: Fraction,
                 test_fraction: Fraction | None = None,
                 times: np.ndarray | None = None, time_text: np.ndarray | None = None,
                 sample_period_s: float | None = None, *, train_end: int | None = None,
                 train_labels: Literal["exclude", "ignore"] = "exclude", length_key: str = "window_length",
                 size_hint: str = "a longer recording", source: str | None = None, min_train_windows: int = 1,
                 min_val_windows: int = 4) -> tuple[Split, Split, Split, dict[str, StreamPart], dict]:
    """Cut a recording into contiguous train, validation and test stretches and window each.

    Args:
        values: (n, F) rows, physical units.
        labels: (n,) 0/1, 1 = anomalous.
        kinds: (n,) str anomaly type, ``"normal"`` on normal rows.
        times: (n,) float64 seconds since the recording's first row, or None.
        time_text: (n,) str timestamps as written, or None.
        train_end: rows ``[0, train_end)`` are the training part (see :func:`stretch_bounds`), or None.
        train_labels: ``"exclude"``: training and validation windows holding a labelled row are left out;
            ``"ignore"``: the labels before the test stretch are ignored.
        length_key: the config key of ``window_length`` (``window_length``, ``time_steps``), for messages.
        size_hint: what gives more rows (``data.duration_s``, a longer file), for messages.
        source: the recording's name, said first in messages (None: one recording, not named).
        min_train_windows: the fewest training windows accepted (0 where many recordings' pooled counts are checked).
        min_val_windows: likewise for the validation windows.

    Returns:
        ``(train, val, test, {"val": StreamPart, "test": StreamPart}, info)``; the val split holds the normal
        windows at ``streams["val"].starts``, the test split all at ``streams["test"].starts``. ``info`` holds the
        stretches, the windows per split, and the anomalous rows and labelled ranges per stretch and in all.

    Raises:
        ConfigError: ``eval_stride`` above ``window_length``.
        DataError: too few rows or windows for a stretch, naming ``length_key`` and ``size_hint``.
    """
    values, labels = np.asarray(values), (np.asarray(labels) != 0)
    kinds = np.where(labels, np.asarray(kinds, dtype=str), NORMAL)
    n, T = len(values), int(window_length)
    if eval_stride > T:
        raise ConfigError(f"data.eval_stride: invalid value {eval_stride}; it must be at most "
                          f"data.{length_key}={T}, so the test windows cover every test row")
    if train_end is None:
        check_shares(val_fraction, test_fraction)
    bounds = stretch_bounds(n, val_fraction, test_fraction, train_end)
    (_, a), (_, b), _ = bounds
    used = labels.copy()
    if train_labels == "ignore":
        used[:b] = False
    anomalous_before = np.concatenate([[0], np.cumsum(used)])
    where = f"{source}: " if source else ""
    if train_end is None:
        keys = f"data.val_fraction={val_fraction}, data.test_fraction={test_fraction}"
        test_fix, fit_fix = "raise data.test_fraction", "lower data.val_fraction / data.test_fraction"
    else:
        keys = f"data.train_end (row {train_end}), data.val_fraction={val_fraction}"
        test_fix, fit_fix = "lower data.train_end", "raise data.train_end"
    if n - b < T:
        raise DataError(f"{where}the test stretch (rows {b}..{n - 1}, {n - b} rows) is shorter than one window of "
                        f"data.{length_key}={T}; {test_fix}, lower data.{length_key} or use "
                        f"{size_hint} ({n} rows, {keys})")
    train_x = training_windows(values, used, a, T, stride)
    if len(train_x) < min_train_windows:
        raise DataError(f"{where}the train stretch (rows 0..{a - 1}) holds no window of data.{length_key}={T} rows "
                        f"without an anomalous row; {fit_fix} or lower data.{length_key}, or use {size_hint} "
                        f"({keys})")
    val_starts = _clean_starts(anomalous_before, a + covering_starts(b - a, T, eval_stride), T) - a
    if len(val_starts) < min_val_windows:
        raise DataError(f"{where}the validation stretch (rows {a}..{b - 1}) holds {len(val_starts)} windows of "
                        f"data.{length_key}={T} rows without an anomalous row, fewer than the {min_val_windows} the "
                        f"thresholds need; raise data.val_fraction, lower data.eval_stride or data.{length_key}, "
                        f"or use {size_hint} ({keys})")
    test_starts = covering_starts(n - b, T, eval_stride)
    train = Split(x=train_x, y=np.zeros(len(train_x)), kind=np.full(len(train_x), NORMAL))
    val = Split(x=_windows(values[a:b], val_starts, T), y=np.zeros(len(val_starts)),
                kind=np.full(len(val_starts), NORMAL))
    test_y, test_kind = window_labels(labels[b:], kinds[b:], test_starts, T)
    test = Split(x=_windows(values[b:], test_starts, T), y=test_y, kind=test_kind)
    used_kinds = np.where(used, kinds, NORMAL)
    streams = {"val": _part(values, used, used_kinds, a, b, val_starts, times, time_text, sample_period_s),
               "test": _part(values, labels, kinds, b, n, test_starts, times, time_text, sample_period_s)}
    parts = list(zip(("train", "val", "test"), bounds))
    info = {"split": "contiguous", "rows": n, "window_length": T, "stride": int(stride),
            "eval_stride": int(eval_stride), "stretches": {name: [lo, hi] for name, (lo, hi) in parts},
            "windows": {"train": len(train), "val": len(val), "test": len(test)},
            "anomalous_rows": {name: int(labels[lo:hi].sum()) for name, (lo, hi) in parts},
            "labelled_ranges": {name: len(kind_ranges(labels[lo:hi], kinds[lo:hi])) for name, (lo, hi) in parts},
            "labelled_ranges_all": len(kind_ranges(labels, kinds))}
    if train_end is not None:
        info.update(train_end=int(train_end), train_labels=train_labels)
    return train, val, test, streams, info


def warn_about_labels(recordings: list[dict]) -> None:
    """Log one line per finding over the recordings' split infos (:func:`split_stream`'s, plus ``"name"``)."""
    def names(found: list[str]) -> str:
        return ", ".join(found[:12]) + (f", ... ({len(found)} in all)" if len(found) > 12 else "")

    no_test = [f"{r['name']} (rows {r['stretches']['test'][0]}..{r['stretches']['test'][1] - 1})"
               for r in recordings if r["anomalous_rows"]["test"] == 0]
    cut = [r for r in recordings if "train_end" in r]
    few = [f"{r['name']} ({r['labelled_ranges']['test']} of {r['labelled_ranges_all']})" for r in cut
           if 0 < r["labelled_ranges"]["test"] < r["labelled_ranges_all"] / 2]
    unseen = [f"{r['name']} ({r['anomalous_rows']['train'] + r['anomalous_rows']['val']} rows before row "
              f"{r['train_end']})" for r in cut if r["anomalous_rows"]["train"] + r["anomalous_rows"]["val"]]
    how = {"ignore": "trained on as normal (data.train_labels=ignore)",
           "exclude": "left out of training (data.train_labels=exclude)"}[cut[0]["train_labels"]] if cut else ""
    for found, text in ((no_test, "the test stretch holds no anomalous row, so only false alarms can be measured "
                                  "there"),
                        (few, "the test stretch holds fewer than half of the labelled ranges (the rest lie before "
                              "data.train_end)"),
                        (unseen, f"labelled rows inside the training part are never evaluated, {how}")):
        if found:
            logger.warning("data: %s: %s", text, names(found))


def _part(values: np.ndarray, labels: np.ndarray, kinds: np.ndarray, lo: int, hi: int, starts: np.ndarray,
          times: np.ndarray | None, time_text: np.ndarray | None, sample_period_s: float | None) -> StreamPart:
    return StreamPart(values=values[lo:hi], labels=labels[lo:hi].astype(np.int64), kinds=kinds[lo:hi], starts=starts,
                      first_row=lo, sample_period_s=sample_period_s,
                      times=None if times is None else np.asarray(times, dtype=np.float64)[lo:hi],
                      time_text=None if time_text is None else np.asarray(time_text, dtype=str)[lo:hi])
