"""Per-time-step values from window values: the whole-array path, the streaming accumulator and a brute force agree."""
from __future__ import annotations

import numpy as np
import pytest

from agents.detector.streaming import PointAccumulator, point_values
from utils.metrics.ranges import (
    alarm_ranges,
    covering_starts,
    kind_runs,
    label_ranges,
    merge_ranges,
    overlapping,
)


def brute(values: np.ndarray, starts: np.ndarray, t: int, n: int, how: str) -> np.ndarray:
    out = np.full((n, values.shape[1]), np.nan)
    for r in range(n):
        mine = [v for s, v in zip(starts, values) if s <= r < s + t]
        if mine:
            out[r] = {"max": np.max, "mean": np.mean, "min": np.min}[how](mine, axis=0)
    return out


def streamed(values: np.ndarray, starts: np.ndarray, t: int, n: int, how: str, rng) -> np.ndarray:
    acc, parts, i = PointAccumulator(t, how, values.shape[1]), [], 0
    while i < len(starts):
        k = int(rng.integers(1, 5))
        parts.append(acc.add(starts[i:i + k], values[i:i + k]))
        i += k
    parts.append(acc.finish())
    out = np.full((n, values.shape[1]), np.nan)
    for first, got in parts:
        out[first:first + len(got)] = got[: max(0, n - first)]
    return out


@pytest.mark.parametrize("how", ["max", "mean", "min"])
@pytest.mark.parametrize("n, t, stride", [(1, 1, 1), (11, 4, 3), (60, 7, 7), (61, 7, 9), (200, 25, 1), (50, 50, 5)])
def test_whole_array_streamed_and_brute_force_agree(n, t, stride, how):
    rng = np.random.default_rng(n * 31 + t)
    starts = covering_starts(n, t, stride) if stride <= t else np.arange(0, n - t + 1, stride)
    values = rng.normal(size=(len(starts), 2))
    expected = brute(values, starts, t, n, how)
    np.testing.assert_allclose(point_values(values, starts, t, n, how), expected, equal_nan=True, rtol=1e-12)
    np.testing.assert_allclose(point_values(values[:, 0], starts, t, n, how), expected[:, 0], equal_nan=True,
                               rtol=1e-12)
    np.testing.assert_allclose(streamed(values, starts, t, n, how, rng), expected, equal_nan=True, rtol=1e-12)
    # one fold: the whole array and any split into batches give the same floats, bit for bit
    np.testing.assert_array_equal(streamed(values, starts, t, n, how, rng), point_values(values, starts, t, n, how))


def test_rows_no_window_covers_are_nan_and_covering_starts_cover_every_row():
    assert np.isnan(point_values(np.array([1.0, 2.0]), np.array([0, 6]), 4, 11)[[4, 5, 10]]).all()
    for n, t, stride in [(10, 4, 3), (11, 4, 3), (100, 10, 10), (5, 5, 1), (3, 5, 1)]:
        starts = covering_starts(n, t, stride)
        covered = np.zeros(n, dtype=bool)
        for s in starts:
            covered[s:s + t] = True
        assert covered.all() == (n >= t) and (np.diff(starts) > 0).all()


def test_the_accumulator_refuses_windows_out_of_order():
    acc = PointAccumulator(4)
    acc.add(np.array([5]), np.array([1.0]))
    with pytest.raises(ValueError, match="increasing start order"):
        acc.add(np.array([2]), np.array([1.0]))


def test_ranges_against_a_brute_force():
    rng = np.random.default_rng(7)
    for _ in range(200):
        n = int(rng.integers(1, 40))
        a, b = rng.random(n) < 0.3, rng.random(n) < 0.3
        ra, rb = label_ranges(a), label_ranges(b)
        assert np.array_equal(np.concatenate([np.arange(s, e) for s, e in ra] or [np.zeros(0, int)]),
                              np.flatnonzero(a))
        brute_overlap = [bool(b[s:e].any()) for s, e in ra]
        assert overlapping(ra, rb).tolist() == brute_overlap
        gap = int(rng.integers(0, 4))
        merged = merge_ranges(ra, gap)
        assert all(nxt[0] - prev[1] > gap for prev, nxt in zip(merged[:-1], merged[1:]))
        assert np.array_equal(alarm_ranges(a.astype(float), 0.5, gap), merged)


def test_kind_runs_split_labelled_rows_where_the_kind_changes():
    rng = np.random.default_rng(3)
    for _ in range(100):
        n = int(rng.integers(1, 30))
        flags, kinds = rng.random(n) < 0.5, rng.choice(["a", "b"], n)
        expected, start = [], None
        for r in range(n + 1):
            same = start is not None and r < n and flags[r] and kinds[r] == kinds[start]
            if start is not None and not same:
                expected.append((start, r, str(kinds[start])))
                start = None
            if start is None and r < n and flags[r]:
                start = r
        assert kind_runs(flags, kinds) == expected
        assert [[s, e] for s, e, _ in kind_runs(flags)] == label_ranges(flags).tolist()
