"""What docs/design.md promises a contributor: a new model, score or data set is its own file (and a config), and no
other test needs an edit. A throwaway model, score and data set are registered here, for one test each (the registries
are restored after it), and put through the generic checks the registry-parametrized tests run, and through the tests
whose expected messages list the registered names.
"""
from __future__ import annotations

import json
from types import SimpleNamespace

import numpy as np
import pytest
from torch import Tensor, nn

import agents  # noqa: F401  (fills the registries)
import main
from agents.detector.scores import Score
from datasets.converter import load_converter
from graphs.models.contract import ReconstructionModel
from tests import test_config, test_export, test_hunt_docs, test_models
from tests.helpers import TINY_DATA, TINY_TRAINER
from utils.core.registry import DATASETS, MODELS, SCORES
from utils.core.types import PositiveInt


class FlatAutoencoder(ReconstructionModel):
    """An MLP autoencoder on flattened windows, written from docs/design.md (Add a model) alone."""

    default_scores = ("reconstruction", "latent_mahalanobis")

    def __init__(self, time_steps: int, n_features: int, hidden: PositiveInt = 16, latent_dim: PositiveInt = 4) -> None:
        super().__init__(time_steps, n_features)
        size = time_steps * n_features
        self.encoder = nn.Sequential(nn.Linear(size, hidden), nn.ReLU(), nn.Linear(hidden, latent_dim))
        self.decoder = nn.Sequential(nn.Linear(latent_dim, hidden), nn.ReLU(), nn.Linear(hidden, size))

    def encode(self, x: Tensor) -> Tensor:
        return self.encoder(x.flatten(1))

    def forward(self, x: Tensor) -> Tensor:
        return self.decoder(self.encode(x)).view(-1, self.time_steps, self.n_features)


class MaxAbsError(Score):
    """The largest absolute reconstruction error of a window, written from docs/design.md (Add a score) alone."""

    name = "throwaway_max_abs_error"

    def features(self, x: Tensor, x_hat: Tensor, z: Tensor | None) -> np.ndarray:
        return (x - x_hat).abs().flatten(1).amax(dim=1).detach().double().cpu().numpy()[:, None]


def small_converter(seed: int, n_samples: PositiveInt = TINY_DATA["n_samples"],
                    time_steps: PositiveInt = TINY_DATA["time_steps"]):
    """A data set loader of its own keys (docs/design.md, Add a data set), here the converter's windows."""
    return load_converter(seed, n_samples=n_samples, time_steps=time_steps)


ADDED = {MODELS: ("throwaway_ae", FlatAutoencoder), SCORES: ("throwaway_max_abs_error", MaxAbsError),
         DATASETS: ("throwaway_converter", small_converter)}


@pytest.fixture
def added(monkeypatch):
    """The throwaway model, score and data set registered as their decorators would, for this test only."""
    for registry, (name, entry) in ADDED.items():
        assert name not in registry
        monkeypatch.setitem(registry._entries, name, entry)


def test_an_added_model_keeps_the_contract_and_reloads(added, tmp_path):
    test_models.test_model_keeps_the_contract("throwaway_ae")
    test_models.test_model_trains_one_step_and_reloads("throwaway_ae", tmp_path)


@pytest.mark.filterwarnings("ignore:`torch.jit.load` is deprecated:DeprecationWarning")
def test_a_run_of_added_parts_and_every_registered_score_trains_scores_exports_resumes(added, tmp_path):
    """One tiny run of the added model on the added data set with every registered score (those fitted per recording
    need recordings, which these windows have not): the generic checks of a model's run hold for it."""
    scores = [name for name in SCORES.names() if not SCORES.get(name).per_recording]
    assert "throwaway_max_abs_error" in scores
    config = {"exp_name": "added", "agent": "reconstruction", "experiments_dir": str(tmp_path / "runs"),
              "data": {"name": "throwaway_converter"}, "model": {"name": "throwaway_ae"}, "loss": {"name": "mse"},
              "trainer": dict(TINY_TRAINER), "evaluation": {"scores": scores, "make_plots": False}}
    (tmp_path / "added.json").write_text(json.dumps(config))
    assert main.main([str(tmp_path / "added.json")]) == 0
    run_dir = tmp_path / "runs" / "added"
    metrics = json.loads((run_dir / "out" / "metrics.json").read_text())
    assert list(metrics["threshold"]["values"]) == scores
    runs = SimpleNamespace(of_model=lambda name: run_dir)
    test_models.test_tiny_run_scores_again_alike("throwaway_ae", runs, tmp_path)  # --mode score and Detector.load
    trained = ([str(run_dir / "config.json")], run_dir)
    windows = (test_export.simulate_normal(3, TINY_DATA["time_steps"], np.random.default_rng(1)),)
    test_export.test_torchscript_scores_match_pytorch(trained, windows, tmp_path)
    assert main.main([str(run_dir / "config.json"), "--resume", "--set", "trainer.epochs=3"]) == 0
    assert "epoch 3/3" in (run_dir / "logs" / "train.log").read_text()


@pytest.mark.parametrize("case", ["unknown model", "unknown dataset"])
def test_the_bad_inputs_page_still_reads_as_the_code_with_parts_added(added, case, tmp_path, monkeypatch):
    """docs/bad-inputs.md quotes the refusal of an unknown name, which lists the valid ones; an added name is no
    mistake of the page."""
    test_hunt_docs.test_the_config_messages_of_the_bad_inputs_page_are_the_code_s(case, tmp_path, monkeypatch)


def test_the_score_checks_of_the_config_hold_with_a_score_added(added, tmp_path, monkeypatch):
    test_config.test_scores_default_to_the_model_s_and_are_checked(tmp_path, monkeypatch)
