"""The fast recurrent paths compute the same function as PyTorch's own modules.

``graphs.kernels.LSTM`` / ``GRU`` run with hand-written time loops and backward
(graphs/kernels/rnn.py, the C++ loops of graphs/kernels/csrc) where they apply;
:func:`graphs.kernels.free_running` runs a single-layer decoder fed its own
output as one call. All must match plain ``nn.GRU`` / ``nn.LSTM`` (the module /
one decoder call per step) in values and every gradient.
"""
from __future__ import annotations

import pytest
import torch
from torch import nn

from graphs import kernels
from graphs.kernels import native
from graphs.kernels import rnn as fast_rnn
from graphs.kernels.native import rnn_loops
from graphs.models.recurrent_autoencoder import RecurrentAutoencoder

KERNELS = {nn.GRU: kernels.GRU, nn.LSTM: kernels.LSTM}


def _outputs(out, state) -> list[torch.Tensor]:
    return [out, *(state if isinstance(state, tuple) else (state,))]


def _kernel_copy(rnn: nn.RNNBase) -> nn.RNNBase:
    """The ``graphs.kernels`` module of the same configuration, with ``rnn``'s weights (its own copies)."""
    kw = dict(num_layers=rnn.num_layers, bias=rnn.bias, batch_first=rnn.batch_first, dropout=rnn.dropout,
              bidirectional=rnn.bidirectional)
    if isinstance(rnn, nn.LSTM):
        kw["proj_size"] = rnn.proj_size
    with torch.random.fork_rng(devices=[]):  # leave the caller's random draws as they were
        fast = KERNELS[type(rnn)](rnn.input_size, rnn.hidden_size, **kw)
    fast.load_state_dict(rnn.state_dict())
    return fast.to(next(rnn.parameters()).dtype).train(rnn.training)


def _run(rnn, x, state, seed: int = 1) -> list[torch.Tensor]:
    torch.manual_seed(seed)  # the same dropout draws on both paths
    return _outputs(*rnn(x, state))


def _values_and_grads(rnn, x, state, inputs, weights: list) -> list[torch.Tensor]:
    """Outputs of ``rnn`` and the gradients of a random projection of them w.r.t. ``inputs`` and its
    weights; ``weights`` (the projection) is drawn at the first call, if empty."""
    out = _run(rnn, x, state)
    weights[:] = weights or [torch.randn_like(t) for t in out]
    loss = sum((t * w).sum() for t, w in zip(out, weights))
    return out + list(torch.autograd.grad(loss, [*inputs, *rnn.parameters()]))


@pytest.mark.parametrize("num_layers,dropout", [(1, 0.0), (2, 0.0), (2, 0.3)])
@pytest.mark.parametrize("given_state", [True, False])
def test_gru_matches_nn_gru_in_double(monkeypatch, num_layers: int, dropout: float, given_state: bool) -> None:
    """Values and every gradient agree to float64 round-off (training mode, dropout included)."""
    monkeypatch.setattr(fast_rnn, "_can_use", lambda rnn, x: isinstance(rnn, nn.GRU))  # allow float64
    torch.manual_seed(0)
    ref = nn.GRU(3, 5, num_layers=num_layers, batch_first=True, dropout=dropout).double()
    fast = _kernel_copy(ref)
    x = torch.randn(4, 7, 3, dtype=torch.float64, requires_grad=True)
    h0 = torch.randn(num_layers, 4, 5, dtype=torch.float64, requires_grad=True) if given_state else None
    inputs, weights = [x] + ([h0] if given_state else []), []
    for a, b in zip(_values_and_grads(fast, x, h0, inputs, weights), _values_and_grads(ref, x, h0, inputs, weights)):
        torch.testing.assert_close(a, b, atol=1e-12, rtol=1e-10)


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("scale", [1.0, 30.0])  # 30: saturated gates, exp clamped
def test_cpp_and_python_loops_are_bit_identical_and_match_the_modules(monkeypatch, cell: type, num_layers: int,
                                                                     scale: float) -> None:
    """The time loops (float32) in C++ and in Python: values and every gradient bit for bit the same
    (``torch.equal``), and as the module's to float32 round-off."""
    if rnn_loops() is None:
        pytest.skip("the C++ loops could not be built here (see the warning)")
    torch.manual_seed(0)
    ref = cell(3, 37, num_layers=num_layers, batch_first=True)  # 37: not a multiple of the vector width
    fast = _kernel_copy(ref)
    x = (scale * torch.randn(5, 11, 3)).requires_grad_()
    h0 = torch.randn(num_layers, 5, 37, requires_grad=True)
    c0 = torch.randn(num_layers, 5, 37, requires_grad=True)
    state, inputs = ((h0, c0), [x, h0, c0]) if cell is nn.LSTM else (h0, [x, h0])
    weights: list[torch.Tensor] = []
    native_loops = _values_and_grads(fast, x, state, inputs, weights)
    reference = _values_and_grads(ref, x, state, inputs, weights)
    monkeypatch.setattr(native, "_ops", None)  # as without a compiler
    python_loops = _values_and_grads(fast, x, state, inputs, weights)
    assert len(native_loops) == len(python_loops) == len(reference)
    for a, b, c in zip(native_loops, reference, python_loops):
        torch.testing.assert_close(a, b, atol=2e-5, rtol=1e-4)
        assert torch.equal(a, c)


