"""The scikit-learn baselines of agents.detector.baselines against direct computations."""
from __future__ import annotations

import subprocess
import sys

import numpy as np
import pytest

from agents.detector import baselines as bl


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
    code = ("import sys, agents.detector.baselines; "
            "print(sorted(m for m in sys.modules if m.split('.')[0] == 'sklearn'))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_the_saved_state_scores_as_the_fitted_baselines(data, tmp_path) -> None:
    """baselines_checkpoint (tensors) -> torch.save -> torch.load(weights_only=True) -> load_baselines: the same scores,
    the same thresholds; the IsolationForest (scored from its trees' arrays) equals scikit-learn's score_samples
    to 1e-12."""
    import torch
    from sklearn.ensemble import IsolationForest

    from agents.detector.detector import baselines_checkpoint

    train, test = data
    calibrated = bl.calibrate_baselines(bl.fit_baselines(train, seed=4), test, false_alarm_rate=0.2)
    torch.save(baselines_checkpoint(calibrated), tmp_path / "b.pt")
    loaded = bl.load_baselines(torch.load(tmp_path / "b.pt", weights_only=True), 0.2)
    windows = np.concatenate([test, 3 * test])
    for name, baseline in calibrated.items():
        # (kNN: scikit-learn's distances may round off otherwise in a new index of the same windows)
        np.testing.assert_allclose(loaded[name].score(windows), baseline.score(windows), rtol=1e-12)
        assert loaded[name].promise == baseline.promise
    forest = IsolationForest(n_estimators=100, random_state=4).fit(train.reshape(40, -1))
    np.testing.assert_allclose(loaded["isolation_forest"].score(windows), -forest.score_samples(
        windows.reshape(len(windows), -1)), rtol=0, atol=1e-12)


def test_knn_reference_is_a_seeded_subsample_of_at_most_the_cap(monkeypatch) -> None:
    train = np.random.default_rng(0).normal(size=(30, 2, 2))
    monkeypatch.setattr(bl, "KNN_MAX_REFERENCE", 12)
    a, b = (bl.fit_baselines(train, ["knn"], seed=1)["knn"].model.reference for _ in range(2))
    other = bl.fit_baselines(train, ["knn"], seed=2)["knn"].model.reference
    assert a.shape == (12, 4) and np.array_equal(a, b) and not np.array_equal(a, other)
    flat = train.reshape(30, -1)
    assert all((flat == row).all(axis=1).any() for row in a)  # rows of the training windows, none twice
    assert len(np.unique(a, axis=0)) == 12
