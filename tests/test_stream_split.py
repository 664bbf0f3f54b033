"""split_stream (datasets/splits.py): contiguous train / validation / test stretches of one recording,
their windows, the labelled ranges of a stretch, and the refusals naming the keys."""
from __future__ import annotations

import logging

import numpy as np
import pytest

from datasets.splits import NORMAL
from datasets.splits import kind_ranges, split_stream, warn_about_labels
from tests.helpers import brute_ranges
from utils.core.errors import ConfigError, DataError

T, STRIDE, EVAL = 10, 4, 3


def labelled_series(n=400, seed=0):
    """Rows whose first feature is the row number (so a window names its rows), labelled ranges of two kinds."""
    rng = np.random.default_rng(seed)
    values = np.stack([np.arange(n, dtype=np.float64), rng.normal(size=n)], axis=1)
    labels, kinds = np.zeros(n, dtype=np.int64), np.full(n, NORMAL, dtype=object)
    for start, end, kind in [(30, 33, "a"), (95, 110, "b"), (300, 302, "a"), (350, 351, "b"), (361, 370, "a")]:
        labels[start:end], kinds[start:end] = 1, kind
    return values, labels, kinds.astype(str)


# ----- split_stream ----------------------------------------------------------------------------------
def test_stretches_are_contiguous_ordered_and_share_no_row():
    values, labels, kinds = labelled_series()
    train, val, test, streams, info = split_stream(values, labels, kinds, T, STRIDE, EVAL, 0.2, 0.25)
    assert info["stretches"] == {"train": [0, 220], "val": [220, 300], "test": [300, 400]}
    rows = {name: split.x[:, :, 0].astype(int) for name, split in (("train", train), ("val", val), ("test", test))}
    for name, (lo, hi) in info["stretches"].items():  # every window's rows lie inside its own stretch
        assert rows[name].min() >= lo and rows[name].max() < hi, name
        np.testing.assert_array_equal(np.diff(rows[name], axis=1), 1)  # consecutive rows, in order
    assert set(rows["train"].ravel()).isdisjoint(rows["val"].ravel())
    assert set(rows["val"].ravel()).isdisjoint(rows["test"].ravel())
    assert streams["val"].first_row == 220 and streams["test"].first_row == 300
    np.testing.assert_array_equal(streams["test"].values, values[300:].astype(np.float32))
    np.testing.assert_array_equal(streams["val"].labels, labels[220:300])
    assert info["windows"] == {"train": len(train), "val": len(val), "test": len(test)}
    assert info["anomalous_rows"] == {"train": 18, "val": 0, "test": 12}
    assert info["labelled_ranges"] == {"train": 2, "val": 0, "test": 3}


def test_train_and_val_windows_are_every_clean_window_at_their_stride():
    values, labels, kinds = labelled_series()
    train, val, _, streams, _ = split_stream(values, labels, kinds, T, STRIDE, EVAL, 0.2, 0.25)
    expected = [s for s in range(0, 220 - T + 1, STRIDE) if labels[s:s + T].sum() == 0]  # brute force
    np.testing.assert_array_equal(train.x[:, 0, 0], expected)
    starts = list(range(0, 80 - T + 1, EVAL)) + [80 - T]  # the val stretch has no anomaly: all windows
    np.testing.assert_array_equal(streams["val"].starts, sorted(set(starts)))
    np.testing.assert_array_equal(val.x[:, 0, 0], 220 + streams["val"].starts)
    for split in (train, val):
        assert split.y.sum() == 0 and set(split.kind) == {NORMAL}
        assert labels[split.x[:, :, 0].astype(int)].sum() == 0


