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


@pytest.fixture(scope="module")
def normalised_run(tmp_path_factory):
    """A tiny VAE on one recording at a level far from 0, standardised by its first rows
    (``data.normalize="per_recording"``), with the per-recording latent score; its config, folder and rows."""
    import main

    root = tmp_path_factory.mktemp("normalised")
    t = np.arange(400)
    noise = 0.05 * np.random.default_rng(0).normal(size=(400, 2))
    rows = np.column_stack([50 + np.sin(t / 5), 20 + 3 * np.cos(t / 7)]) + noise
    source = root / "rec.csv"
    np.savetxt(source, rows, delimiter=",", header="a,b", comments="", fmt="%.6f")
    config = {"exp_name": "normalised", "agent": "vae", "seed": 0, "device": "cpu", "experiments_dir": str(root),
              "data": {"name": "csv", "path": str(source), "window_length": 10, "stride": 5, "train_end": 200,
                       "val_fraction": 0.3, "normalize": "per_recording"},
              "model": {"name": "vae", "hidden_sizes": [8], "latent_dim": 2, "output_activation": "none"},
              "loss": {"name": "vae", "reconstruction": "mse", "beta": 1e-05},
              "trainer": {"epochs": 1, "batch_size": 64, "progress_bar": False},
              "evaluation": {"make_plots": False, "scores": ["reconstruction", "latent_mahalanobis_recording"],
                             "baselines": []}}
    path = root / "normalised.json"
    path.write_text(json.dumps(config))
    assert main.main([str(path)]) == 0
    return path, root / "normalised", source, np.loadtxt(source, delimiter=",", skiprows=1)


def test_python_scores_of_a_run_normalised_per_recording_are_those_of_mode_score(normalised_run, tmp_path):
    """``detector.score`` takes windows of the rows as the run's model saw them: for a run normalised per recording,
    the recording standardised by its first rows (:meth:`Detector.standardise`, as ``--mode score`` does); raw
    windows scored far off every threshold, silently."""
    import csv

    import main
    from datasets.splits import training_windows, windows_at

    config, run_dir, source, rows = normalised_run
    assert main.main([str(config), "--mode", "score", "--input", str(source), "--output", str(tmp_path / "s.csv")]) == 0
    with open(tmp_path / "s.csv") as handle:
        written = list(csv.DictReader(handle))
    detector = Detector.load(run_dir)
    values = detector.standardise(rows)
    T = detector.window_length
    windows = windows_at(values, np.arange(0, len(values) - T + 1, T), T)
    reference = training_windows(values, np.zeros(len(values), bool), detector.recording["training_rows"], T,
                                 detector.config["data"]["stride"])
    scores = detector.score(windows, reference=reference)
    alarms = detector.predict(windows, reference=reference)
    for name in detector.score_names:
        np.testing.assert_array_equal(scores[name], [float(r[f"score_{name}"]) for r in written])
        np.testing.assert_array_equal(alarms[name], [int(r[f"alarm_{name}"]) for r in written])


@pytest.mark.parametrize("reference_rows", [0, -5])
def test_standardise_refuses_reference_rows_that_are_no_rows(normalised_run, reference_rows):
    """Before: -5 standardised by all rows but the last 5 (labels given) or raised numpy's 'negative dimensions',
    and 0 said to move data.train_end."""
    _, run_dir, _, rows = normalised_run
    detector = Detector.load(run_dir)
    with pytest.raises(ValueError, match=f"reference_rows: expected a positive number of rows, got {reference_rows}"):
        detector.standardise(rows, np.zeros(len(rows)), reference_rows=reference_rows)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_the_export_of_a_run_normalised_per_recording_says_its_input_is_standardised(normalised_run, tmp_path):
    """The metadata said "raw (unscaled) windows" for a graph that takes the recording standardised by its first
    rows: a deployment feeding raw windows would score far off every threshold."""
    _, run_dir, _, rows = normalised_run
    detector = Detector.load(run_dir)
    meta = export_detector(detector, "torchscript", tmp_path / "model.pt")
    assert "standardised" in meta["input"]["meaning"] and str(detector.reference_rows) in meta["input"]["meaning"]
    graph = torch.jit.load(str(tmp_path / "model.pt"))
    T = detector.window_length
    windows = detector.standardise(rows)[: 4 * T].reshape(4, T, -1)
    with torch.no_grad():
        exported = graph(torch.from_numpy(windows))[0].numpy()
    ours = detector.score(windows, reference=windows)["reconstruction"]
    np.testing.assert_allclose(exported, ours, rtol=1e-6)


@pytest.mark.parametrize("device", ["gpu", "", "cpu:x"])
def test_load_names_a_device_that_is_none(device) -> None:
    from agents.parts import select_device

    with pytest.raises(ValueError, match=r'is not a device; give "auto", "cpu", "cuda" or "cuda:N"'):
        select_device(device)
    assert select_device("cpu") == select_device(torch.device("cpu")) == torch.device("cpu")
