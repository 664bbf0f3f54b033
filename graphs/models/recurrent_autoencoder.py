"""Recurrent (LSTM/GRU) encoder-decoder autoencoder of Malhotra et al. (2016), arXiv:1607.00148: the encoder's final
state starts the decoder, which reconstructs the window in reverse, ``x̂(t) = A h_D(t) + b``, ``h_D(t) = f(input(t+1),
h_D(t+1))``, the input being ``x(t+1)`` (teacher forcing) or ``x̂(t+1)`` (free running, scoring)."""
from __future__ import annotations

from typing import Literal

import torch
from torch import Tensor, nn

from graphs import kernels
from graphs.kernels import State
from graphs.models.contract import ReconstructionModel
from utils.core.registry import register_model
from utils.core.types import Dropout, PositiveInt

_CELLS: dict[str, type[nn.RNNBase]] = {"lstm": kernels.LSTM, "gru": kernels.GRU}


@register_model("recurrent_ae")
class RecurrentAutoencoder(ReconstructionModel):
    """Sequence-to-sequence autoencoder reconstructing a window (any T >= 2) in reverse order.

    Encoder and decoder: batch-first ``graphs.kernels.LSTM``/``GRU`` (``dropout`` between stacked layers), then
    ``nn.Linear(hidden_size, n_features)``. A state is LSTM ``(h, c)`` or GRU ``h``, each (layers, B, H). With
    ``latent_dim``, the encoder's final state, flattened to (B, num_layers * hidden_size * k), k = 2 for an LSTM, 1 for
    a GRU, is projected to ``z`` and mapped back by ``tanh(Linear(z))`` to the decoder's initial state. Latent space:
    ``z``, else that flat state. ``teacher_forcing``: the decoder mode in training mode (eval mode runs free).
    """

    default_scores = ("reconstruction_mae", "error_gaussian")

    cpu_inference_chunk: int | None = 256
    """Without gradients on the CPU an LSTM reconstructs a batch in chunks of this many windows (chunks that
    fit in the cache score 1.2-2x faster: benchmarks/speed.py); None: one call per batch."""

    def __init__(self, time_steps: int, n_features: int, hidden_size: PositiveInt = 64, num_layers: PositiveInt = 1,
                 cell: Literal["lstm", "gru"] = "lstm", latent_dim: PositiveInt | None = None, dropout: Dropout = 0.0,
                 teacher_forcing: bool = True) -> None:
        if cell not in _CELLS:
            raise ValueError(f"unknown cell {cell!r}; valid values: {', '.join(repr(name) for name in _CELLS)}")
        sizes = dict(time_steps=time_steps, n_features=n_features, hidden_size=hidden_size, num_layers=num_layers,
                     latent_dim=1 if latent_dim is None else latent_dim)  # None: no bottleneck, nothing to check
        for name, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        super().__init__(time_steps, n_features)
        self.hidden_size, self.num_layers, self.cell, self.latent_dim = hidden_size, num_layers, cell, latent_dim
        self.teacher_forcing, self.is_lstm = bool(teacher_forcing), cell == "lstm"
        # nn.LSTM/nn.GRU warn when dropout > 0 with a single layer (it has no effect).
        rnn_kwargs = dict(input_size=n_features, hidden_size=hidden_size, num_layers=num_layers, batch_first=True,
                          dropout=float(dropout) if num_layers > 1 else 0.0)
        self.encoder, self.decoder = _CELLS[cell](**rnn_kwargs), _CELLS[cell](**rnn_kwargs)
        self.output_layer = nn.Linear(hidden_size, n_features)
        state_width = num_layers * hidden_size * (2 if self.is_lstm else 1)
        self.to_latent = nn.Linear(state_width, latent_dim) if latent_dim is not None else None
        self.from_latent = nn.Linear(latent_dim, state_width) if latent_dim is not None else None

    def _check_input(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` is (B, T >= 2, n_features); not while tracing (only TracerWarnings)."""
        if not torch.jit.is_tracing() and (x.dim() != 3 or x.shape[-1] != self.n_features or x.shape[1] < 2):
            raise ValueError(f"expected input of shape (batch, time >= 2, {self.n_features}), got {tuple(x.shape)}")

    def _top_hidden(self, state: State) -> Tensor:
        """Top-layer hidden state ``h_D`` (B, hidden_size)."""
        return (state[0] if isinstance(state, tuple) else state)[-1]

    def encode(self, x: Tensor) -> Tensor:
        """Latent vector of windows (B, T, F): ``z`` (B, latent_dim), else the flat encoder state (layers, h before c)."""
        self._check_input(x)
        state = self.encoder(x)[1]
        parts = list(state) if isinstance(state, tuple) else [state]
        flat = torch.cat([p.transpose(0, 1).reshape(p.shape[1], -1) for p in parts], dim=-1)
        return self.to_latent(flat) if self.to_latent is not None else flat

    def encode_state(self, x: Tensor) -> State:
        """The decoder's initial state of windows (B, T, F); with a bottleneck ``tanh(from_latent(to_latent(.)))``."""
        if self.from_latent is None:
            self._check_input(x)
            return self.encoder(x)[1]
        flat = torch.tanh(self.from_latent(self.encode(x)))
        parts = [p.reshape(flat.shape[0], self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
                 for p in flat.chunk(2 if self.is_lstm else 1, dim=-1)]
        return (parts[0], parts[1]) if self.is_lstm else parts[0]

    def decode_step(self, inp: Tensor, state: State) -> tuple[Tensor, State]:
        """One decoder step: input ``x(t+1)`` or ``x̂(t+1)`` (B, F) and ``h_D(t+1)`` -> ``(x̂(t) (B, F), h_D(t))``."""
        out, state = self.decoder(inp.unsqueeze(1), state)
        return self.output_layer(out[:, 0]), state

    def decode_teacher_forced(self, x: Tensor, state: State) -> Tensor:
        """Reconstruction (B, T, F), in time order, feeding ``x(T), ..., x(2)`` of ``x`` (B, T >= 2, F) in one call."""
        self._check_input(x)
        out, _ = self.decoder(x.flip(1)[:, :-1], state)  # inputs x(T), ..., x(2)
        first = self.output_layer(self._top_hidden(state)).unsqueeze(1)  # x̂(T) from h_D(T)
        return torch.cat([first, self.output_layer(out)], dim=1).flip(1)  # cat the (B, T, F) outputs, not states

    def decode_free_running(self, state: State, length: int) -> Tensor:
        """Reconstruction (B, length >= 1, F), in time order, feeding back the model's own predictions (one call
        where :func:`graphs.kernels.free_running` applies, else a step at a time)."""
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        fused = kernels.free_running(self.decoder, self.output_layer, state, length)
        if fused is not None:
            return fused.flip(1)  # x̂(T), ..., x̂(1) -> time order
        preds = [self.output_layer(self._top_hidden(state))]
        for _ in range(length - 1):
            pred, state = self.decode_step(preds[-1], state)
            preds.append(pred)
        return torch.stack(preds[::-1], dim=1)  # x̂(T), ..., x̂(1) -> time order

    def forward(self, x: Tensor, teacher_forcing: bool | None = None) -> Tensor:
        """Reconstruction (B, T, F) of windows (B, T >= 2, F); ``teacher_forcing`` None: the constructor's in
        training mode, free running in eval mode."""
        if teacher_forcing is None:
            teacher_forcing = self.teacher_forcing and self.training
        chunk = self.cpu_inference_chunk
        if (chunk and self.is_lstm and len(x) > chunk and x.device.type == "cpu" and not torch.is_grad_enabled()
                and not torch.jit.is_tracing()):
            return torch.cat([self.forward(part, teacher_forcing) for part in x.split(chunk)])
        state = self.encode_state(x)
        if teacher_forcing:
            return self.decode_teacher_forced(x, state)
        return self.decode_free_running(state, x.shape[1])
