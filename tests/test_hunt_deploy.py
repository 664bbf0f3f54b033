"""Deploying a trained detector as a user does (docs/scoring.md, docs/export.md): what a bug hunt found wrong."""
from __future__ import annotations

import io

import numpy as np
import pytest
import torch

import main

from agents.detector.detector import Detector, export_detector
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


def test_torchscript_outputs_convert_to_numpy(detector, windows, tmp_path):
    """The TorchScript file's outputs required grad (its parameters did): ``score.numpy()`` after
    ``torch.jit.load(...)(windows)``, as docs/export.md runs it, raised 'Can't call numpy() on Tensor that requires
    grad'. The detector's own model keeps its parameters as they were."""
    flags = [p.requires_grad for p in detector.model.parameters()]
    export_detector(detector, "torchscript", tmp_path / "m.pt")
    score, contributions, reconstruction = torch.jit.load(str(tmp_path / "m.pt"))(torch.from_numpy(windows))
    np.testing.assert_allclose(score.numpy(), detector.score(windows)["reconstruction"], rtol=1e-5)
    assert not contributions.requires_grad and not reconstruction.requires_grad
    assert [p.requires_grad for p in detector.model.parameters()] == flags


@pytest.mark.parametrize("dtype", [complex, bool])
def test_windows_of_no_real_numbers_are_refused(detector, windows, dtype):
    """Complex windows were scored on their real part (a numpy ComplexWarning only) and boolean ones as 0/1, where
    --mode score refuses such an NPY file ('dtype ... is not numeric; expected float or integer values')."""
    with pytest.raises(ValueError, match=r"windows \(features .*\): dtype (complex128|bool) is not numeric; expected "
                                         "float or integer values"):
        detector.score(windows.astype(dtype))


@pytest.mark.parametrize("live", [False, True])
def test_a_gap_in_time_at_score_time_is_warned_of(tiny_runs, tmp_path, warnings_seen, capfd, live):
    """A 5-minute gap in a 1 Hz input (rows 100-399 missing) was scored without a word, its window joining rows 5
    minutes apart, where training warns of such jumps in its files."""
    from agents.score_files import live_score, score_file
    from tests.test_score_incidents import CSV_RUN, example_rows, write_csv

    detector = Detector.load(tiny_runs.of_config(*CSV_RUN), device="cpu")
    rows = example_rows(700)
    src = write_csv(tmp_path / "gap.csv", rows[:101] + rows[401:])
    if live:
        with open(src, "rb") as stdin:
            live_score(detector, "-", str(tmp_path / "s.csv"), stdin=stdin, stdout=io.StringIO(),
                       stderr=io.StringIO())
    else:
        score_file(detector, str(src), str(tmp_path / "s.csv"))
    said = warnings_seen.text + "".join(capfd.readouterr())  # a file's scoring logs to the console
    assert f"{src if not live else '<stdin>'}: row 100, column 'timestamp': time jumps 301 s (the run's rows are 1 s " \
           "apart): windows across it join rows that were not consecutive; later jumps are not reported" in said
