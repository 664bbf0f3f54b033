"""Every registered model keeps the contract and works end to end; a new model needs no edit here.

Parametrized over ``MODELS``: the model is built from its defaults, trained one step, reloaded;
then a tiny run of its shipped config (on small converter data, ``tests/helpers.py``) is scored
again through ``--mode score`` and through the Python :class:`agents.detector.detector.Detector`, which
must give the run's own test scores back. Export parity is in ``tests/test_export.py``.
"""
from __future__ import annotations

import inspect
import json

import numpy as np
import pytest
import torch

import agents  # noqa: F401  (fills the registries)
import main
from agents.detector.detector import Detector
from graphs.models.contract import ReconstructionModel
from utils.core.config import config_params, required_arguments
from tests.helpers import run_test_split
from utils.core.registry import LOSSES, MODELS

T, F = 20, 3


def build(name: str) -> ReconstructionModel:
    defaults = {key: default for key, (_, default) in config_params(MODELS.get(name)).items()}
    return MODELS.get(name)(time_steps=T, n_features=F, **defaults)


def fitting_loss(model: ReconstructionModel):
    """The first registered loss that takes only what the model gives."""
    for name in LOSSES.names():
        if required_arguments(LOSSES.get(name).forward) <= {*model.outputs, "x"}:
            return LOSSES.get(name)()
    raise AssertionError(f"no loss fits the outputs {model.outputs}")


@pytest.mark.parametrize("name", MODELS.names())
def test_model_keeps_the_contract(name):
    torch.manual_seed(0)
    model = build(name)
    assert isinstance(model, ReconstructionModel), f"{name}: subclass graphs.models.contract.ReconstructionModel"
    params = inspect.signature(type(model).__init__).parameters
    assert list(params)[1:3] == ["time_steps", "n_features"], f"{name}: the constructor starts (time_steps, n_features)"
    x = torch.rand(8, T, F)
    outputs = model.training_outputs(x)
    assert tuple(outputs) == model.outputs and outputs["x_hat"].shape == x.shape
    model.eval()
    with torch.no_grad():
        recon = model(x)
        assert recon.shape == x.shape and torch.equal(recon, model(x)), "eval forward: deterministic reconstruction"
        if model.has_latent():
            z = model.encode(x)
            assert z.dim() == 2 and len(z) == len(x)
    assert set(model.default_scores) and all(isinstance(s, str) for s in model.default_scores)


@pytest.mark.parametrize("name", MODELS.names())
def test_model_trains_one_step_and_reloads(name, tmp_path):
    """One optimizer step changes the output; save and reload: the same eval output, bit for bit."""
    torch.manual_seed(0)
    model, x = build(name), torch.rand(8, T, F)
    model.eval()
    with torch.no_grad():
        before = model(x)
    model.train()
    loss = fitting_loss(model)(x=x, **model.training_outputs(x))["loss"]
    loss.backward()
    torch.optim.SGD(model.parameters(), lr=0.1).step()
    model.eval()
    with torch.no_grad():
        after = model(x)
    assert not torch.equal(before, after)
    torch.save(model.state_dict(), tmp_path / "m.pt")
    clone = build(name)
    clone.load_state_dict(torch.load(tmp_path / "m.pt", weights_only=True))
    clone.eval()
    with torch.no_grad():
        assert torch.equal(clone(x), after)


def read_table(path):
    return np.genfromtxt(path, delimiter=",", names=True, dtype=None, encoding="utf-8")


@pytest.mark.parametrize("name", MODELS.names())
def test_tiny_run_scores_again_alike(name, tiny_runs, tmp_path):
    """``--mode score`` and ``Detector.score`` on the test windows give out/scores.csv back."""
    run_dir = tiny_runs.of_model(name)
    metrics = json.loads((run_dir / "out" / "metrics.json").read_text())
    config = json.loads((run_dir / "config.json").read_text())
    names = config["evaluation"]["scores"]
    assert list(metrics["scores"]) == names
    own = read_table(run_dir / "out" / "scores.csv")
    test = run_test_split(run_dir)
    np.save(tmp_path / "w.npy", test.x)
    out = tmp_path / "scores.csv"
    argv = [str(run_dir / "config.json"), "--mode", "score", "--input", str(tmp_path / "w.npy"), "--output", str(out)]
    assert main.main(argv) == 0
    again = read_table(out)
    detector = Detector.load(run_dir, device="cpu")
    scores, alarms = detector.score(test.x), detector.predict(test.x)
    for score in names:
        np.testing.assert_allclose(again[f"score_{score}"], own[f"score_{score}"], rtol=1e-5, atol=1e-7)
        np.testing.assert_allclose(scores[score], own[f"score_{score}"], rtol=1e-5, atol=1e-7)
        np.testing.assert_array_equal(alarms[score], own[f"alarm_{score}"])
    assert detector.thresholds == pytest.approx(metrics["threshold"]["values"])
