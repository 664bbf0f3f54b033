"""The C++ time loops of ``csrc/rnn_loops.cpp`` in tensor ops, bit for bit (same arguments, buffers written in place):
float32 goes through the C++ IEEE operations in their order (its ``exp`` included), so keep the two in step.
Other dtypes use torch's ``sigmoid``/``tanh``."""
from __future__ import annotations

import torch
from torch import Tensor

# Cephes' expf, as in rnn_loops.cpp: 2^n times a degree-6 polynomial of r = x - n ln2.
_LOG2E = 1.44269504088896341
_ROUND = 12582912.0  # 1.5 * 2^23: adding and subtracting it rounds a float32 to an integer
_LN2_HI, _LN2_LO = 0.693359375, 2.12194440e-4
_POLY = (1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1)


def exp_approx(x: Tensor) -> Tensor:
    """``exp_approx`` of rnn_loops.cpp (float32, inputs clamped to [-87, 88], about 1 ulp); a new tensor."""
    x = x.clamp(-87.0, 88.0)
    n = x.mul(_LOG2E).add_(_ROUND).sub_(_ROUND)
    r = x.sub(n.mul(_LN2_HI)).add_(n.mul(_LN2_LO))
    p = r.mul(_POLY[0]).add_(_POLY[1])
    for coefficient in _POLY[2:]:
        p.mul_(r).add_(coefficient)
    scale = n.to(torch.int32).add_(127).bitwise_left_shift_(23).view(torch.float32)  # 2^n from its exponent bits
    return p.mul_(r).mul_(r).add_(r).add_(1.0).mul_(scale)


def sigmoid(v: Tensor) -> Tensor:
    """``1 / (1 + exp(-v))`` as the C++ loops compute it (torch's own outside float32); a new tensor."""
    if v.dtype != torch.float32:
        return torch.sigmoid(v)
    return torch.div(v.new_ones(1), exp_approx(v.neg()).add_(1.0))


def tanh(v: Tensor) -> Tensor:
    """``2 / (1 + exp(-2 v)) - 1`` as the C++ loops compute it (torch's own outside float32); a new tensor."""
    if v.dtype != torch.float32:
        return torch.tanh(v)
    return torch.div(v.new_full((1,), 2.0), exp_approx(v.mul(-2.0)).add_(1.0)).sub_(1.0)


def _gru_gates(rz: Tensor, gh_n: Tensor, in_n: Tensor, h: Tensor, cand: Tensor, h_next: Tensor) -> None:
    """C++ ``gru_gates`` for all rows: r, z over ``rz`` (B, 2H), ``cand = tanh(in_n + r gh_n)``, ``h_next``."""
    rz.copy_(sigmoid(rz))
    r, z = rz.chunk(2, dim=1)
    cand.copy_(tanh(in_n + r * gh_n))
    torch.add(cand, z * (h - cand), out=h_next)


def _gru_gates_backward(dh: Tensor, r: Tensor, z: Tensor, gh_n: Tensor, cand: Tensor, h: Tensor, d_r: Tensor,
                        d_z: Tensor, d_ghn: Tensor, d_in_n: Tensor) -> Tensor:
    """One GRU step's gate gradients (C++ ``gru_gates_backward``); returns the direct part ``dh z``."""
    d_pre_n = (dh * (1 - z)).mul_(1 - cand * cand)
    d_in_n.copy_(d_pre_n)
    torch.mul(d_pre_n, r, out=d_ghn)
    torch.mul(d_pre_n, gh_n, out=d_r).mul_(r).mul_(1 - r)
    torch.mul(dh, h - cand, out=d_z).mul_(z).mul_(1 - z)
    return dh * z


def _add_to_previous(d_h: Tensor, d_h0: Tensor, t: int, direct: Tensor | None, d_pre: Tensor, w: Tensor) -> None:
    """C++ ``add_to_previous``: d_h[t - 1] (d_h0 at t = 0) += direct, then += d_pre[t] W."""
    prev = d_h[t - 1] if t else d_h0
    if direct is not None:
        prev.add_(direct)
    prev.addmm_(d_pre[t], w)


def gru_forward_loop(g: Tensor, gi_n: Tensor, hs: Tensor, w_hh_t: Tensor, n: Tensor) -> None:
    """GRU forward: g (T, B, 3H), gi_n (T, B, H), hs (T + 1, B, H), w_hh_t (H, 3H), n (T, B, H)."""
    hidden = hs.shape[2]
    for t in range(g.shape[0]):
        step = g[t].addmm_(hs[t], w_hh_t)
        _gru_gates(step[:, : 2 * hidden], step[:, 2 * hidden:], gi_n[t], hs[t], n[t], hs[t + 1])


