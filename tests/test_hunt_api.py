"""The trained detector as a Python user meets it: what a bug hunt found silently wrong (docs/scoring.md, "The
trained detector in Python"; docs/export.md)."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from agents.detector.detector import Detector, export_detector
from datasets.converter import simulate_normal
from tests.helpers import TINY_DATA
from utils.core.errors import CheckpointError, ConfigError
from utils.runs.checkpoints import load_checkpoint

T = TINY_DATA["time_steps"]


@pytest.fixture(scope="module")
def vae_run(tiny_runs):
    return tiny_runs.of_model("vae")


@pytest.fixture(scope="module")
def windows():
    return simulate_normal(6, T, np.random.default_rng(7))


@pytest.mark.parametrize("fmt", ["onnx", "torchscript"])
def test_exporting_leaves_the_detector_scoring_as_before(vae_run, windows, tmp_path, fmt):
    """The ONNX exporter restored the wrapper's training mode onto the model: the VAE then sampled its latent code,
    and every later score of the same detector came out random."""
    if fmt == "onnx":
        pytest.importorskip("onnx")
    detector = Detector.load(vae_run, device="cpu")
    before = detector.score(windows)
    export_detector(detector, fmt, tmp_path / f"model.{fmt}")
    assert not detector.model.training
    after = detector.score(windows)
    for name in before:
        np.testing.assert_array_equal(after[name], before[name])


def only_scores(run, names: list[str]) -> Detector:
    """The detector of ``run``'s best.pt as a run with ``evaluation.scores = names`` saves it."""
    ckpt = load_checkpoint(run / "checkpoints" / "best.pt")
    scoring = ckpt["scoring"]
    scoring["scores"] = names
    for key in ("statistics", "thresholds", "calibration"):
        scoring[key] = {k: v for k, v in scoring[key].items() if k in names}
    ckpt["config"]["evaluation"]["scores"] = names
    return Detector.from_checkpoint(ckpt, run / "checkpoints" / "best.pt")


def test_export_of_a_run_without_a_reconstruction_score_is_refused(vae_run, tmp_path):
    """The exported graph computes the reconstruction error; a run that kept no threshold for it wrote
    ``"threshold": NaN`` (not JSON), under which ``score > threshold`` never alarms."""
    detector = only_scores(vae_run, ["latent_mahalanobis"])
    with pytest.raises(ConfigError, match=r"evaluation\.scores.*latent_mahalanobis.*reconstruction"):
        export_detector(detector, "torchscript", tmp_path / "model.pt")
    assert list(tmp_path.iterdir()) == []


def test_export_of_a_run_with_a_reconstruction_score_keeps_its_threshold(vae_run, tmp_path):
    detector = only_scores(vae_run, ["latent_mahalanobis", "reconstruction"])
    meta = export_detector(detector, "torchscript", tmp_path / "model.pt")
    assert meta["score_name"] == "reconstruction" and meta["threshold"] == detector.thresholds["reconstruction"]
    json.loads((tmp_path / "model.pt.json").read_text(), parse_constant=pytest.fail)  # strict JSON: no NaN


def test_loading_last_pt_names_best_pt_not_resume(vae_run):
    """last.pt of a finished run holds no thresholds: the message sent the user to --resume, which then says the
    run is finished and changes nothing."""
    with pytest.raises(CheckpointError, match="best.pt") as err:
        Detector.load(vae_run / "checkpoints" / "last.pt")
    assert "--resume" not in str(err.value)


def test_a_bfloat16_tensor_scores_as_its_float32_values(vae_run, windows):
    detector = Detector.load(vae_run, device="cpu")
    half = torch.from_numpy(windows).bfloat16()
    expected = detector.score(half.float().numpy())
    got = detector.score(half)
    for name in expected:
        np.testing.assert_array_equal(got[name], expected[name])
