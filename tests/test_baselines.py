"""The scikit-learn baselines of utils.scoring.baselines against direct computations."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from utils.scoring import baselines as bl


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    """40 training windows and 7 windows to score, (N, T=6, F=3), random normal values."""
    rng = np.random.default_rng(3)
    return rng.normal(size=(40, 6, 3)), rng.normal(size=(7, 6, 3))


def test_knn_is_mean_distance_to_five_nearest(data) -> None:
    train, test = data
    scores = bl.score_baselines(bl.fit_baselines(train, ["knn"]), test)["knn"]
    dist = np.linalg.norm(test.reshape(7, 1, -1) - train.reshape(1, 40, -1), axis=2)
    np.testing.assert_allclose(scores, np.sort(dist, axis=1)[:, :5].mean(axis=1), rtol=1e-10)
    assert scores.dtype == np.float64 and scores.shape == (7,)


def test_pca_is_mean_squared_error_on_ten_components(data) -> None:
    train, test = data
    fitted = bl.fit_baselines(train, ["pca"])
    assert fitted["pca"].model.n_components == 10
    x, mean = train.reshape(40, -1), train.reshape(40, -1).mean(axis=0)
    components = np.linalg.svd(x - mean, full_matrices=False)[2][:10]
    centred = test.reshape(7, -1) - mean
    recon = centred @ components.T @ components + mean
    expected = ((test.reshape(7, -1) - recon) ** 2).mean(axis=1)
    np.testing.assert_allclose(bl.score_baselines(fitted, test)["pca"], expected, rtol=1e-8)


def test_isolation_forest_is_negative_score_samples(data) -> None:
    from sklearn.ensemble import IsolationForest

    train, test = data
    scores = bl.score_baselines(bl.fit_baselines(train, ["isolation_forest"], seed=7), test)["isolation_forest"]
    forest = IsolationForest(n_estimators=100, random_state=7).fit(train.reshape(40, -1))
    np.testing.assert_array_equal(scores, -forest.score_samples(test.reshape(7, -1)))


def test_obvious_outlier_scores_highest(data) -> None:
    train, test = data
    windows = np.concatenate([test, np.full((1, 6, 3), 8.0)])
    for name, scores in bl.score_baselines(bl.fit_baselines(train, seed=1), windows).items():
        assert scores.argmax() == len(windows) - 1, name
        assert scores[-1] > scores[:-1].max(), name


def test_same_seed_same_scores_other_seed_other_forest(data) -> None:
    train, test = data
    first = bl.score_baselines(bl.fit_baselines(train, seed=5), test)
    again = bl.score_baselines(bl.fit_baselines(train, seed=5), test)
    for name in bl.BASELINE_NAMES:
        np.testing.assert_array_equal(first[name], again[name])
    other = bl.score_baselines(bl.fit_baselines(train, ["isolation_forest"], seed=6), test)
    assert not np.array_equal(first["isolation_forest"], other["isolation_forest"])


@pytest.mark.parametrize(("n_train", "shape", "expected"), [(4, (6, 3), 3), (40, (2, 2), 4), (40, (6, 3), 10)])
def test_pca_components_capped_at_n_minus_one_and_dims(n_train: int, shape: tuple[int, int],
                                                       expected: int) -> None:
    train = np.random.default_rng(0).normal(size=(n_train, *shape))
    assert bl.fit_baselines(train, ["pca"])["pca"].model.n_components == expected
    assert bl.pca_components(n_train, shape[0] * shape[1]) == expected


def test_knn_neighbours_capped_at_training_size() -> None:
    train = np.random.default_rng(0).normal(size=(3, 4, 1))
    fitted = bl.fit_baselines(train, ["knn"])
    assert fitted["knn"].model.k == 3
    assert fitted["knn"].score(train).shape == (3,)


def test_names_validated_and_display_names() -> None:
    with pytest.raises(ValueError, match="valid baselines: knn, pca, isolation_forest"):
        bl.fit_baselines(np.zeros((4, 2, 1)), ["knn", "lof"])
    with pytest.raises(ValueError, match="no baseline"):
        bl.check_names([])
    assert bl.check_names(["pca", "knn", "pca"]) == ("pca", "knn")
    assert bl.check_names("pca") == ("pca",)
    assert set(bl.DISPLAY_NAMES) == set(bl.BASELINE_NAMES)
    assert bl.DISPLAY_NAMES["isolation_forest"] == "IsolationForest (100 trees)"


@pytest.mark.parametrize(("windows", "message"), [
    (np.zeros((5, 6)), r"shape \(N, T, F\)"),
    (np.zeros((0, 6, 3)), "empty"),
    (np.full((5, 6, 3), np.nan), "NaN or inf"),
    (np.zeros((1, 6, 3)), "at least 2 windows"),
])
def test_bad_training_windows_refused(windows: np.ndarray, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        bl.fit_baselines(windows)


def test_windows_of_another_shape_refused(data) -> None:
    train, _ = data
    fitted = bl.fit_baselines(train, ["pca"])
    with pytest.raises(ValueError, match=r"fitted on \(6, 3\)"):
        bl.score_baselines(fitted, np.zeros((2, 5, 3)))


def test_importing_baselines_does_not_import_sklearn() -> None:
    code = ("import sys, utils.scoring.baselines; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
