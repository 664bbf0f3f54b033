"""Losses against torch references; every loss builds from its config defaults; VAE specifics."""
from __future__ import annotations

import pytest
import torch
from torch.distributions import Normal, kl_divergence

import agents  # noqa: F401  (fills the registries)
from graphs.losses import VAELoss, gaussian_kl
from utils.core.config import config_params
from utils.core.registry import LOSSES, MODELS


def test_gaussian_kl_matches_torch_distributions():
    torch.manual_seed(0)
    mu, logvar = torch.randn(5, 4), torch.randn(5, 4)
    q = Normal(mu, torch.exp(0.5 * logvar))
    p = Normal(torch.zeros_like(mu), torch.ones_like(mu))
    torch.testing.assert_close(gaussian_kl(mu, logvar), kl_divergence(q, p).sum(dim=1))


@pytest.mark.parametrize("kind", ["mse", "mae"])
def test_vae_loss_terms(kind):
    torch.manual_seed(0)
    x, x_hat = torch.rand(6, 10, 3), torch.rand(6, 10, 3)
    mu, logvar = torch.randn(6, 2), torch.randn(6, 2)
    out = VAELoss(kind, beta=0.5)(x_hat, x, mu, logvar)
    per_elem = torch.nn.functional.mse_loss if kind == "mse" else torch.nn.functional.l1_loss
    expected_recon = per_elem(x_hat, x, reduction="sum") / 6
    torch.testing.assert_close(out["recon"], expected_recon)
    torch.testing.assert_close(out["loss"], out["recon"] + 0.5 * out["kl"])


@pytest.mark.parametrize("name", ["mae", "mse"])
def test_reconstruction_losses_match_torch(name):
    x, x_hat = torch.rand(4, 7, 2), torch.rand(4, 7, 2)
    ref = torch.nn.functional.l1_loss if name == "mae" else torch.nn.functional.mse_loss
    torch.testing.assert_close(LOSSES.get(name)()(x_hat, x)["loss"], ref(x_hat, x))


@pytest.mark.parametrize("name", LOSSES.names())
def test_every_loss_has_config_defaults(name):
    """Every loss can be built from its config defaults alone."""
    params = {key: default for key, (_, default) in config_params(LOSSES.get(name)).items()}
    assert isinstance(LOSSES.get(name)(**params), torch.nn.Module)


def test_vae_eval_uses_posterior_mean():
    torch.manual_seed(0)
    model = MODELS.get("vae")(time_steps=20, n_features=3).eval()
    x = torch.rand(4, 20, 3)
    assert torch.equal(model(x), model(x)) and torch.equal(model(x), model.decode(model.encode(x)))
    model.train()
    assert not torch.equal(model(x), model(x))


def test_vae_overfits_one_batch():
    torch.manual_seed(0)
    model = MODELS.get("vae")(time_steps=20, n_features=3, latent_dim=4)
    loss_fn = VAELoss("mse", beta=0.0)
    x = torch.rand(16, 20, 3)
    opt = torch.optim.Adam(model.parameters(), lr=3e-3)
    first = None
    for _ in range(400):
        out = loss_fn(x=x, **model.training_outputs(x))
        first = first if first is not None else out["recon"].item()
        opt.zero_grad()
        out["loss"].backward()
        opt.step()
    assert out["recon"].item() < 0.1 * first
