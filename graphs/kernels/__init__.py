"""The fast recurrent layers the models use: :class:`LSTM`, :class:`GRU` (``nn.LSTM``/``nn.GRU``'s parameters,
so checkpoints do not change) and :func:`free_running`; the C++ build: :mod:`graphs.kernels.native`."""
from __future__ import annotations

import torch
from torch import Tensor, nn

from graphs.kernels.native import training_loops_apply
from graphs.kernels.rnn import GRUFreeRunning, LSTMLayer, run_rnn

__all__ = ["LSTM", "GRU", "free_running"]

State = Tensor | tuple[Tensor, Tensor]


class LSTM(nn.LSTM):
    """``nn.LSTM`` whose forward is :func:`graphs.kernels.rnn.run_rnn` (its loops: training on the CPU in float32)."""

    forward = run_rnn


class GRU(nn.GRU):
    """``nn.GRU`` whose forward is :func:`graphs.kernels.rnn.run_rnn` (its loops: on the CPU in float32)."""

    forward = run_rnn


def free_running(decoder: nn.RNNBase, output_layer: nn.Linear, state: State, length: int) -> Tensor | None:
    """A decoder fed back its own output as one call: ``x̂(0) = A h(0) + b``, then for k >= 1
    ``h(k) = f(x̂(k-1), h(k-1))``, ``x̂(k) = A h(k) + b`` (``A``, ``b``: ``output_layer``).

    ``W_ih x̂`` is linear in ``h``, so it is folded into the weights (an LSTM: ``W_hh + W_ih A``; a GRU: ``[W_hh;
    W_ih A]``, as only ``gh_n`` is multiplied by ``r``). ``state``: LSTM ``(h, c)``, GRU ``h``, each (1, B, H).
    Returns (B, length, F) in the order produced, or None where no fused path applies (a single-layer, batch-first
    decoder with biases, input size F, and ``nn.Linear(H, F)``): then the caller steps the decoder itself.
    """
    h_top = (state[0] if isinstance(state, tuple) else state)[-1]  # (B, H)
    lstm = isinstance(decoder, nn.LSTM)
    if (length < 2 or not isinstance(decoder, (nn.LSTM, nn.GRU)) or not isinstance(output_layer, nn.Linear)
            or decoder.num_layers != 1 or not decoder.batch_first or not decoder.bias or decoder.bidirectional
            or getattr(decoder, "proj_size", 0) or output_layer.bias is None
            or output_layer.in_features != decoder.hidden_size or output_layer.out_features != decoder.input_size
            or not (lstm or training_loops_apply(h_top))):  # a GRU's fused path: training on the CPU in float32
        return None
    dec, out = decoder, output_layer
    if lstm:
        w_hh = dec.weight_hh_l0 + dec.weight_ih_l0 @ out.weight
        bias = dec.bias_ih_l0 + dec.bias_hh_l0 + dec.weight_ih_l0 @ out.bias
        weights = [h_top.new_zeros(w_hh.shape[0], 1), w_hh, bias, torch.zeros_like(bias)]  # no input: x̂ is folded
        no_input = h_top.new_zeros(h_top.shape[0], length - 1, 1)
        if training_loops_apply(h_top):
            hidden = LSTMLayer.apply(no_input.transpose(0, 1).contiguous(), state[0][0], state[1][0], *weights)[0]
            hidden = hidden.transpose(0, 1)
        else:
            hidden = torch.lstm(no_input, state, weights, True, 1, 0.0, False, False, True)[0]
    else:
        w_cat = torch.cat([dec.weight_hh_l0, dec.weight_ih_l0 @ out.weight])
        b_cat = torch.cat([dec.bias_hh_l0, dec.weight_ih_l0 @ out.bias + dec.bias_ih_l0])
        hidden = GRUFreeRunning.apply(h_top, w_cat, b_cat, length - 1).transpose(0, 1)
    return torch.cat([out(h_top).unsqueeze(1), out(hidden)], dim=1)  # (B, length, F)
