"""Tests for graphs.models.recurrent_autoencoder (Malhotra et al. 2016 EncDec-AD)."""
from __future__ import annotations

import io
import math
import warnings

import pytest
import torch
from torch import Tensor, nn

from graphs import kernels
from graphs.models.contract import ReconstructionModel
from graphs.models.recurrent_autoencoder import RecurrentAutoencoder
from utils.core.config import load_config
from utils.core.errors import ConfigError
from utils.core.registry import MODELS

CELLS = ["lstm", "gru"]


def _model(**kwargs) -> RecurrentAutoencoder:
    torch.manual_seed(0)
    defaults = dict(time_steps=10, n_features=3, hidden_size=8, num_layers=2, cell="lstm")
    defaults.update(kwargs)
    return RecurrentAutoencoder(**defaults)


def _step_loop(model: RecurrentAutoencoder, x: Tensor, state, feed_true: bool) -> Tensor:
    """Reference decoder: explicit loop over time, decoder module called per step."""
    top = state[0][-1] if isinstance(state, tuple) else state[-1]
    preds = [model.output_layer(top)]  # x̂(T)
    for t in range(x.shape[1] - 1, 0, -1):  # 0-based t+1 = T-1 .. 1 feeds x̂(t)
        inp = x[:, t] if feed_true else preds[-1]
        out, state = model.decoder(inp.unsqueeze(1), state)
        preds.append(model.output_layer(out[:, 0]))
    return torch.stack(preds[::-1], dim=1)


def test_registered_and_keeps_the_contract() -> None:
    assert MODELS.get("recurrent_ae") is RecurrentAutoencoder
    assert issubclass(RecurrentAutoencoder, ReconstructionModel) and RecurrentAutoencoder.has_latent()
    assert RecurrentAutoencoder.default_scores == ("reconstruction_mae", "error_gaussian")
    model = _model(time_steps=12)
    assert (model.time_steps, model.n_features) == (12, 3)
    assert isinstance(model.encoder, kernels.LSTM) and isinstance(model.decoder, kernels.LSTM)
    assert isinstance(_model(cell="gru").encoder, kernels.GRU)


@pytest.mark.parametrize("override, key", [
    ("model.hidden_size=0", "model.hidden_size"), ("model.dropout=1.5", "model.dropout"),
    ('model.cell="rnn"', "model.cell"), ("model.num_layers=0", "model.num_layers"),
    ("model.latent_dim=0", "model.latent_dim"),
])
def test_config_validator_refuses_bad_hyper_parameters(override: str, key: str) -> None:
    """The constructor's type hints are the config's schema: a bad value is a ConfigError (exit 2) naming its key."""
    import agents  # noqa: F401  (fills the registries the config validator reads)

    with pytest.raises(ConfigError, match=key):
        load_config("configs/lstm_ecg5000.json", [override])


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("latent_dim", [None, 4])
@pytest.mark.parametrize("n_features", [1, 3])
@pytest.mark.parametrize("num_layers", [1, 2])
def test_output_shapes(cell: str, latent_dim: int | None, n_features: int, num_layers: int) -> None:
    model = _model(n_features=n_features, num_layers=num_layers, cell=cell, latent_dim=latent_dim)
    x = torch.randn(5, 7, n_features)
    for tf in (True, False):
        assert model(x, teacher_forcing=tf).shape == (5, 7, n_features)
    state = model.encode_state(x)
    states = state if cell == "lstm" else (state,)
    assert isinstance(state, tuple) == (cell == "lstm")
    for s in states:
        assert s.shape == (num_layers, 5, 8)
    width = latent_dim or num_layers * 8 * (2 if cell == "lstm" else 1)
    assert model.encode(x).shape == (5, width)
    assert model.decode_free_running(state, 11).shape == (5, 11, n_features)


@pytest.mark.parametrize("cell", CELLS)
def test_reverse_order_dependence(cell: str) -> None:
    """With the state fixed, output t (original order) depends only on x[:, s] for s > t."""
    model = _model(cell=cell, latent_dim=4).double()
    T = 6
    x = torch.randn(2, T, 3, dtype=torch.float64, requires_grad=True)
    state = model.encode_state(torch.randn(2, T, 3, dtype=torch.float64))
    state = tuple(s.detach() for s in state) if cell == "lstm" else state.detach()
    y = model.decode_teacher_forced(x, state)
    for t in range(T):
        (grad,) = torch.autograd.grad(y[:, t].sum(), x, retain_graph=True)
        per_step = grad.abs().sum(dim=(0, 2))
        assert torch.all(per_step[: t + 1] == 0), f"output {t} depends on x[:, <= {t}]"
        assert torch.all(per_step[t + 1 :] > 0), f"output {t} ignores some x[:, > {t}]"