def test_test_windows_are_the_stretch_rows_in_order_and_cover_every_row():
    values, labels, kinds = labelled_series()
    _, _, test, streams, _ = split_stream(values, labels, kinds, T, STRIDE, EVAL, 0.2, 0.25)
    part = streams["test"]
    assert len(test) == len(part.starts) and np.all(np.diff(part.starts) > 0)
    for i, s in enumerate(part.starts):
        np.testing.assert_array_equal(test.x[i], part.values[s:s + T])
        rows = np.arange(s, s + T)
        assert test.y[i] == int(part.labels[rows].any())
        assert test.kind[i] == (part.kinds[rows[part.labels[rows] == 1][0]] if test.y[i] else NORMAL)
    covered = np.zeros(len(part), dtype=bool)
    for s in part.starts:
        covered[s:s + T] = True
    assert covered.all() and part.starts[-1] == len(part) - T


def test_val_part_starts_are_its_normal_windows_when_it_holds_anomalies():
    values, labels, kinds = labelled_series()
    _, val, _, streams, info = split_stream(values, labels, kinds, T, STRIDE, EVAL, 0.3, 0.2)
    lo, _ = info["stretches"]["val"]
    part = streams["val"]
    assert part.labels.sum() > 0
    for i, s in enumerate(part.starts):
        np.testing.assert_array_equal(val.x[i], part.values[s:s + T])
        np.testing.assert_array_equal(val.x[i, :, 0], lo + s + np.arange(T))  # recording rows lo + s ...
        assert part.labels[s:s + T].sum() == 0
    assert info["windows"]["val"] == len(val)


def test_kind_ranges_match_a_row_by_row_scan():
    values, labels, kinds = labelled_series()
    labels[110:115], kinds[110:115] = 1, "a"  # a run of "a" right after one of "b": two ranges
    got = [(r["start"], r["end"], r["kind"]) for r in kind_ranges(labels, kinds)]
    assert got == brute_ranges(labels, kinds) and (95, 110, "b") in got and (110, 115, "a") in got
    assert kind_ranges(labels[300:], kinds[300:], offset=300)[0] == {"start": 300, "end": 302, "kind": "a"}


def test_split_stream_refusals_name_the_keys(caplog, monkeypatch):
    values, labels, kinds = labelled_series()
    with pytest.raises(ConfigError, match=r"data.eval_stride: invalid value 11; it must be at most "
                                          r"data.window_length=10"):
        split_stream(values, labels, kinds, T, STRIDE, 11, 0.2, 0.2)
    with pytest.raises(DataError, match=r"test stretch \(rows 396..399, 4 rows\) is shorter than one window of "
                                        r"data.window_length=10; raise data.test_fraction"):
        split_stream(values, labels, kinds, T, STRIDE, EVAL, 0.2, 0.01)
    with pytest.raises(DataError, match=r"validation stretch \(rows 308..319\) holds 2 windows .* fewer than the 4 .* "
                                        r"raise data.val_fraction"):
        split_stream(values, labels, kinds, T, STRIDE, T, 0.03, 0.2)
    dirty = np.ones_like(labels)
    dirty[240:] = 0
    with pytest.raises(DataError, match=r"train stretch \(rows 0..239\) holds no window .* without an anomalous row"):
        split_stream(values, dirty, np.where(dirty == 1, "x", NORMAL), T, STRIDE, EVAL, 0.2, 0.2)
    with pytest.raises(ConfigError, match=r"data.test_fraction: invalid value 1.5"):
        split_stream(values, labels, kinds, T, STRIDE, EVAL, 0.2, 1.5)
    with pytest.raises(ConfigError, match=r"data.val_fraction: val_fraction \+ test_fraction must be below 1"):
        split_stream(values, labels, kinds, T, STRIDE, EVAL, 0.6, 0.5)
    clean = np.zeros_like(labels)
    # once a run has set up the "anomaly" logger it does not propagate (utils/runtime/logger.py): let caplog see it
    monkeypatch.setattr(logging.getLogger("anomaly"), "propagate", True)
    with caplog.at_level(logging.WARNING, logger="anomaly"):
        *_, info = split_stream(values, clean, np.full(len(clean), NORMAL), T, STRIDE, EVAL, 0.2, 0.2)
        warn_about_labels([{"name": "rec.csv", **info}])
    assert "holds no anomalous row" in caplog.text and "rec.csv (rows 320..399)" in caplog.text
    assert info["anomalous_rows"]["test"] == 0
