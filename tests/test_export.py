"""--mode export: ONNX (run in onnxruntime) and TorchScript (run in torch) score like the PyTorch agent."""
from __future__ import annotations

import json
import sys

import numpy as np
import pytest
import torch

import main
from agents.score_files import load_scorer
from datasets.converter import simulate_normal
from tests.helpers import FAST_VAE, REPO_ROOT, run_main
from utils.scoring.scores import feature_contributions

T = 25
TOL = 1e-5


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """One intra-op thread: tiny models, and 2 threads on a busy 2-core machine run several times slower."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def tiny_rnn_config(root):
    config = json.loads((REPO_ROOT / "configs" / "vae_converter.json").read_text())
    config.update(exp_name="rnn", agent="rnn_autoencoder", experiments_dir=str(root),
                  model={"name": "recurrent_ae", "cell": "lstm", "hidden_size": 8, "num_layers": 2, "latent_dim": 4},
                  loss={"name": "mae"})
    config["data"].update(n_samples=200, time_steps=T)
    config["trainer"].update(epochs=1, progress_bar=False)
    config["evaluation"] = {"make_plots": False, "scaler": "standard"}
    path = root / "rnn.json"
    path.write_text(json.dumps(config))
    return path


@pytest.fixture(scope="module", params=["vae", "rnn_autoencoder"])
def trained(request, tmp_path_factory):
    """(argv prefix selecting the run, run folder, name of the reconstruction score)."""
    root = tmp_path_factory.mktemp(request.param)
    if request.param == "vae":
        assert run_main("vae_converter.json", root, *FAST_VAE, f"data.time_steps={T}", "exp_name=v",
                        "evaluation.make_plots=false") == 0
        argv = [str(REPO_ROOT / "configs" / "vae_converter.json"), "--set", f"experiments_dir={root}",
                "--set", "exp_name=v"]
        return argv, root / "v", "reconstruction"
    path = tiny_rnn_config(root)
    assert main.main([str(path)]) == 0
    return [str(path)], root / "rnn", "reconstruction_mae"


def reference(run_dir, score_name, windows):
    """Scores, per-feature errors and reconstructions from the PyTorch agent itself."""
    agent = load_scorer(run_dir, device="cpu")
    x = agent.to_tensor(windows)
    with torch.inference_mode():
        scores = agent.score(x)[score_name]
        recon = agent.reconstruct(x)
        kind = "mse" if score_name == "reconstruction" else "mae"
        contrib = feature_contributions(x, recon, kind).numpy()
    return agent, scores, contrib, recon.numpy()


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


def check(outputs, ref, meta, agent):
    _, scores, contrib, recon = ref
    score, contributions, reconstruction = (np.asarray(o) for o in outputs)
    np.testing.assert_allclose(score, scores, atol=TOL, rtol=TOL)
    np.testing.assert_allclose(contributions, contrib, atol=TOL, rtol=TOL)
    np.testing.assert_allclose(reconstruction, recon, atol=TOL, rtol=TOL)
    assert meta["threshold"] == pytest.approx(agent.scoring["thresholds"][meta["score_name"]])


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_torchscript_scores_match_pytorch(trained, windows, tmp_path):
    argv, run_dir, score_name = trained
    meta = export(argv, "torchscript", tmp_path / "model.pt")
    assert meta["score_name"] == score_name
    module = torch.jit.load(str(tmp_path / "model.pt"))
    for batch in windows:
        ref = reference(run_dir, score_name, batch)
        with torch.no_grad():
            check(module(torch.from_numpy(batch)), ref, meta, ref[0])


def test_onnx_scores_match_pytorch_in_onnxruntime(trained, windows, tmp_path):
    pytest.importorskip("onnx", reason="ONNX export needs the optional dev dependency onnx "
                                       "(pip install -r requirements-dev.txt)")
    ort = pytest.importorskip("onnxruntime", reason="running the ONNX file needs the optional dev dependency "
                                                    "onnxruntime (pip install -r requirements-dev.txt)")
    argv, run_dir, score_name = trained
    meta = export(argv, "onnx", tmp_path / "model.onnx")
    session = ort.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    assert [i.name for i in session.get_inputs()] == ["windows"]
    assert [o.name for o in session.get_outputs()] == ["score", "contributions", "reconstruction"]
    for batch in windows:
        ref = reference(run_dir, score_name, batch)
        check(session.run(None, {"windows": batch}), ref, meta, ref[0])


def test_export_errors(trained, tmp_path, capsys, monkeypatch):
    argv, _, _ = trained
    with pytest.raises(SystemExit) as exc:
        main.main([*argv, "--mode", "export", "--format", "tflite", "--output", str(tmp_path / "m")])
    assert exc.value.code == 2 and "invalid choice: 'tflite'" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main.main([*argv, "--mode", "export", "--output", str(tmp_path / "m")])
    assert "--mode export needs --format" in capsys.readouterr().err
    monkeypatch.setitem(sys.modules, "onnx", None)  # as if the optional package were not installed
    assert main.main([*argv, "--mode", "export", "--format", "onnx", "--output", str(tmp_path / "m.onnx")]) == 2
    assert "needs the optional package onnx" in capsys.readouterr().err and not (tmp_path / "m.onnx").exists()
