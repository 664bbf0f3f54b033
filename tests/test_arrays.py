"""utils.core.arrays.check_array: the one check of numeric arrays where they enter (scores, features, windows)."""
from __future__ import annotations

import numpy as np
import pytest

from agents.detector import baselines
from agents.detector.scores import fit_gaussian
from utils.core.arrays import as_scores, check_array


@pytest.mark.parametrize(("values", "dims", "shape", "message"), [
    (np.zeros((3, 2)), "N", None, r"x must have shape \(N,\), got \(3, 2\)"),
    (np.zeros(3), "NTF", None, r"x must have shape \(N, T, F\), got \(3,\)"),
    (np.zeros((2, 5, 3)), "NTF", (6, 3), r"x must have shape \(N, 6, 3\), got \(2, 5, 3\)"),
    (np.zeros((0, 6, 3)), "NTF", None, r"x is empty: shape \(0, 6, 3\)"),
    (np.zeros((4, 0)), "ND", None, r"x is empty: shape \(4, 0\)"),
    (np.array([1.0, np.nan, np.inf, -np.inf]), "N", None, r"x holds NaN or inf \(1 NaN and 2 infinite of 4 values\)"),
    (["a", "b"], "N", None, r"x must be numbers in an array of shape \(N\): could not convert"),
    ([[1.0, 2.0], [3.0]], "ND", None, r"x must be numbers in an array of shape \(N, D\): .*inhomogeneous"),
    ({"a": 1}, "N", None, r"x must be numbers in an array of shape \(N\)"),
])
def test_each_kind_of_bad_array_is_named(values, dims, shape, message) -> None:
    with pytest.raises(ValueError, match=message):
        check_array(values, "x", dims, shape)


def test_a_good_array_comes_back_as_float64_without_a_copy() -> None:
    x = np.arange(6.0).reshape(1, 2, 3)
    assert check_array(x, "x", "NTF", (2, 3)) is x
    assert check_array([[1, 2]], "x", "ND").dtype == np.float64
    assert as_scores([1, 2]).tolist() == [1.0, 2.0]


@pytest.mark.parametrize("entry", [
    lambda bad: as_scores(bad[:, 0, 0]),
    lambda bad: fit_gaussian(bad[:, 0, :]),
    lambda bad: baselines.fit_baselines(bad, ["pca"]),
])
def test_every_entry_refuses_nan_with_the_same_message(entry) -> None:
    bad = np.zeros((5, 4, 3))
    bad[2, 0, :] = np.nan
    with pytest.raises(ValueError, match=r"holds NaN or inf \(\d+ NaN and 0 infinite of \d+ values\)"):
        entry(bad)
