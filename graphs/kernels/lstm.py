"""One LSTM layer from explicit weights on the time loops (``lstm_forward_loop`` / ``lstm_backward_loop``)."""
from __future__ import annotations

import torch
from torch import Tensor

from graphs.kernels.native import time_loops, training_loops_apply


def lstm_layer(x: Tensor, state: tuple[Tensor, Tensor], w_ih: Tensor, w_hh: Tensor, b_ih: Tensor,
               b_hh: Tensor) -> Tensor:
    """One batch-first LSTM layer (the time loops when training on the CPU in float32, else ``torch.lstm``):
    ``x`` (B, T, I), ``state`` ``(h0, c0)`` each (1, B, H), weights (4H, I), (4H, H) and biases (4H,) in gate
    order i, f, g, o -> the hidden states (B, T, H)."""
    if training_loops_apply(x):
        out, _ = LSTMLayer.apply(x.transpose(0, 1).contiguous(), state[0][0], state[1][0], w_ih, w_hh, b_ih, b_hh)
        return out.transpose(0, 1)
    return torch.lstm(x, state, [w_ih, w_hh, b_ih, b_hh], True, 1, 0.0, False, False, True)[0]


class LSTMLayer(torch.autograd.Function):
    """One LSTM layer over time-major ``x`` (T, B, I): returns (out (T, B, H), c_T (B, H))."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh):  # noqa: ANN001, ANN205
        steps, batch, _ = x.shape
        hidden = h0.shape[1]
        gates = torch.addmm(b_ih + b_hh, x.reshape(steps * batch, -1), w_ih.t()).view(steps, batch, 4 * hidden)
        hs, cs = x.new_empty(steps + 1, batch, hidden), x.new_empty(steps + 1, batch, hidden)
        hs[0], cs[0] = h0, c0
        tanh_c = x.new_empty(steps, batch, hidden)
        time_loops(x).lstm_forward_loop(gates, hs, cs, tanh_c, w_hh.t().contiguous())
        ctx.save_for_backward(x, hs, cs, gates, tanh_c, w_ih, w_hh)
        return hs[1:], cs[-1]

    @staticmethod
    def backward(ctx, d_out, d_c_last):  # noqa: ANN001, ANN205
        x, hs, cs, gates, tanh_c, w_ih, w_hh = ctx.saved_tensors
        steps, batch, hidden = tanh_c.shape
        d_h = d_out.contiguous().clone()  # becomes d h per step: incoming plus recurrent
        d_c = d_c_last.contiguous().clone()  # becomes d c0
        d_gates, d_h0 = x.new_empty(steps, batch, 4 * hidden), x.new_zeros(batch, hidden)
        time_loops(x).lstm_backward_loop(d_h, d_c, gates, cs, tanh_c, w_hh, d_gates, d_h0)
        d_gates = d_gates.view(steps * batch, 4 * hidden)
        d_bias = d_gates.sum(0)
        return ((d_gates @ w_ih).view_as(x) if ctx.needs_input_grad[0] else None, d_h0, d_c,
                d_gates.t() @ x.reshape(steps * batch, -1), d_gates.t() @ hs[:-1].reshape(steps * batch, hidden),
                d_bias, d_bias)