@pytest.mark.parametrize("cell", CELLS)
def test_reverse_order_by_perturbation(cell: str) -> None:
    model = _model(cell=cell).eval()
    x = torch.randn(3, 8, 3)
    state = model.encode_state(x)
    base = model.decode_teacher_forced(x, state)
    for s in range(8):
        x2 = x.clone()
        x2[:, s] += 1.0
        changed = (model.decode_teacher_forced(x2, state) - base).abs().amax(dim=(0, 2)) > 0
        assert changed.tolist() == [t < s for t in range(8)]


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])
@pytest.mark.parametrize("latent_dim", [None, 5])
def test_teacher_forced_equals_step_loop(cell: str, num_layers: int, latent_dim: int | None) -> None:
    model = _model(cell=cell, num_layers=num_layers, latent_dim=latent_dim, dropout=0.3).eval()
    x = torch.randn(4, 12, 3)
    with torch.no_grad():
        state = model.encode_state(x)
        fused = model.decode_teacher_forced(x, state)
        looped = _step_loop(model, x, state, feed_true=True)
        free = model.decode_free_running(state, 12)
        free_ref = _step_loop(model, x, state, feed_true=False)
    torch.testing.assert_close(fused, looped, atol=1e-6, rtol=0)
    torch.testing.assert_close(free, free_ref, atol=1e-6, rtol=0)
    # Both modes start from the same state, so x̂(T) (last position) agrees.
    torch.testing.assert_close(fused[:, -1], free[:, -1], atol=1e-6, rtol=0)


@pytest.mark.parametrize("cell", CELLS)
def test_modes_and_defaults(cell: str) -> None:
    model = _model(cell=cell, latent_dim=4)
    x = torch.randn(4, 10, 3)
    with torch.no_grad():
        tf = model(x, teacher_forcing=True)
        free = model(x, teacher_forcing=False)
        model.train()
        torch.testing.assert_close(model(x), tf, atol=0, rtol=0)
        model.eval()
        torch.testing.assert_close(model(x), free, atol=0, rtol=0)
        torch.testing.assert_close(model(x), model(x), atol=0, rtol=0)  # deterministic
        assert not torch.allclose(free, tf, atol=1e-4)
        torch.testing.assert_close(model(x, teacher_forcing=True), tf, atol=0, rtol=0)
    free_default = _model(cell=cell, latent_dim=4, teacher_forcing=False).train()
    with torch.no_grad():
        torch.testing.assert_close(free_default(x), free, atol=0, rtol=0)


def test_eval_deterministic_with_dropout() -> None:
    model = _model(num_layers=2, dropout=0.5).eval()
    x = torch.randn(4, 10, 3)
    with torch.no_grad():
        torch.testing.assert_close(model(x), model(x), atol=0, rtol=0)


