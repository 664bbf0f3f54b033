"""Deploying a trained detector as a user does (docs/scoring.md, docs/export.md): what a bug hunt found wrong."""
from __future__ import annotations

import numpy as np
import pytest

import main

from agents.detector.detector import Detector
from datasets.converter import simulate_normal
from tests.helpers import TINY_DATA

T = TINY_DATA["time_steps"]


@pytest.fixture(scope="module")
def vae_run(tiny_runs):
    return tiny_runs.of_model("vae")


@pytest.fixture(scope="module")
def detector(vae_run):
    return Detector.load(vae_run, device="cpu")


@pytest.fixture(scope="module")
def windows():
    return simulate_normal(4, T, np.random.default_rng(3))


def test_p_values_refuse_scores_they_would_misread(detector, windows):
    """``p_values`` flattened a 2-D array (N, 3 scores -> 3N p-values, no error), dropped a misspelt score name
    silently (``{}`` back) and met an array in place of the dict with ``AttributeError: ... no attribute 'items'``."""
    scores = detector.score(windows)
    name = detector.score_names[0]
    assert detector.p_values(scores)[name].shape == (len(windows),)
    with pytest.raises(ValueError, match=rf"scores\['{name}'\] must have shape \(N,\), got \(4, 3\)"):
        detector.p_values({name: np.tile(scores[name][:, None], 3)})
    with pytest.raises(ValueError, match=rf"unknown score 'recon'; this detector's scores: {name}"):
        detector.p_values({"recon": scores[name]})
    with pytest.raises(TypeError, match=r"scores: expected a dict \{score name: \(N,\) scores\}"):
        detector.p_values(scores[name])


def test_export_to_standard_output_is_refused(vae_run, tmp_path, monkeypatch, capsys):
    """``--mode export --output -`` (``-`` is standard output for --mode score) wrote files named ``-`` and
    ``-.json`` in the current folder and exited 0."""
    monkeypatch.chdir(tmp_path)
    with pytest.raises(SystemExit) as stop:
        main.main([str(vae_run / "config.json"), "--mode", "export", "--format", "torchscript", "--output", "-"])
    assert stop.value.code == 2
    assert "--output -: export writes a model file and its FILE.json; give a file name (e.g. model.pt)" in (
        capsys.readouterr().err)
    assert list(tmp_path.iterdir()) == []
