"""Baselines beside the model in every run, and thresholds that state their promise (a tiny VAE run)."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from agents.detector.detector import Detector, split_validation
from tests.helpers import run_main, run_test_split
from utils.core.config import load_config
from utils.core.registry import DATASETS
from agents.detector.baselines import DISPLAY_NAMES, fit_baselines
from agents.detector.thresholds import conformal_threshold
from utils.metrics.window_metrics import compare_with_baselines
from agents.detector.scaler import Scaler


@pytest.fixture(scope="module")
def run(tiny_runs):
    run_dir = tiny_runs.of_model("vae")
    metrics = json.loads((run_dir / "out" / "metrics.json").read_text())
    with open(run_dir / "out" / "scores.csv", newline="") as handle:
        table = list(csv.DictReader(handle))
    return {"dir": run_dir, "metrics": metrics, "table": table}


def test_every_run_has_the_three_baselines_with_metrics_and_promises(run):
    baselines = run["metrics"]["baselines"]
    assert list(baselines) == list(DISPLAY_NAMES.values())
    for name, result in baselines.items():
        assert 0.0 <= result["roc_auc"] <= 1.0 and 0.0 <= result["pr_auc"] <= 1.0, name
        fa = result["false_alarm"]
        assert fa["alpha"] == 0.01 and fa["n"] == run["metrics"]["splits"]["val"]["n"]
        assert fa["measured"]["n_normals"] == run["metrics"]["splits"]["test"]["n"] - \
            run["metrics"]["splits"]["test"]["n_anomalies"]
    assert run["metrics"]["seconds"]["baselines"] > 0


def test_baselines_are_fitted_on_the_runs_scaled_training_normals(run):
    """Refitting the baselines on the rebuilt split, scaled as the run scaled it, gives the same metrics."""
    config = load_config(run["dir"] / "config.json")
    params = {key: value for key, value in config.data.items() if key != "name"}
    data = DATASETS.get(config.data.name)(seed=config.seed, **params)
    scaler = Scaler(config.evaluation.scaler).fit(data.train.x)
    fitted = fit_baselines(scaler.transform(data.train.x), config.evaluation.baselines, seed=config.seed)
    test = run_test_split(run["dir"])
    for name, baseline in fitted.items():
        result = run["metrics"]["baselines"][DISPLAY_NAMES[name]]
        threshold = conformal_threshold(baseline.score(scaler.transform(data.val.x)), 0.01).threshold
        assert result["threshold"] == pytest.approx(threshold, rel=1e-9)
        from sklearn.metrics import roc_auc_score
        assert result["roc_auc"] == pytest.approx(roc_auc_score(test.y, baseline.score(scaler.transform(test.x))))


def test_the_verdict_names_the_best_of_each_side(run):
    verdict = run["metrics"]["versus_baselines"]
    assert verdict == compare_with_baselines(run["metrics"]["scores"], run["metrics"]["baselines"])
    best_model = max(r["roc_auc"] for r in run["metrics"]["scores"].values())
    best_base = max(r["roc_auc"] for r in run["metrics"]["baselines"].values())
    assert verdict["roc_auc"]["model"] == best_model and verdict["roc_auc"]["baseline_value"] == best_base
    assert verdict["roc_auc"]["beats"] == (best_model > best_base)
    assert ("ROC AUC" in verdict["text"]) and ("PR AUC" in verdict["text"])
    report = (run["dir"] / "out" / "report.md").read_text()
    assert verdict["text"] in report and "Baselines on the same split" in report and "rate (95 % CI)" in report


def test_thresholds_are_conformal_and_p_values_say_the_same(run):
    detector = Detector.load(run["dir"])
    promises = detector.promises()
    assert set(promises) == set(detector.score_names)
    for name, promise in promises.items():
        assert detector.thresholds[name] == promise.threshold
        assert run["metrics"]["scores"][name]["false_alarm"]["k"] == promise.k
        score = np.array([float(row[f"score_{name}"]) for row in run["table"]])
        alarm = np.array([int(row[f"alarm_{name}"]) for row in run["table"]])
        p = np.array([float(row[f"pvalue_{name}"]) for row in run["table"]])
        np.testing.assert_array_equal(alarm, (p <= promise.bound + 1e-9).astype(int))
        assert ((p > 0) & (p <= 1)).all()
        np.testing.assert_allclose(detector.p_values({name: score})[name], p, rtol=1e-5)


def test_a_score_fitted_on_validation_normals_is_calibrated_on_the_other_half(tiny_runs):
    """error_gaussian is fitted on one half of the validation normals and calibrated on the other half, with
    the same statistics that score new windows; scores fitted on the training normals use every one."""
    run_dir = tiny_runs.of_config("vae_converter.json", "data.n_samples=300", "data.time_steps=25",
                                  "trainer.epochs=2", "trainer.progress_bar=false", "evaluation.make_plots=false",
                                  'evaluation.scores=["reconstruction", "error_gaussian"]')
    detector = Detector.load(run_dir)
    config = load_config(run_dir / "config.json")
    params = {key: value for key, value in config.data.items() if key != "name"}
    val = DATASETS.get(config.data.name)(seed=config.seed, **params).val
    fit_rows, calibration_rows = split_validation(len(val.x), config.seed)
    scores = detector.score(val.x)
    np.testing.assert_allclose(detector.calibration["reconstruction"], scores["reconstruction"], rtol=1e-6)
    np.testing.assert_allclose(detector.calibration["error_gaussian"], scores["error_gaussian"][calibration_rows],
                               rtol=1e-6)
    in_sample = scores["error_gaussian"][fit_rows]
    assert np.median(detector.calibration["error_gaussian"]) > 1.2 * np.median(in_sample)
    promise = detector.promises()["error_gaussian"]
    assert promise.n == len(calibration_rows)


def test_no_baselines_when_the_list_is_empty(tmp_path):
    assert run_main("vae_converter.json", tmp_path, "data.n_samples=200", "data.time_steps=25", "trainer.epochs=1",
                    "trainer.progress_bar=false", "evaluation.make_plots=false", "evaluation.baselines=[]",
                    "exp_name=nobase") == 0
    metrics = json.loads((tmp_path / "nobase" / "out" / "metrics.json").read_text())
    assert metrics["baselines"] == {} and metrics["versus_baselines"] is None
