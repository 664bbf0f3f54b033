"""Fast CPU execution of ``nn.GRU`` over whole sequences.

On the CPU, PyTorch runs a GRU as a C++ loop of per-step cell calls whose
autograd graph holds a dozen nodes per time step, and each backward step issues
its own small weight-gradient matmuls. For the small recurrent autoencoders
here (batch 32, hidden 64, 140 steps) that made the "fused" teacher-forced path
no faster than a ``GRUCell`` stepped in Python (an ``nn.LSTM`` on the CPU runs
oneDNN's fused kernel instead, which is already fast, and is left alone).

:func:`run_rnn` computes exactly the same function with a hand-written
backward (one autograd node per layer):

* forward: the input projection of all time steps is one matmul; each step is
  one ``addmm`` plus a few in-place elementwise ops written into preallocated
  buffers;
* backward: every gate derivative that does not depend on the incoming
  gradient is computed for all steps at once, so a step is three small ops;
  the weight and input gradients are single matmuls over all steps after the
  loop.

The parameters are the module's own (``weight_ih_l0`` ...), so checkpoints do
not change. Anything else (CUDA, other dtypes, projections, bidirectional,
tracing) runs the module itself.
"""
from __future__ import annotations

from typing import Any

import torch
from torch import Tensor, nn


def _can_use(rnn: nn.RNNBase, x: Tensor) -> bool:
    return (
        isinstance(rnn, nn.GRU)
        and x.device.type == "cpu"
        and x.dtype == torch.float32
        and rnn.batch_first
        and rnn.bias
        and not rnn.bidirectional
        and not getattr(rnn, "proj_size", 0)
        and not torch.jit.is_tracing()
        and not torch.jit.is_scripting()
        and not torch.compiler.is_compiling()
    )


def run_rnn(rnn: nn.RNNBase, x: Tensor, state: Any = None) -> tuple[Tensor, Any]:
    """``rnn(x, state)``, for a batch-first ``nn.GRU`` on the CPU without its per-step autograd graph.

    Any other module or input runs ``rnn(x, state)`` itself.

    Args:
        rnn: the module (its parameters, ``num_layers`` and ``dropout`` are used).
        x: input (B, T, I).
        state: ``h`` (num_layers, B, H); None for zeros.

    Returns:
        ``(output (B, T, H), state)`` as the module returns them.
    """
    if not _can_use(rnn, x) or x.shape[1] == 0:
        return rnn(x, state)
    batch, hidden, layers = x.shape[0], rnn.hidden_size, rnn.num_layers
    h0 = x.new_zeros(layers, batch, hidden) if state is None else state
    inp = x.transpose(0, 1).contiguous()  # time-major (T, B, I), as nn.GRU works internally
    h_n = []
    for layer in range(layers):
        weights = [getattr(rnn, f"{name}_l{layer}") for name in ("weight_ih", "weight_hh", "bias_ih", "bias_hh")]
        if torch.is_grad_enabled() and (inp.requires_grad or h0.requires_grad or any(w.requires_grad for w in weights)):
            out = _GRULayer.apply(inp, h0[layer], *weights)
        else:
            out = _gru_forward(inp, h0[layer], *weights, keep=False)[0]
        h_n.append(out[-1])
        inp = out
        if rnn.dropout and rnn.training and layer < layers - 1:
            inp = torch.dropout(inp, rnn.dropout, True)  # as nn.GRU: same layout, same random draws
    return inp.transpose(0, 1), torch.stack(h_n)


# ----- GRU ---------------------------------------------------------------------------
# Per step, with gi = x W_ih^T + b_ih and gh = h W_hh^T + b_hh (PyTorch's GRU):
#   r, z = sigmoid(gi_rz + gh_rz);  n = tanh(gi_n + r * gh_n);  h' = n + z * (h - n)
# The buffer ``g`` of a step starts as [gi_r + b_hr, gi_z + b_hz, b_hn]; one addmm_ turns it
# into [pre_r, pre_z, gh_n], and one sigmoid_ into [r, z, gh_n], which backward reads.
_CHUNK_ELEMENTS = 1 << 22  # without grad, gate buffers of at most this many floats (16 MiB)


