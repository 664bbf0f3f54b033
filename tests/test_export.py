"""--mode export of every model: ONNX (run in onnxruntime) and TorchScript (run in torch) score like the detector."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

import main
from agents.detector.detector import Detector
from datasets.converter import simulate_normal
from tests.helpers import TINY_DATA
from utils.core.registry import MODELS

T = TINY_DATA["time_steps"]
TOL = 1e-5



@pytest.fixture(scope="module", params=MODELS.names())
def trained(request, tiny_runs):
    """``(argv naming the run, run folder)`` of every model's tiny run."""
    run_dir = tiny_runs.of_model(request.param)
    return [str(run_dir / "config.json")], run_dir


def reference(run_dir, windows):
    """Scores, per-feature errors and reconstructions from the run's PyTorch detector."""
    detector = Detector.load(run_dir, device="cpu")
    x = detector.prepare(windows)
    scores, contrib = detector.analyse(x)
    return detector, scores, contrib, detector.reconstruct(x).numpy()


@pytest.fixture(scope="module")
def windows():
    """Raw windows the exports have never seen, two batch sizes (the batch axis is free)."""
    return simulate_normal(7, T, np.random.default_rng(123)), simulate_normal(1, T, np.random.default_rng(5))


def export(argv, fmt, path):
    assert main.main([*argv, "--mode", "export", "--format", fmt, "--output", str(path)]) == 0
    meta = json.loads(path.with_name(path.name + ".json").read_text())
    assert meta["format"] == fmt and meta["input"]["shape"] == ["batch", T, 3]
    assert meta["feature_names"] == ["voltage", "current", "temperature"] and meta["alarm_rule"] == "score > threshold"
    return meta


def check(outputs, ref, meta):
    detector, scores, contrib, recon = ref
    score, contributions, reconstruction = (np.asarray(o) for o in outputs)
    np.testing.assert_allclose(score, scores[meta["score_name"]], atol=TOL, rtol=TOL)
    np.testing.assert_allclose(contributions, contrib, atol=TOL, rtol=TOL)
    np.testing.assert_allclose(reconstruction, recon, atol=TOL, rtol=TOL)
    assert meta["threshold"] == pytest.approx(detector.thresholds[meta["score_name"]])
    assert detector.scores[meta["score_name"]].error_kind == detector.error_kind


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_scores_match_pytorch(trained, windows, tmp_path):
    argv, run_dir = trained
    meta = export(argv, "torchscript", tmp_path / "model.pt")
    module = torch.jit.load(str(tmp_path / "model.pt"))
    for batch in windows:
        with torch.no_grad():
            check(module(torch.from_numpy(batch)), reference(run_dir, batch), meta)


def test_onnx_scores_match_pytorch_in_onnxruntime(trained, windows, tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs the optional dev dependency onnx "
                                       "(pip install -r requirements-dev.txt)")
    ort = pytest.importorskip("onnxruntime", reason="running the ONNX file needs the optional dev dependency "
                                                    "onnxruntime (pip install -r requirements-dev.txt)")
    argv, run_dir = trained
    meta = export(argv, "onnx", tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["windows"]
    assert [o.name for o in session.get_outputs()] == ["score", "contributions", "reconstruction"]
    for batch in windows:
        check(session.run(None, {"windows": batch}), reference(run_dir, batch), meta)


def test_export_errors(trained, tmp_path, capsys, monkeypatch):
    argv, _ = trained
    with pytest.raises(SystemExit) as exc:
        main.main([*argv, "--mode", "export", "--format", "tflite", "--output", str(tmp_path / "m")])
    assert exc.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main.main([*argv, "--mode", "export", "--output", str(tmp_path / "m")])
    assert "--mode export needs --format" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the optional package were not installed
    assert main.main([*argv, "--mode", "export", "--format", "onnx", "--output", str(tmp_path / "m.onnx")]) == 2
    assert "needs the optional package onnx" in capsys.readouterr().err and not (tmp_path / "m.onnx").exists()