@pytest.mark.parametrize("cell", ["lstm", "gru"])
@pytest.mark.parametrize("teacher_forcing", [True, False])
def test_a_model_trains_to_the_same_bits_with_and_without_the_cpp_loops(monkeypatch, cell: str,
                                                                         teacher_forcing: bool) -> None:
    """A few Adam steps of a recurrent autoencoder (free running: the fused decoder) give
    ``torch.equal`` weights on both paths."""
    if rnn_loops() is None:
        pytest.skip("the C++ loops could not be built here (see the warning)")
    x = 3 * torch.randn(6, 13, 2)

    def model_() -> RecurrentAutoencoder:
        torch.manual_seed(0)
        return RecurrentAutoencoder(time_steps=13, n_features=2, hidden_size=9, cell=cell,
                                    teacher_forcing=teacher_forcing).train()

    def train() -> dict[str, torch.Tensor]:
        model = model_()
        optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
        for _ in range(4):
            optimizer.zero_grad()
            (model(x) - x).abs().mean().backward()
            optimizer.step()
        return model.state_dict()

    with_cpp = train()
    monkeypatch.setattr(native, "_ops", None)
    without = train()
    assert all(torch.equal(with_cpp[name], without[name]) for name in with_cpp)
    initial = model_().state_dict()
    assert not any(torch.equal(with_cpp[name], initial[name]) for name in initial)  # every weight moved


def test_gru_float32_without_grad_in_chunks(monkeypatch) -> None:
    """The no-grad path (rolling buffers, input projection in chunks of time steps) matches nn.GRU."""
    monkeypatch.setattr(fast_rnn, "_CHUNK_ELEMENTS", 2 * 3 * 16)  # 2 steps of batch 3, hidden 16 per chunk
    rnn = nn.GRU(2, 16, batch_first=True)
    x = torch.randn(3, 9, 2)
    with torch.inference_mode():
        for a, b in zip(_run(_kernel_copy(rnn), x, None), _run(rnn, x, None)):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=0)


@pytest.mark.filterwarnings("ignore:LSTM with projections")  # oneDNN says it steps aside too
def test_other_modules_and_inputs_run_the_module_itself() -> None:
    """Where the fast path does not apply, the module's own forward runs (no recursion into the subclass)."""
    torch.manual_seed(0)
    x = torch.randn(3, 5, 2)
    lstm = nn.LSTM(2, 4, batch_first=True)
    with torch.no_grad():  # an LSTM without gradients: oneDNN's kernel
        for a, b in zip(_run(_kernel_copy(lstm), x, None), _run(lstm, x, None)):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
    gru = nn.GRU(2, 4, batch_first=True).double()  # float64
    for a, b in zip(_run(_kernel_copy(gru), x.double(), None), _run(gru, x.double(), None)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)
    others = [(nn.GRU(2, 4, bidirectional=True, batch_first=True), x),
              (nn.LSTM(2, 4, proj_size=3, batch_first=True), x), (nn.GRU(2, 4), x),
              (nn.GRU(2, 4, batch_first=True), x[0]), (nn.LSTM(2, 4, batch_first=True), x[0])]
    for ref, inp in others:  # bidirectional, projections, sequence first, unbatched
        for a, b in zip(_run(_kernel_copy(ref), inp, None), _run(ref, inp, None)):
            torch.testing.assert_close(a, b, atol=0, rtol=0)
    plain = nn.RNN(2, 4, batch_first=True)  # neither GRU nor LSTM: its own forward
    for a, b in zip(fast_rnn.run_rnn(plain, x), plain(x)):
        torch.testing.assert_close(a, b, atol=0, rtol=0)