def gru_backward_loop(d_h: Tensor, g: Tensor, n: Tensor, hs: Tensor, w_hh: Tensor, d_gh: Tensor, d_in_n: Tensor,
                      d_h0: Tensor) -> None:
    """GRU backward over T steps, last to first."""
    hidden = n.shape[2]
    for t in range(d_h.shape[0] - 1, -1, -1):
        r, z, gh_n = g[t].split(hidden, dim=1)
        d_r, d_z, d_ghn = d_gh[t].split(hidden, dim=1)
        direct = _gru_gates_backward(d_h[t], r, z, gh_n, n[t], hs[t], d_r, d_z, d_ghn, d_in_n[t])
        _add_to_previous(d_h, d_h0, t, direct, d_gh, w_hh)


def gru_free_forward_loop(g: Tensor, hs: Tensor, w_cat_t: Tensor, n: Tensor) -> None:
    """GRU fed its own output over T steps; g (T, B, 6H) arrives holding b_cat (see the C++ op)."""
    hidden = hs.shape[2]
    for t in range(g.shape[0]):
        row = g[t].addmm_(hs[t], w_cat_t)
        row[:, : 2 * hidden].add_(row[:, 3 * hidden: 5 * hidden])  # pre_r, pre_z
        _gru_gates(row[:, : 2 * hidden], row[:, 2 * hidden: 3 * hidden], row[:, 5 * hidden:], hs[t], n[t], hs[t + 1])


def gru_free_backward_loop(d_h: Tensor, g: Tensor, n: Tensor, hs: Tensor, w_cat: Tensor, d_g: Tensor,
                           d_h0: Tensor) -> None:
    """Backward of :func:`gru_free_forward_loop`; the buffers of the C++ op."""
    hidden = n.shape[2]
    for t in range(d_h.shape[0] - 1, -1, -1):
        r, z, gh_n = g[t].split(hidden, dim=1)[:3]
        d_r, d_z, d_ghn, _, _, d_in_n = d_g[t].split(hidden, dim=1)
        direct = _gru_gates_backward(d_h[t], r, z, gh_n, n[t], hs[t], d_r, d_z, d_ghn, d_in_n)
        d_g[t, :, 3 * hidden: 5 * hidden].copy_(d_g[t, :, : 2 * hidden])  # r and z reach both halves
        _add_to_previous(d_h, d_h0, t, direct, d_g, w_cat)


def lstm_forward_loop(gates: Tensor, hs: Tensor, cs: Tensor, tanh_c: Tensor, w_hh_t: Tensor) -> None:
    """LSTM forward: gates (T, B, 4H) (i, f, g, o), hs and cs (T + 1, B, H), tanh_c (T, B, H), w_hh_t (H, 4H)."""
    hidden = hs.shape[2]
    exact = gates.dtype == torch.float32
    if exact:  # all four gates in one pass: i, f, o = 1 / (1 + exp(-v)), g = 2 / (1 + exp(-2 v)) - 1
        factor, numerator = gates.new_full((4 * hidden,), -1.0), gates.new_ones(4 * hidden)
        factor[2 * hidden: 3 * hidden], numerator[2 * hidden: 3 * hidden] = -2.0, 2.0
    for t in range(gates.shape[0]):
        step = gates[t].addmm_(hs[t], w_hh_t)
        i, f, g, o = step.split(hidden, dim=1)
        if exact:
            torch.div(numerator, exp_approx(step * factor).add_(1.0), out=step)
            g.sub_(1.0)
        else:
            g.tanh_()
            for gate in (i, f, o):
                gate.sigmoid_()
        torch.add(f * cs[t], i * g, out=cs[t + 1])
        tanh_c[t].copy_(tanh(cs[t + 1]))
        torch.mul(o, tanh_c[t], out=hs[t + 1])


def lstm_backward_loop(d_h: Tensor, d_c: Tensor, gates: Tensor, cs: Tensor, tanh_c: Tensor, w_hh: Tensor,
                       d_gates: Tensor, d_h0: Tensor) -> None:
    """LSTM backward over T steps, last to first; d_c (B, H) leaves as d c0."""
    hidden = d_h.shape[2]
    for t in range(d_h.shape[0] - 1, -1, -1):
        dh, c, tc = d_h[t], cs[t], tanh_c[t]
        i, f, g, o = gates[t].split(hidden, dim=1)
        d_i, d_f, d_g, d_o = d_gates[t].split(hidden, dim=1)
        d_cell = d_c + (dh * o).mul_(1 - tc * tc)
        torch.mul(dh, tc, out=d_o).mul_(o).mul_(1 - o)
        torch.mul(d_cell, g, out=d_i).mul_(i).mul_(1 - i)
        torch.mul(d_cell, i, out=d_g).mul_(1 - g * g)
        torch.mul(d_cell, c, out=d_f).mul_(f).mul_(1 - f)
        torch.mul(d_cell, f, out=d_c)
        _add_to_previous(d_h, d_h0, t, None, d_gates, w_hh)
