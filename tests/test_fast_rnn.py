"""The fast recurrent paths compute the same function as PyTorch's own modules.

graphs/models/fast_rnn.py runs an ``nn.GRU`` with a hand-written backward; a
single-layer LSTM decoder runs free running as one fused call. Both must match
the reference (nn.GRU / one decoder call per step) in values and gradients.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from graphs.models import fast_rnn
from graphs.models.fast_rnn import run_rnn
from graphs.models.recurrent_autoencoder import RecurrentAutoencoder


def _outputs(out, state) -> list[torch.Tensor]:
    return [out, *(state if isinstance(state, tuple) else (state,))]


def _run(rnn, x, state, fast: bool, seed: int = 1):
    torch.manual_seed(seed)  # the same dropout draws on both paths
    if fast:
        return _outputs(*run_rnn(rnn, x, state))
    return _outputs(*rnn(x, state))


@pytest.mark.parametrize("num_layers,dropout", [(1, 0.0), (2, 0.0), (2, 0.3)])
@pytest.mark.parametrize("given_state", [True, False])
def test_gru_matches_nn_gru_in_double(monkeypatch, num_layers: int, dropout: float, given_state: bool) -> None:
    """Values and every gradient agree to float64 round-off (training mode, dropout included)."""
    monkeypatch.setattr(fast_rnn, "_can_use", lambda rnn, x: isinstance(rnn, nn.GRU))  # allow float64
    torch.manual_seed(0)
    rnn = nn.GRU(3, 5, num_layers=num_layers, batch_first=True, dropout=dropout).double()
    x = torch.randn(4, 7, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(num_layers, 4, 5, dtype=torch.float64, requires_grad=True) if given_state else None
    fast, ref = _run(rnn, x, h0, True), _run(rnn, x, h0, False)
    inputs = [x, *rnn.parameters()] + ([h0] if given_state else [])
    weights = [torch.randn_like(t) for t in ref]
    g_fast = torch.autograd.grad(sum((t * w).sum() for t, w in zip(fast, weights)), inputs)
    g_ref = torch.autograd.grad(sum((t * w).sum() for t, w in zip(ref, weights)), inputs)
    for a, b in zip(fast + list(g_fast), ref + list(g_ref)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


def test_gru_float32_without_grad_in_chunks(monkeypatch) -> None:
    """The no-grad path (rolling buffers, input projection in chunks of time steps) matches nn.GRU."""
    monkeypatch.setattr(fast_rnn, "_CHUNK_ELEMENTS", 2 * 3 * 16)  # 2 steps of batch 3, hidden 16 per chunk
    rnn = nn.GRU(2, 16, batch_first=True)
    x = torch.randn(3, 9, 2)
    with torch.inference_mode():
        for a, b in zip(_run(rnn, x, None, True), _run(rnn, x, None, False)):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


def test_other_modules_and_inputs_run_the_module_itself() -> None:
    lstm = nn.LSTM(2, 4, batch_first=True)
    x = torch.randn(3, 5, 2)
    for a, b in zip(_outputs(*run_rnn(lstm, x)), _outputs(*lstm(x))):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    gru = nn.GRU(2, 4, batch_first=True).double()
    for a, b in zip(_outputs(*run_rnn(gru, x.double())), _outputs(*gru(x.double()))):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("latent_dim", [None, 4])
def test_free_running_lstm_fused_matches_step_loop(latent_dim: int | None) -> None:
    """x̂ = A h + b folded into the recurrent weights: the same reconstruction and gradients."""
    torch.manual_seed(0)
    model = RecurrentAutoencoder(n_features=3, hidden_size=6, cell="lstm", latent_dim=latent_dim).double()
    x = torch.randn(4, 9, 3, dtype=torch.float64)

    def step_loop(state, length):
        pred = model.output_layer(model._top_hidden(state))
        preds = [pred]
        for _ in range(length - 1):
            pred, state = model.decode_step(pred, state)
            preds.append(pred)
        return torch.stack(preds[::-1], dim=1)

    results = []
    for decode in (model.decode_free_running, step_loop):
        model.zero_grad()
        recon = decode(model.encode(x), x.shape[1])
        (recon - x).abs().mean().backward()
        results.append([recon.detach()] + [p.grad.clone() for p in model.parameters()])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)
    one = model.decode_free_running(model.encode(x), 1)
    torch.testing.assert_close(one, step_loop(model.encode(x), 1))