@pytest.mark.parametrize(
    "kwargs, match",
    [
        (dict(cell="rnn"), "'lstm', 'gru'"),
        (dict(cell="LSTM"), "valid values"),
        (dict(time_steps=0), "time_steps"),
        (dict(n_features=0), "n_features"),
        (dict(hidden_size=-1), "hidden_size"),
        (dict(num_layers=0), "num_layers"),
        (dict(latent_dim=0), "latent_dim"),
        (dict(hidden_size=2.5), "hidden_size"),
        (dict(dropout=1.0), "dropout"),
        (dict(dropout=-0.1), "dropout"),
    ],
)
def test_invalid_arguments(kwargs: dict, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        _model(**kwargs)


@pytest.mark.parametrize("shape", [(4, 10), (4, 10, 2), (4, 1, 3)])
def test_invalid_input_shape(shape: tuple[int, ...]) -> None:
    with pytest.raises(ValueError, match="expected input"):
        _model()(torch.randn(*shape))


def test_overfits_one_batch() -> None:
    torch.manual_seed(0)
    t = torch.linspace(0, 2 * math.pi, 30)
    phases = torch.linspace(0, math.pi, 8).unsqueeze(1)
    x = torch.sin(t + phases).unsqueeze(-1)  # (8, 30, 1)
    model = RecurrentAutoencoder(time_steps=30, n_features=1, hidden_size=32, latent_dim=8).train()
    opt = torch.optim.Adam(model.parameters(), lr=1e-2)
    loss_fn = nn.MSELoss()
    with torch.no_grad():
        initial = loss_fn(model(x), x).item()
    for _ in range(300):
        opt.zero_grad()
        loss = loss_fn(model(x), x)
        loss.backward()
        opt.step()
    model.eval()
    with torch.no_grad():
        final = loss_fn(model(x, teacher_forcing=True), x).item()
        free_running = loss_fn(model(x), x).item()  # eval default: free running
    assert final < 0.1 * initial, (initial, final)
    assert free_running < 0.1 * initial, (initial, free_running)


@pytest.mark.parametrize("cell", CELLS)
def test_state_dict_round_trip(cell: str) -> None:
    model = _model(cell=cell, latent_dim=4).eval()
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    torch.manual_seed(123)  # different init, so equality comes from the load
    clone = RecurrentAutoencoder(time_steps=9, n_features=3, hidden_size=8, num_layers=2, cell=cell, latent_dim=4)
    clone.load_state_dict(torch.load(buffer, weights_only=True))
    plain = {"lstm": nn.LSTM, "gru": nn.GRU}[cell](3, 8, num_layers=2, batch_first=True).state_dict()
    rnn_keys = [f"{part}.{key}" for part in ("encoder", "decoder") for key in plain]
    assert [k for k in clone.state_dict() if k.startswith(("encoder.", "decoder."))] == rnn_keys  # as nn.LSTM/GRU
    clone.eval()
    x = torch.randn(3, 9, 3)
    with torch.no_grad():
        for tf in (True, False):
            torch.testing.assert_close(clone(x, teacher_forcing=tf), model(x, teacher_forcing=tf), atol=0, rtol=0)


@pytest.mark.parametrize("teacher_forcing", [True, False])
def test_jit_trace_fixed_mode(teacher_forcing: bool) -> None:
    class Fixed(nn.Module):
        def __init__(self, inner: RecurrentAutoencoder) -> None:
            super().__init__()
            self.inner = inner

        def forward(self, x: Tensor) -> Tensor:
            return self.inner(x, teacher_forcing=teacher_forcing)

    model = _model(latent_dim=4).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trace deprecation / nn.LSTM's own TracerWarnings
        traced = torch.jit.trace(Fixed(model), torch.randn(2, 10, 3))
    x = torch.randn(5, 10, 3)  # another batch size, same length
    with torch.no_grad():
        torch.testing.assert_close(traced(x), model(x, teacher_forcing=teacher_forcing))


@pytest.mark.parametrize("cell", CELLS)
@pytest.mark.parametrize("num_layers", [1, 2])  # 1: the fused free-running LSTM (torch.lstm on folded weights)
def test_jit_trace_and_onnx_in_eval_mode_match_eager(cell: str, num_layers: int) -> None:
    """The scoring forward (eval mode: free running) traces and exports; the kernels' fast paths step aside."""
    model = _model(cell=cell, num_layers=num_layers, latent_dim=4).eval()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # trace deprecation / nn.LSTM's own TracerWarnings
        traced = torch.jit.trace(model, torch.randn(2, 10, 3))
    x = torch.randn(5, 10, 3)  # another batch size, same length
    with torch.no_grad():
        eager = model(x)
        torch.testing.assert_close(traced(x), eager, atol=1e-6, rtol=1e-5)
    ort = pytest.importorskip("onnxruntime")
    pytest.importorskip("onnx")
    buffer = io.BytesIO()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(model, (torch.randn(2, 10, 3),), buffer, dynamo=False, opset_version=17,
                          input_names=["x"], dynamic_axes={"x": {0: "batch"}})
    (onnx_out,) = ort.InferenceSession(buffer.getvalue()).run(None, {"x": x.numpy()})
    torch.testing.assert_close(torch.from_numpy(onnx_out), eager, atol=1e-5, rtol=1e-4)