def test_the_python_lstm_loops_run_other_dtypes_with_torchs_gates() -> None:
    """The LSTM loops called in float64 (not a path of the models, which train in float32) match nn.LSTM."""
    torch.manual_seed(0)
    lstm = nn.LSTM(3, 4).double()
    x, zeros = torch.randn(6, 2, 3, dtype=torch.float64), torch.zeros(2, 4, dtype=torch.float64)
    weights = [getattr(lstm, f"{name}_l0") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
    out, c_last = fast_rnn.LSTMLayer.apply(x, zeros, zeros, *weights)
    ref, (_, c_ref) = lstm(x)
    torch.testing.assert_close(out, ref, atol=1e-12, rtol=0)
    torch.testing.assert_close(c_last, c_ref[0], atol=1e-12, rtol=0)


@pytest.mark.parametrize("cell", [nn.GRU, nn.LSTM])
@pytest.mark.parametrize("kwargs", [{}, {"num_layers": 2, "dropout": 0.2}, {"bidirectional": True}, {"bias": False}])
def test_kernel_modules_are_drop_in_replacements(cell: type, kwargs: dict) -> None:
    """Same constructor, exactly the state_dict keys of nn.GRU / nn.LSTM (checkpoints load both ways),
    same outputs with and without gradients, in training and eval mode."""
    torch.manual_seed(0)
    ref = cell(3, 6, batch_first=True, **kwargs)
    fast = KERNELS[cell](3, 6, batch_first=True, **kwargs)
    assert isinstance(fast, cell)
    assert list(fast.state_dict()) == list(ref.state_dict())
    assert [name for name, _ in fast.named_parameters()] == [name for name, _ in ref.named_parameters()]
    fast.load_state_dict(ref.state_dict())
    ref.load_state_dict(fast.state_dict())
    x = torch.randn(4, 7, 3)
    for training in (True, False):
        ref.train(training), fast.train(training)
        for a, b in zip(_run(fast, x, None), _run(ref, x, None)):
            torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)
        with torch.no_grad():
            for a, b in zip(_run(fast, x, None), _run(ref, x, None)):
                torch.testing.assert_close(a, b, atol=1e-6, rtol=1e-5)


@pytest.mark.parametrize("latent_dim", [None, 4])
@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])  # float32: the time loops
@pytest.mark.parametrize("cell", ["lstm", "gru"])  # a GRU runs fused in float32 only
def test_free_running_fused_matches_step_loop(latent_dim: int | None, dtype: torch.dtype, cell: str) -> None:
    """x̂ = A h + b folded into the recurrent weights: the same reconstruction and gradients as plain
    nn.LSTM / nn.GRU stepped once per time step."""
    torch.manual_seed(0)
    model = RecurrentAutoencoder(time_steps=9, n_features=3, hidden_size=6, cell=cell, latent_dim=latent_dim).to(dtype)
    plain = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](3, 6, batch_first=True).to(dtype)
    plain.load_state_dict(model.decoder.state_dict())
    x = torch.randn(4, 9, 3, dtype=dtype)
    tolerance = {"atol": 1e-12, "rtol": 1e-10} if dtype == torch.float64 else {"atol": 2e-6, "rtol": 1e-4}

    def step_loop(state, length):
        pred = model.output_layer(model._top_hidden(state))
        preds = [pred]
        for _ in range(length - 1):
            out, state = plain(pred.unsqueeze(1), state)
            pred = model.output_layer(out[:, 0])
            preds.append(pred)
        return torch.stack(preds[::-1], dim=1)

    fused_applies = cell == "lstm" or dtype == torch.float32
    assert (kernels.free_running(model.decoder, model.output_layer, model.encode_state(x), 9) is None) != fused_applies
    results = []
    for decode in (model.decode_free_running, step_loop):
        model.zero_grad(), plain.zero_grad()
        recon = decode(model.encode_state(x), x.shape[1])
        (recon - x).abs().mean().backward()
        decoder_grads = [p.grad.clone() for p in (model.decoder if decode is not step_loop else plain).parameters()]
        others = [p.grad.clone() for name, p in model.named_parameters() if not name.startswith("decoder.")]
        results.append([recon.detach(), *decoder_grads, *others])
    for a, b in zip(*results):
        torch.testing.assert_close(a, b, **tolerance)
    one = model.decode_free_running(model.encode_state(x), 1)
    torch.testing.assert_close(one, step_loop(model.encode_state(x), 1))


