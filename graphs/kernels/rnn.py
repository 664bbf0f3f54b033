"""``nn.GRU``/``nn.LSTM`` with one autograd node per layer: whole-sequence matmuls around the time loops
(:mod:`graphs.kernels.native`). Models use :mod:`graphs.kernels`, not this module."""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn

from graphs.kernels.native import plain_cpu_float32, time_loops, training_loops_apply


def _can_use(rnn: nn.RNNBase, x: Tensor) -> bool:
    return (isinstance(x, Tensor) and x.dim() == 3 and rnn.batch_first and rnn.bias and not rnn.bidirectional
            and not getattr(rnn, "proj_size", 0)
            and (training_loops_apply(x) if isinstance(rnn, nn.LSTM) else plain_cpu_float32(x)))


def run_rnn(rnn: nn.RNNBase, input: Tensor, hx: Any = None) -> tuple[Tensor, Any]:  # noqa: A002 (nn.RNNBase's)
    """``rnn(input, hx)`` for a batch-first ``nn.GRU``/``nn.LSTM`` on the CPU (else the module's own forward):
    ``input`` (B, T, I), ``hx`` GRU ``h``, LSTM ``(h, c)``, each (num_layers, B, H), None for zeros ->
    ``(output (B, T, H), state)``."""
    x, state, layers = input, hx, rnn.num_layers
    if not isinstance(rnn, (nn.LSTM, nn.GRU)):  # another recurrent module (nn.RNN): its own forward
        return rnn(x, state)
    lstm = isinstance(rnn, nn.LSTM)
    if not _can_use(rnn, x) or x.shape[1] == 0:
        return (nn.LSTM if lstm else nn.GRU).forward(rnn, x, state)  # the module's own, past the subclass's
    zeros = x.new_zeros(layers, x.shape[0], rnn.hidden_size) if state is None else None
    h0, c0 = (zeros, zeros) if state is None else state if lstm else (state, None)
    inp = x.transpose(0, 1).contiguous()  # time-major (T, B, I), as the modules work internally
    h_n, c_n = [], []
    for layer in range(layers):
        weights = [getattr(rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        if lstm:
            out, c_last = LSTMLayer.apply(inp, h0[layer], c0[layer], *weights)
            c_n.append(c_last)
        elif torch.is_grad_enabled() and any(t.requires_grad for t in (inp, h0, *weights)):
            out = _GRULayer.apply(inp, h0[layer], *weights)
        else:
            out = _gru_forward(inp, h0[layer], *weights, keep=False)[0]
        h_n.append(out[-1])
        dropout = rnn.dropout and rnn.training and layer < layers - 1
        inp = torch.dropout(out, rnn.dropout, True) if dropout else out  # as the modules: same layout, same draws
    return inp.transpose(0, 1), ((torch.stack(h_n), torch.stack(c_n)) if lstm else torch.stack(h_n))


class LSTMLayer(torch.autograd.Function):
    """One LSTM layer over time-major ``x`` (T, B, I): returns (out (T, B, H), c_T (B, H))."""

    @staticmethod
    def forward(ctx, x, h0, c0, w_ih, w_hh, b_ih, b_hh):  # noqa: ANN001, ANN205
        (steps, batch, _), hidden = x.shape, h0.shape[1]
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


# Per step, with gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh (PyTorch's GRU):
#   r, z = sigmoid(gi_rz + gh_rz);  n = tanh(gi_n + r * gh_n);  h' = n + z * (h - n)
# The buffer ``g`` of a step starts as [gi_r + b_hr, gi_z + b_hz, b_hn]; one addmm_ turns it
# into [pre_r, pre_z, gh_n], and one sigmoid_ into [r, z, gh_n], which backward reads.
_CHUNK_ELEMENTS = 1 << 22  # without grad, gate buffers of at most this many floats (16 MiB)


def _gru_forward(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
                 keep: bool) -> tuple[Tensor, ...]:
    """GRU layer over time-major ``x`` (T, B, I): (out (T, B, H),) or, if ``keep``, with the buffers."""
    (steps, batch, _), hidden = x.shape, h0.shape[1]
    loop = time_loops(x).gru_forward_loop
    w_hh_t = w_hh.t().contiguous()
    bias_g = torch.cat([b_ih[: 2 * hidden] + b_hh[: 2 * hidden], b_hh[2 * hidden:]])
    w_g = torch.cat([w_ih[: 2 * hidden], w_ih.new_zeros(hidden, w_ih.shape[1])])
    hs = x.new_empty(steps + 1, batch, hidden)
    hs[0] = h0
    chunk = steps if keep else max(1, min(steps, _CHUNK_ELEMENTS // (batch * 3 * hidden)))
    n = x.new_empty(chunk, batch, hidden)
    for start in range(0, steps, chunk):
        stop = min(steps, start + chunk)
        x_flat = x[start:stop].reshape((stop - start) * batch, -1)
        g = torch.addmm(bias_g, x_flat, w_g.t()).view(stop - start, batch, 3 * hidden)
        gi_n = torch.addmm(b_ih[2 * hidden:], x_flat, w_ih[2 * hidden:].t()).view(stop - start, batch, hidden)
        loop(g, gi_n, hs[start: stop + 1], w_hh_t, n[: stop - start])
    return (hs[1:], hs, g, n) if keep else (hs[1:],)


class _GRULayer(torch.autograd.Function):
    @staticmethod
    def forward(ctx, x, h0, w_ih, w_hh, b_ih, b_hh):  # noqa: ANN001, ANN205
        out, hs, g, n = _gru_forward(x, h0, w_ih, w_hh, b_ih, b_hh, keep=True)
        ctx.save_for_backward(x, hs, g, n, w_ih, w_hh)
        return out

    @staticmethod
    def backward(ctx, d_out):  # noqa: ANN001, ANN205
        x, hs, g, n, w_ih, w_hh = ctx.saved_tensors
        steps, batch, hidden = n.shape
        d_h = d_out.contiguous().clone()  # becomes d h' per step: incoming plus recurrent
        d_gh = x.new_empty(steps, batch, 3 * hidden)  # d (h W_hh^T + b_hh) per step
        d_in_n = x.new_empty(steps, batch, hidden)  # d (x W_in + b_in)
        d_h0 = x.new_zeros(batch, hidden)
        time_loops(x).gru_backward_loop(d_h, g, n, hs, w_hh, d_gh, d_in_n, d_h0)
        d_gh, d_in_n = d_gh.view(steps * batch, 3 * hidden), d_in_n.view(steps * batch, hidden)
        d_rz = d_gh[:, : 2 * hidden]  # the r and z parts of d gi equal those of d gh
        x_flat = x.reshape(steps * batch, -1)
        d_x = (torch.addmm(d_in_n @ w_ih[2 * hidden:], d_rz, w_ih[: 2 * hidden]).view_as(x)
               if ctx.needs_input_grad[0] else None)
        return (d_x, d_h0, torch.cat([d_rz.t() @ x_flat, d_in_n.t() @ x_flat]),
                d_gh.t() @ hs[:-1].reshape(steps * batch, hidden), torch.cat([d_rz.sum(0), d_in_n.sum(0)]), d_gh.sum(0))


class GRUFreeRunning(torch.autograd.Function):
    """A single-layer GRU fed its own output ``x̂ = A h + b``, as one autograd node: ``h0`` (B, H), ``w_cat``
    ``[W_hh; W_ih A]`` (6H, H), ``b_cat`` ``[b_hh; W_ih b + b_ih]`` (6H,), ``steps`` -> h(1..steps) (steps, B, H)."""

    @staticmethod
    def forward(ctx, h0, w_cat, b_cat, steps):  # noqa: ANN001, ANN205
        batch, hidden = h0.shape
        g = h0.new_empty(steps, batch, 6 * hidden).copy_(b_cat)  # not b_cat.expand(...).contiguous(): can be a view
        hs, n = h0.new_empty(steps + 1, batch, hidden), h0.new_empty(steps, batch, hidden)
        hs[0] = h0
        time_loops(h0).gru_free_forward_loop(g, hs, w_cat.t().contiguous(), n)
        ctx.save_for_backward(g, n, hs, w_cat)
        return hs[1:]

    @staticmethod
    def backward(ctx, d_out):  # noqa: ANN001, ANN205
        g, n, hs, w_cat = ctx.saved_tensors
        steps, batch, hidden = n.shape
        d_h, d_g, d_h0 = d_out.contiguous().clone(), torch.empty_like(g), hs.new_zeros(batch, hidden)
        time_loops(g).gru_free_backward_loop(d_h, g, n, hs, w_cat, d_g, d_h0)
        d_g = d_g.view(steps * batch, 6 * hidden)
        return d_h0, d_g.t() @ hs[:-1].reshape(steps * batch, hidden), d_g.sum(0), None
