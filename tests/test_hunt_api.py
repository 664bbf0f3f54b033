"""The trained detector as a Python user meets it: what a bug hunt found silently wrong (docs/scoring.md, "The
trained detector in Python"; docs/export.md)."""
from __future__ import annotations

import numpy as np
import pytest

from agents.detector.detector import Detector, export_detector
from datasets.converter import simulate_normal
from tests.helpers import TINY_DATA

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
