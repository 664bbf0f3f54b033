"""Recurrent (LSTM/GRU) encoder-decoder autoencoder of Malhotra et al. (2016).

"LSTM-based Encoder-Decoder for Multi-sensor Anomaly Detection", arXiv:1607.00148.

The encoder reads a window ``x(1), ..., x(T)``; its final state initialises the
decoder, which reconstructs the window in *reverse* order::

    h_D(T) = decoder initial state (top layer)
    x̂(t)   = A h_D(t) + b                          for t = T, ..., 1
    h_D(t) = f(input(t+1), h_D(t+1))               for t = T-1, ..., 1

where ``input(t+1)`` is the true ``x(t+1)`` under teacher forcing (training) or
the model's own ``x̂(t+1)`` when free running (scoring, as in the paper).
``forward`` returns the reconstruction flipped back to the original time order,
so a loss compares it with ``x`` directly.

State convention: an LSTM state is a tuple ``(h, c)`` and a GRU state a tensor
``h``; each tensor has shape ``(num_layers, B, hidden_size)``.
"""
from __future__ import annotations

from typing import Literal, Union

import torch
from torch import Tensor, nn

from graphs import kernels
from graphs.models.contract import ReconstructionModel
from utils.core.registry import register_model
from utils.core.types import Dropout, PositiveInt

State = Union[Tensor, tuple[Tensor, Tensor]]

_CELLS: dict[str, type[nn.RNNBase]] = {"lstm": kernels.LSTM, "gru": kernels.GRU}