def _gru_forward(x: Tensor, h0: Tensor, w_ih: Tensor, w_hh: Tensor, b_ih: Tensor, b_hh: Tensor,
                 keep: bool) -> tuple[Tensor, ...]:
    """GRU layer over time-major ``x`` (T, B, I): (out (T, B, H),) or, if ``keep``, with the buffers."""
    steps, batch, _ = x.shape
    hidden = h0.shape[1]
    w_hh_t = w_hh.t()
    bias_g = torch.cat([b_ih[: 2 * hidden] + b_hh[: 2 * hidden], b_hh[2 * hidden:]])
    w_g = torch.cat([w_ih[: 2 * hidden], w_ih.new_zeros(hidden, w_ih.shape[1])])
    hs = x.new_empty(steps + 1, batch, hidden)
    hs[0] = h0
    hs_l = hs.unbind(0)
    chunk = steps if keep else max(1, min(steps, _CHUNK_ELEMENTS // (batch * 3 * hidden)))
    n = x.new_empty(chunk, batch, hidden)
    for start in range(0, steps, chunk):
        stop = min(steps, start + chunk)
        x_flat = x[start:stop].reshape((stop - start) * batch, -1)
        g = torch.addmm(bias_g, x_flat, w_g.t()).view(stop - start, batch, 3 * hidden)
        gi_n = torch.addmm(b_ih[2 * hidden:], x_flat, w_ih[2 * hidden:].t()).view(stop - start, batch, hidden)
        g_l, rz_l, ghn_l = g.unbind(0), g[..., : 2 * hidden].unbind(0), g[..., 2 * hidden:].unbind(0)
        r_l, z_l, gin_l, n_l = g[..., :hidden].unbind(0), g[..., hidden: 2 * hidden].unbind(0), gi_n.unbind(0), n.unbind(0)
        for k in range(stop - start):
            t = start + k
            g_l[k].addmm_(hs_l[t], w_hh_t)
            rz_l[k].sigmoid_()
            torch.addcmul(gin_l[k], r_l[k], ghn_l[k], out=n_l[k]).tanh_()
            torch.lerp(n_l[k], hs_l[t], z_l[k], out=hs_l[t + 1])
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
        r, z, gh_n, h_prev = g[..., :hidden], g[..., hidden: 2 * hidden], g[..., 2 * hidden:], hs[:-1]
        # d h' / d pre_n = (1 - z)(1 - n^2); then everything but d h' itself, for all steps at once
        a = torch.mul(n, n).neg_().add_(1).mul_(1 - z)
        m = x.new_empty(steps, batch, 3, hidden)
        torch.mul(a, gh_n, out=m[:, :, 0]).mul_(r).mul_(1 - r)  # d pre_r = d h' * m_r
        torch.sub(h_prev, n, out=m[:, :, 1]).mul_(z).mul_(1 - z)  # d pre_z
        torch.mul(a, r, out=m[:, :, 2])  # d gh_n
        d_gh = x.new_empty(steps, batch, 3, hidden)  # d (h W_hh^T + b_hh) per step
        d_h = d_out.contiguous().clone()  # becomes d h' per step: incoming plus recurrent
        d_gh_l, d_h_l, m_l, z_l = d_gh.unbind(0), d_h.unbind(0), m.unbind(0), z.unbind(0)
        d_h0 = x.new_zeros(batch, hidden)
        for t in range(steps - 1, -1, -1):
            torch.mul(d_h_l[t].unsqueeze(1), m_l[t], out=d_gh_l[t])
            prev = d_h_l[t - 1] if t else d_h0
            prev.addcmul_(d_h_l[t], z_l[t]).addmm_(d_gh_l[t].view(batch, 3 * hidden), w_hh)
        d_gh = d_gh.view(steps * batch, 3 * hidden)
        d_gi = d_gh.clone()
        torch.mul(d_h, a, out=d_gi.view(steps, batch, 3 * hidden)[..., 2 * hidden:])
        x_flat = x.reshape(steps * batch, -1)
        return (
            (d_gi @ w_ih).view_as(x) if ctx.needs_input_grad[0] else None,
            d_h0,
            d_gi.t() @ x_flat,
            d_gh.t() @ h_prev.reshape(steps * batch, hidden),
            d_gi.sum(0),
            d_gh.sum(0),
        )