def test_free_running_declines_what_it_cannot_fold() -> None:
    torch.manual_seed(0)
    state = (torch.zeros(2, 3, 4), torch.zeros(2, 3, 4))
    assert kernels.free_running(nn.LSTM(2, 4, num_layers=2, batch_first=True), nn.Linear(4, 2), state, 5) is None
    single = (state[0][:1], state[1][:1])
    assert kernels.free_running(nn.LSTM(2, 4, batch_first=True), nn.Linear(4, 2), single, 1) is None
    assert kernels.free_running(nn.LSTM(2, 4, batch_first=True), nn.Linear(4, 2, bias=False), single, 5) is None
    assert kernels.free_running(nn.LSTM(2, 4, batch_first=True), nn.Linear(4, 2), single, 5).shape == (3, 5, 2)


def test_without_a_compiler_the_models_fall_back_to_python_loops_with_one_warning(monkeypatch, tmp_path) -> None:
    import torch.utils.cpp_extension

    from graphs.kernels import native

    def no_compiler(*args, **kwargs):
        raise RuntimeError("Error building extension 'anomaly_rnn_loops': c++: command not found")

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))  # no cached build to load
    monkeypatch.delenv("ANOMALY_NATIVE_RNN", raising=False)  # the build is tried (and fails) even in a run with it 0
    monkeypatch.setattr(native, "_ops", native._NOT_LOADED)
    monkeypatch.setattr(native, "_registered", lambda: False)
    monkeypatch.setattr(torch.utils.cpp_extension, "load", no_compiler)
    with pytest.warns(RuntimeWarning, match="c\\+\\+: command not found.*in Python"):
        assert native.rnn_loops() is None
    assert native.rnn_loops() is None  # decided once: no second build, no second warning
    torch.manual_seed(0)
    gru, lstm = nn.GRU(2, 4, batch_first=True), nn.LSTM(2, 4, batch_first=True)
    x = torch.randn(3, 5, 2)
    torch.testing.assert_close(_kernel_copy(gru)(x)[0], gru(x)[0], atol=1e-6, rtol=0)  # the Python loops
    torch.testing.assert_close(_kernel_copy(lstm)(x)[0], lstm(x)[0], atol=1e-6, rtol=0)
    with torch.no_grad():  # an LSTM without gradients: the module itself
        torch.testing.assert_close(_kernel_copy(lstm)(x)[0], lstm(x)[0], atol=0, rtol=0)
    for cell in ("lstm", "gru"):  # the model trains and scores (free running fused, in the Python loops)
        model = RecurrentAutoencoder(time_steps=5, n_features=2, hidden_size=4, cell=cell, teacher_forcing=False)
        assert kernels.free_running(model.decoder, model.output_layer, model.encode_state(x), 5) is not None
        model(x).abs().mean().backward()
        assert all(p.grad is not None for p in model.parameters())
        assert model.eval()(x).shape == x.shape
    monkeypatch.setattr(native, "_ops", native._NOT_LOADED)
    monkeypatch.setenv("ANOMALY_NATIVE_RNN", "0")
    assert native.rnn_loops() is None