@register_model("recurrent_ae")
class RecurrentAutoencoder(ReconstructionModel):
    """Sequence-to-sequence autoencoder reconstructing a window in reverse order.

    Encoder and decoder are separate LSTM/GRU modules (``graphs.kernels.LSTM`` /
    ``GRU``: ``nn.LSTM`` / ``nn.GRU`` with a fast CPU path; batch first,
    ``num_layers`` stacked layers, ``dropout`` between layers); one
    ``nn.Linear(hidden_size, n_features)`` maps a decoder hidden state to a
    reconstructed vector.

    Optional bottleneck (``latent_dim`` given): the encoder's final state of all
    layers is flattened to ``(B, num_layers * hidden_size * k)`` with ``k = 2``
    for an LSTM (``h`` and ``c`` concatenated, i.e. mapped *jointly*) and
    ``k = 1`` for a GRU, projected linearly to a latent vector ``z`` of size
    ``latent_dim``, and mapped back with ``tanh(Linear(z))`` to the decoder's
    initial state (split again into ``h`` and ``c`` for an LSTM). Without it the
    decoder starts from the encoder's final state directly.

    Latent space (:meth:`encode`): ``z``, or the flattened encoder state without a bottleneck.

    Args:
        time_steps: Window length ``T`` of the data (the model runs any ``T >= 2``).
        n_features: Number of input features ``F`` per time step.
        hidden_size: Hidden units per recurrent layer.
        num_layers: Stacked recurrent layers in encoder and decoder each.
        cell: ``"lstm"`` or ``"gru"``.
        latent_dim: Size of the optional linear bottleneck; ``None`` for none.
        dropout: Dropout probability between stacked layers (ignored when
            ``num_layers == 1``); in ``[0, 1)``.
        teacher_forcing: Decoder mode used by ``forward`` in training mode when
            not overridden; evaluation mode always defaults to free running.

    Raises:
        ValueError: On an unknown ``cell``, a non-positive size or an invalid
            ``dropout`` (the config validator refuses them first, from the type hints).
    """

    default_scores = ("reconstruction_mae", "error_gaussian")

    cpu_inference_chunk: int | None = 256
    """Without gradients on the CPU, an LSTM reconstructs a large batch in chunks of this many
    windows: oneDNN keeps every gate of the batch in flight, and chunks that fit in the cache
    score 1.2-2x faster (measured by benchmarks/speed.py). None: one call per batch."""

    def __init__(
        self,
        time_steps: int,
        n_features: int,
        hidden_size: PositiveInt = 64,
        num_layers: PositiveInt = 1,
        cell: Literal["lstm", "gru"] = "lstm",
        latent_dim: PositiveInt | None = None,
        dropout: Dropout = 0.0,
        teacher_forcing: bool = True,
    ) -> None:
        if cell not in _CELLS:
            valid = ", ".join(repr(name) for name in _CELLS)
            raise ValueError(f"unknown cell {cell!r}; valid values: {valid}")
        sizes = {"time_steps": time_steps, "n_features": n_features, "hidden_size": hidden_size,
                 "num_layers": num_layers}
        if latent_dim is not None:
            sizes["latent_dim"] = latent_dim
        for name, value in sizes.items():
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 0.0 <= float(dropout) < 1.0:
            raise ValueError(f"dropout must be in [0, 1), got {dropout!r}")
        super().__init__(time_steps, n_features)
        self.hidden_size = hidden_size
        self.num_layers = num_layers
        self.cell = cell
        self.latent_dim = latent_dim
        self.dropout = float(dropout)
        self.teacher_forcing = bool(teacher_forcing)
        self.is_lstm = cell == "lstm"

        rnn_cls = _CELLS[cell]
        # nn.LSTM/nn.GRU warn when dropout > 0 with a single layer (it has no effect).
        rnn_dropout = self.dropout if num_layers > 1 else 0.0
        rnn_kwargs = dict(
            input_size=n_features,
            hidden_size=hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=rnn_dropout,
        )
        self.encoder = rnn_cls(**rnn_kwargs)
        self.decoder = rnn_cls(**rnn_kwargs)
        self.output_layer = nn.Linear(hidden_size, n_features)

        state_width = num_layers * hidden_size * (2 if self.is_lstm else 1)
        self.to_latent: nn.Linear | None = None
        self.from_latent: nn.Linear | None = None
        if latent_dim is not None:
            self.to_latent = nn.Linear(state_width, latent_dim)
            self.from_latent = nn.Linear(latent_dim, state_width)

    # ------------------------------------------------------------------ helpers
    def _check_input(self, x: Tensor) -> None:
        """Raise ValueError unless ``x`` has shape ``(B, T, n_features)``, ``T >= 2``.

        Skipped while tracing: shapes are fixed by the example input then, and
        comparing traced sizes would only emit TracerWarnings.
        """
        if torch.jit.is_tracing():
            return
        if x.dim() != 3 or x.shape[-1] != self.n_features or x.shape[1] < 2:
            raise ValueError(
                f"expected input of shape (batch, time >= 2, {self.n_features}), "
                f"got {tuple(x.shape)}"
            )

    def _flatten_state(self, state: State) -> Tensor:
        """State -> ``(B, num_layers * hidden_size * k)`` (layers, then h before c)."""
        parts = list(state) if isinstance(state, tuple) else [state]
        flat = [p.transpose(0, 1).reshape(p.shape[1], -1) for p in parts]
        return torch.cat(flat, dim=-1)

    def _unflatten_state(self, flat: Tensor) -> State:
        """Inverse of :meth:`_flatten_state`."""
        batch = flat.shape[0]
        parts = [
            p.reshape(batch, self.num_layers, self.hidden_size).transpose(0, 1).contiguous()
            for p in flat.chunk(2 if self.is_lstm else 1, dim=-1)
        ]
        return (parts[0], parts[1]) if self.is_lstm else parts[0]

    def _top_hidden(self, state: State) -> Tensor:
        """Top-layer hidden state ``h_D`` of shape ``(B, hidden_size)``."""
        h = state[0] if isinstance(state, tuple) else state
        return h[-1]

    # --------------------------------------------------------------- public API
    def encode(self, x: Tensor) -> Tensor:
        """Latent vector of each window.

        Args:
            x: Input windows, shape ``(B, T, F)``.

        Returns:
            The latent vector ``z`` of shape ``(B, latent_dim)`` when a bottleneck
            is used, else the flattened encoder state of shape
            ``(B, num_layers * hidden_size * k)`` (``k = 2`` for LSTM, 1 for GRU).
        """
        self._check_input(x)
        _, state = self.encoder(x)
        flat = self._flatten_state(state)
        return self.to_latent(flat) if self.to_latent is not None else flat

    def encode_state(self, x: Tensor) -> State:
        """Encode windows into the decoder's initial state.

        Args:
            x: Input windows, shape ``(B, T, F)``.

        Returns:
            LSTM: tuple ``(h, c)``; GRU: ``h``; each ``(num_layers, B, hidden_size)``.
            With a bottleneck this is ``tanh(from_latent(to_latent(state)))``.
        """
        self._check_input(x)
        _, state = self.encoder(x)
        if self.to_latent is None or self.from_latent is None:
            return state
        z = self.to_latent(self._flatten_state(state))
        return self._unflatten_state(torch.tanh(self.from_latent(z)))

    def decode_step(self, inp: Tensor, state: State) -> tuple[Tensor, State]:
        """One decoder step: ``h_D(t) = f(inp, h_D(t+1))``, ``x̂(t) = A h_D(t) + b``.

        Args:
            inp: Decoder input ``x(t+1)`` or ``x̂(t+1)``, shape ``(B, F)``.
            state: Decoder state ``h_D(t+1)`` (see :meth:`encode_state`).

        Returns:
            ``(x̂(t), h_D(t))`` with ``x̂(t)`` of shape ``(B, F)``.
        """
        out, state = self.decoder(inp.unsqueeze(1), state)
        return self.output_layer(out[:, 0]), state

    def decode_teacher_forced(self, x: Tensor, state: State) -> Tensor:
        """Reconstruct with true inputs, as one fused RNN call.

        The decoder is fed ``x(T), x(T-1), ..., x(2)`` starting from ``state``;
        its outputs are ``h_D(T-1), ..., h_D(1)``, preceded by ``h_D(T)`` (the
        top layer of ``state``).

        Args:
            x: True windows, shape ``(B, T, F)`` with ``T >= 2``.
            state: Decoder initial state (see :meth:`encode_state`).

        Returns:
            Reconstruction in the original time order, shape ``(B, T, F)``.
        """
        self._check_input(x)
        out, _ = self.decoder(x.flip(1)[:, :-1], state)  # inputs x(T), ..., x(2)
        first = self.output_layer(self._top_hidden(state)).unsqueeze(1)  # x̂(T) from h_D(T)
        return torch.cat([first, self.output_layer(out)], dim=1).flip(1)  # cat the (B, T, F) outputs, not states

    def decode_free_running(self, state: State, length: int) -> Tensor:
        """Reconstruct feeding back the model's own predictions.

        A single-layer decoder runs as one call (:func:`graphs.kernels.free_running`) where it can;
        otherwise the decoder is stepped once per time step.

        Args:
            state: Decoder initial state (see :meth:`encode_state`).
            length: Window length ``T >= 1`` to reconstruct.

        Returns:
            Reconstruction in the original time order, shape ``(B, length, F)``.

        Raises:
            ValueError: If ``length < 1``.
        """
        if length < 1:
            raise ValueError(f"length must be >= 1, got {length}")
        fused = kernels.free_running(self.decoder, self.output_layer, state, length)
        if fused is not None:
            return fused.flip(1)  # x̂(T), ..., x̂(1) -> time order
        pred = self.output_layer(self._top_hidden(state))
        preds = [pred]
        for _ in range(length - 1):
            pred, state = self.decode_step(pred, state)
            preds.append(pred)
        preds.reverse()  # x̂(T), ..., x̂(1) -> x̂(1), ..., x̂(T)
        return torch.stack(preds, dim=1)

    def forward(self, x: Tensor, teacher_forcing: bool | None = None) -> Tensor:
        """Encode and reconstruct windows.

        Args:
            x: Input windows, shape ``(B, T, F)``.
            teacher_forcing: ``True``/``False`` forces the decoder mode; ``None``
                uses the constructor default in training mode and free running
                in evaluation mode.

        Returns:
            Reconstruction ``x̂`` in the original time order, shape ``(B, T, F)``.

        Raises:
            ValueError: If ``x`` is not ``(B, T, n_features)`` with ``T >= 2``.
        """
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
