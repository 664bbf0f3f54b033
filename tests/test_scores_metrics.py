"""Scores, thresholds and metrics checked against torch/SciPy/sklearn references."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from scipy.spatial.distance import mahalanobis as scipy_mahalanobis
from sklearn.covariance import LedoitWolf
from sklearn.metrics import (
    average_precision_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
    roc_auc_score,
)

from utils.metrics.window_metrics import (
    binary_metrics,
    evaluate_scores,
    format_metrics_table,
    per_kind_metrics,
    to_jsonable,
)
from agents.detector.scores import (
    euclidean_distance,
    feature_contributions,
    fit_gaussian,
    mahalanobis_distance,
    reconstruction_error,
)
from agents.detector.thresholds import best_f1_threshold
from utils.core.arrays import predict
from utils.core.registry import SCORES


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(0)


# ----------------------------------------------------------------- scores
@pytest.mark.parametrize("shape", [(5, 7), (4, 6, 3), (3, 2, 4, 5)])
@pytest.mark.parametrize("kind,ref", [("mse", F.mse_loss), ("mae", F.l1_loss)])
def test_reconstruction_error_matches_torch(shape, kind, ref):
    torch.manual_seed(0)
    x, x_hat = torch.randn(shape), torch.randn(shape)
    expected = ref(x_hat, x, reduction="none").reshape(shape[0], -1).mean(dim=1)
    got = reconstruction_error(x, x_hat, kind)
    assert got.shape == (shape[0],)
    torch.testing.assert_close(got, expected)


def test_reconstruction_error_rejects_bad_input():
    x = torch.zeros(2, 3)
    with pytest.raises(ValueError, match="kind"):
        reconstruction_error(x, x, "rmse")
    with pytest.raises(ValueError, match="shape"):
        reconstruction_error(x, torch.zeros(2, 4))


@pytest.mark.parametrize("kind", ["mse", "mae"])
def test_feature_contributions_mean_is_reconstruction_error(kind):
    torch.manual_seed(1)
    x, x_hat = torch.randn(6, 10, 4), torch.randn(6, 10, 4)
    contrib = feature_contributions(x, x_hat, kind)
    assert contrib.shape == (6, 4)
    torch.testing.assert_close(contrib.mean(dim=1), reconstruction_error(x, x_hat, kind))
    with pytest.raises(ValueError):
        feature_contributions(x[:, :, 0], x_hat[:, :, 0], kind)


def test_fit_gaussian_matches_ledoit_wolf(rng):
    z = rng.normal(size=(50, 4)) @ rng.normal(size=(4, 4))
    fit = fit_gaussian(z)
    lw = LedoitWolf().fit(z)
    assert fit.shrinkage == pytest.approx(lw.shrinkage_)
    np.testing.assert_allclose(fit.mean, z.mean(axis=0))
    np.testing.assert_allclose(fit.precision, lw.precision_, rtol=1e-8, atol=1e-10)


def test_mahalanobis_matches_scipy(rng):
    z_normal = rng.normal(size=(100, 3)) * [1.0, 5.0, 0.2]
    fit = fit_gaussian(z_normal)
    z = rng.normal(size=(20, 3)).astype(np.float32)
    got = mahalanobis_distance(z, fit)
    expected = [scipy_mahalanobis(row.astype(np.float64), fit.mean, fit.precision) for row in z]
    assert got.dtype == np.float64 and got.shape == (20,)
    np.testing.assert_allclose(got, expected, rtol=1e-10)
    with pytest.raises(ValueError, match="features"):
        mahalanobis_distance(z[:, :2], fit)


@pytest.mark.parametrize("case", ["n_less_than_d", "constant_column", "all_constant"])
def test_fit_gaussian_singular_covariance_gives_finite_scores(rng, case):
    if case == "n_less_than_d":
        z = rng.normal(size=(5, 20))
    elif case == "constant_column":
        z = rng.normal(size=(40, 3))
        z[:, 1] = 2.5
    else:
        z = np.ones((10, 3))
    fit = fit_gaussian(z)
    assert np.all(np.isfinite(fit.precision))
    d = mahalanobis_distance(rng.normal(size=(8, z.shape[1])), fit)
    assert np.all(np.isfinite(d)) and np.all(d >= 0)


def test_a_gaussian_of_identical_samples_scores_them_0_and_any_departure_high():
    """Zero covariance has no spread to shrink; its pseudo-inverse would score everything 0 (never an alarm)."""
    z = np.full((10, 3), 2.0)
    z[1:] += np.random.default_rng(0).normal(scale=1e-8, size=(9, 3))  # a float32 model's rounding
    fit = fit_gaussian(z)
    assert (mahalanobis_distance(z[:2], fit) < 0.01).all()
    departed = z[:1] + np.array([[0.01, 0.0, 0.0]])
    assert mahalanobis_distance(departed, fit)[0] > 10


def test_fit_gaussian_rejects_bad_input():
    with pytest.raises(ValueError, match="at least 2"):
        fit_gaussian(np.zeros((1, 3)))
    with pytest.raises(ValueError, match="NaN"):
        fit_gaussian(np.array([[0.0, np.nan], [1.0, 2.0]]))
    with pytest.raises(ValueError, match="shape"):
        fit_gaussian(np.zeros(5))


def test_euclidean_matches_numpy(rng):
    z, c = rng.normal(size=(12, 5)), rng.normal(size=5)
    np.testing.assert_allclose(euclidean_distance(z, c), np.linalg.norm(z - c, axis=1))


def test_error_gaussian_score_matches_direct_numpy(rng):
    n, t, f = 60, 8, 2
    # Normal errors: time step 3 normally has large, variable errors.
    scale = np.ones((t, f))
    scale[3] = 5.0
    normal = np.abs(rng.normal(size=(n, t, f))) * scale
    score = SCORES.get("error_gaussian")()

    def error_gaussian(errors):  # x - x_hat = errors: the score's own features, fitted statistics and distance
        return score.score(score.features(torch.from_numpy(errors), torch.zeros(errors.shape, dtype=torch.float64),
                                          None), stats)

    stats = score.fit(score.features(torch.from_numpy(normal), torch.zeros(n, t, f, dtype=torch.float64), None))
    assert tuple(stats["mean"].shape) == (t * f,)
    test = np.abs(rng.normal(size=(10, t, f))) * scale
    e = test.reshape(10, -1)
    lw = LedoitWolf().fit(normal.reshape(n, -1))
    diff = e - lw.location_
    expected = np.sqrt(np.sum(diff @ np.linalg.pinv(lw.covariance_) * diff, axis=1))
    np.testing.assert_allclose(error_gaussian(test), expected, rtol=1e-8)
    # A large error where errors are normally small scores higher than at step 3.
    odd_step = normal.mean(axis=0, keepdims=True)
    usual_step = odd_step.copy()
    odd_step[0, 0, 0] += 5.0
    usual_step[0, 3, 0] += 5.0
    assert error_gaussian(odd_step)[0] > error_gaussian(usual_step)[0]


# ------------------------------------------------------------- thresholds
def test_predict_is_strictly_greater():
    out = predict(np.array([0.5, 1.0, 1.5]), 1.0)
    assert out.dtype == np.int64 and out.tolist() == [0, 0, 1]


@pytest.mark.parametrize("seed", range(5))
def test_best_f1_matches_brute_force(seed):
    rng = np.random.default_rng(seed)
    y = (rng.random(80) < 0.3).astype(int)
    y[0] = 1
    scores = np.round(rng.normal(size=80) + 1.2 * y, 1)  # rounding creates ties
    threshold, f1 = best_f1_threshold(y, scores)
    brute = max(f1_score(y, (scores >= u).astype(int), zero_division=0)
                for u in np.unique(scores))
    assert f1 == pytest.approx(brute)
    assert f1_score(y, predict(scores, threshold)) == pytest.approx(brute)


def test_best_f1_perfect_separation_and_bad_input():
    y = np.array([0, 0, 0, 1, 1])
    s = np.array([0.1, 0.2, 0.3, 0.8, 0.9])
    threshold, f1 = best_f1_threshold(y, s)
    assert f1 == 1.0 and predict(s, threshold).tolist() == y.tolist()
    with pytest.raises(ValueError, match="anomaly"):
        best_f1_threshold(np.zeros(5, dtype=int), s)
    with pytest.raises(ValueError, match="NaN"):
        best_f1_threshold(y, np.array([0.1, np.nan, 0.3, 0.8, 0.9]))


# ---------------------------------------------------------------- metrics
def test_binary_metrics_matches_sklearn(rng):
    y = (rng.random(150) < 0.2).astype(int)
    s = rng.normal(size=150) + y
    t = 0.7
    m = binary_metrics(y, s, t)
    y_pred = (s > t).astype(int)
    p, r, f, _ = precision_recall_fscore_support(y, y_pred, labels=[0, 1], zero_division=0)
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, s))
    assert m["pr_auc"] == pytest.approx(average_precision_score(y, s))
    assert m["base_rate"] == pytest.approx(y.mean())
    assert (m["precision"], m["recall"], m["f1"]) == pytest.approx((p[1], r[1], f[1]))
    assert m["confusion_matrix"] == confusion_matrix(y, y_pred).tolist()
    assert m["classification_report"]["anomaly"]["recall"] == pytest.approx(r[1])
    assert (m["n_samples"], m["n_anomalies"], m["threshold"]) == (150, int(y.sum()), t)
    json.dumps(m, allow_nan=False)


@pytest.mark.parametrize("label", [0, 1])
def test_binary_metrics_one_class_gives_none(label):
    m = binary_metrics(np.full(6, label), np.arange(6.0), 2.5)
    assert m["roc_auc"] is None and m["pr_auc"] is None
    assert m["base_rate"] == float(label)
    json.dumps(m, allow_nan=False)


def test_binary_metrics_rejects_bad_input():
    with pytest.raises(ValueError, match="shape"):
        binary_metrics(np.array([0, 1]), np.array([0.1, 0.2, 0.3]), 0.5)
    with pytest.raises(ValueError, match="0"):
        binary_metrics(np.array([0, 2]), np.array([0.1, 0.2]), 0.5)


def _synthetic(rng: np.random.Generator):
    """200 normals, 100 'separated' (all above the normals), 100 'random'."""
    kind = np.array(["normal"] * 200 + ["separated"] * 100 + ["random"] * 100)
    scores = np.concatenate([rng.random(200), 2.0 + rng.random(100), rng.random(100)])
    return (kind != "normal").astype(int), kind, scores


def test_per_kind_metrics(rng):
    _, kind, scores = _synthetic(rng)
    out = per_kind_metrics(kind, scores, threshold=1.0)
    assert sorted(out) == ["random", "separated"]
    assert out["separated"]["roc_auc"] == 1.0 and out["separated"]["pr_auc"] == 1.0
    assert out["separated"]["recall"] == 1.0 and out["separated"]["count"] == 100
    assert abs(out["random"]["roc_auc"] - 0.5) < 0.1
    assert out["random"]["recall"] == 0.0


def test_evaluate_scores_is_json_and_table_names_everything(rng):
    y, kind, scores = _synthetic(rng)
    scores_by_name = {"mahalanobis": scores, "recon_mse": np.float32(rng.random(400))}
    thresholds = {"mahalanobis": np.float64(1.0), "recon_mse": 0.5}
    results = evaluate_scores(y, kind, scores_by_name, thresholds)
    text = json.dumps(results, allow_nan=False)
    assert json.loads(text) == results
    assert results["mahalanobis"]["per_kind"]["separated"]["roc_auc"] == 1.0
    table = format_metrics_table(results)
    for word in ("mahalanobis", "recon_mse", "separated", "random", "ROC AUC", "PR AUC"):
        assert word in table
    assert len(table.splitlines()) == 4
    with pytest.raises(ValueError, match="threshold"):
        evaluate_scores(y, kind, scores_by_name, {"mahalanobis": 1.0})


def test_to_jsonable():
    obj = {1: np.float32(0.5), "a": np.array([[1, 2]]), "b": (np.int64(3), float("nan")),
           "c": np.bool_(True), "d": [np.inf, None]}
    out = to_jsonable(obj)
    assert out == {"1": 0.5, "a": [[1, 2]], "b": [3, None], "c": True, "d": [None, None]}
    assert type(out["b"][0]) is int
    json.dumps(out, allow_nan=False)
