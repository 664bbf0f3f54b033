"""The fast recurrent paths compute the same function as PyTorch's own modules.

graphs/kernels/rnn.py runs an ``nn.GRU`` and (with the C++ loops) an
``nn.LSTM`` with hand-written time loops and backward; a single-layer LSTM
decoder runs free running as one fused call. All must match the reference (the
module / one decoder call per step) in values and gradients.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from graphs.kernels import rnn as fast_rnn
from graphs.kernels.rnn import run_rnn
from graphs.kernels.native import rnn_loops
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


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: saturated gates, exp clamped
def test_cpp_loops_match_the_modules_in_float32(monkeypatch, cell: type, num_layers: int, scale: float) -> None:
    """The C++ time loops (float32): values and gradients as the module's and, for a GRU, as the
    Python loops', to float32 round-off."""
    if rnn_loops() is None:
        pytest.skip("the C++ loops could not be built here (see the warning)")
    torch.manual_seed(0)
    rnn = cell(3, 37, num_layers=num_layers, batch_first=True)  # 37: not a multiple of the vector width
    x = (scale * torch.randn(5, 11, 3)).requires_grad_()
    h0 = torch.randn(num_layers, 5, 37, requires_grad=True)
    c0 = torch.randn(num_layers, 5, 37, requires_grad=True)
    state, inputs = ((h0, c0), [x, h0, c0]) if cell is nn.LSTM else (h0, [x, h0])
    inputs += list(rnn.parameters())
    weights = None

    def values_and_grads(fast: bool) -> list[torch.Tensor]:
        nonlocal weights
        out = _run(rnn, x, state, fast)
        weights = weights or [torch.randn_like(t) for t in out]
        return out + list(torch.autograd.grad(sum((t * w).sum() for t, w in zip(out, weights)), inputs))

    native, reference = values_and_grads(True), values_and_grads(False)
    monkeypatch.setattr(fast_rnn, "_native_loops", lambda x: None)
    python_loops = values_and_grads(True)
    for a, b, c in zip(native, reference, python_loops):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
        torch.testing.assert_close(a, c, atol=2e-5, rtol=1e-4)


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
    with torch.no_grad():  # an LSTM without gradients: oneDNN's kernel
        for a, b in zip(_outputs(*run_rnn(lstm, x)), _outputs(*lstm(x))):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
    gru = nn.GRU(2, 4, batch_first=True).double()
    for a, b in zip(_outputs(*run_rnn(gru, x.double())), _outputs(*gru(x.double()))):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


@pytest.mark.parametrize("latent_dim", [None, 4])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])  # float32: the C++ loops
@pytest.mark.parametrize("cell", ["lstm", "gru"])  # a GRU runs fused with the C++ loops only (float32)
def test_free_running_fused_matches_step_loop(latent_dim: int | None, dtype: torch.dtype, cell: str) -> None:
    """x̂ = A h + b folded into the recurrent weights: the same reconstruction and gradients."""
    torch.manual_seed(0)
    model = RecurrentAutoencoder(n_features=3, hidden_size=6, cell=cell, latent_dim=latent_dim).to(dtype)
    x = torch.randn(4, 9, 3, dtype=dtype)
    tolerance = {"atol": 1e-12, "rtol": 1e-10} if dtype == torch.float64 else {"atol": 2e-6, "rtol": 1e-4}

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
        torch.testing.assert_close(a, b, **tolerance)
    one = model.decode_free_running(model.encode(x), 1)
    torch.testing.assert_close(one, step_loop(model.encode(x), 1))


def test_without_a_compiler_the_models_fall_back_to_python_loops_with_one_warning(monkeypatch) -> None:
    import torch.utils.cpp_extension

    from graphs.kernels import native

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension 'anomaly_rnn_loops': c++: command not found")

    monkeypatch.setattr(native, "_ops", native._NOT_LOADED)
    monkeypatch.setattr(native, "_registered", lambda: False)
    monkeypatch.setattr(torch.utils.cpp_extension, "load", no_compiler)
    with pytest.warns(RuntimeWarning, match="c\\+\\+: command not found.*in Python"):
        assert native.rnn_loops() is None
    assert native.rnn_loops() is None  # decided once: no second build, no second warning
    gru, lstm = nn.GRU(2, 4, batch_first=True), nn.LSTM(2, 4, batch_first=True)
    x = torch.randn(3, 5, 2)
    torch.testing.assert_close(run_rnn(gru, x)[0], gru(x)[0], atol=1e-6, rtol=0)  # the Python loops
    torch.testing.assert_close(run_rnn(lstm, x)[0], lstm(x)[0], atol=0, rtol=0)  # the module itself
    monkeypatch.setattr(native, "_ops", native._NOT_LOADED)
    monkeypatch.setenv("ANOMALY_NATIVE_RNN", "0")
    assert native.rnn_loops() is None
