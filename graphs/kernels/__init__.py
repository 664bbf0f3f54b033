"""The optional C++ time loops of the recurrent models, behind one seam.

Models import only this package:

* :class:`LSTM` and :class:`GRU`: ``nn.LSTM`` / ``nn.GRU`` with the same constructor and the
  same parameters (``weight_ih_l0`` ..., so state_dict keys and checkpoints do not change), whose
  forward runs :func:`graphs.kernels.rnn.run_rnn` (one autograd node per layer, the C++ loops)
  where it applies and the module's own forward otherwise (CUDA, other dtypes, tracing, ONNX
  export, an LSTM without gradients);
* :func:`free_running`: a single-layer decoder fed back its own output ``x̂ = A h + b`` as one
  call instead of one call per time step.

How the loops are built, and the fallback without a compiler (``ANOMALY_NATIVE_RNN=0`` turns them
off): :mod:`graphs.kernels.native`.
"""
from __future__ import annotations

from typing import Any, Union

import torch
from torch import Tensor, nn

from graphs.kernels.lstm import lstm_layer
from graphs.kernels.rnn import gru_free_running, run_rnn

__all__ = ["LSTM", "GRU", "free_running"]

State = Union[Tensor, tuple[Tensor, Tensor]]


class LSTM(nn.LSTM):
    """``nn.LSTM`` whose forward runs the fast CPU path of :mod:`graphs.kernels.rnn` where it applies
    (batch first, with biases, one direction, no projection; training on the CPU in float32 with the
    C++ loops built). Elsewhere, ``nn.LSTM.forward`` itself."""

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, Any]:  # noqa: A002 (nn.LSTM's names)
        """Run the layers over a sequence.

        Args:
            input: (B, T, I) with ``batch_first`` (any input ``nn.LSTM`` takes).
            hx: ``(h0, c0)``, each (num_layers, B, H); None for zeros.

        Returns:
            ``(output (B, T, H), (h_n, c_n))``, as ``nn.LSTM`` returns them.
        """
        return run_rnn(self, input, hx)


class GRU(nn.GRU):
    """``nn.GRU`` whose forward runs the fast CPU path of :mod:`graphs.kernels.rnn` where it applies
    (batch first, with biases, one direction; on the CPU in float32, with or without gradients; the
    Python loops without the C++ ones). Elsewhere, ``nn.GRU.forward`` itself."""

    def forward(self, input: Any, hx: Any = None) -> tuple[Any, Any]:  # noqa: A002 (nn.GRU's names)
        """Run the layers over a sequence.

        Args:
            input: (B, T, I) with ``batch_first`` (any input ``nn.GRU`` takes).
            hx: ``h0`` (num_layers, B, H); None for zeros.

        Returns:
            ``(output (B, T, H), h_n)``, as ``nn.GRU`` returns them.
        """
        return run_rnn(self, input, hx)


def free_running(decoder: nn.RNNBase, output_layer: nn.Linear, state: State, length: int) -> Tensor | None:
    """A decoder fed back its own output, as one call: ``x̂(0) = A h(0) + b`` and, for k >= 1,
    ``h(k) = f(x̂(k-1), h(k-1))``, ``x̂(k) = A h(k) + b`` (``A``, ``b``: ``output_layer``).

    Feeding back ``x̂ = A h + b`` makes the input term ``W_ih x̂ = W_ih A h + W_ih b`` linear in
    ``h``, so it is folded into the weights and gradients reach ``W_ih``, ``A`` and ``b`` through
    them:

    * LSTM: an LSTM without input, recurrent weights ``W_hh + W_ih A``, bias
      ``b_ih + b_hh + W_ih b``, run as one layer (:func:`graphs.kernels.lstm.lstm_layer`: the C++
      loops when training on the CPU, else oneDNN / cuDNN; also while tracing);
    * GRU: ``h [W_hh; W_ih A]^T`` in one matmul a step (a GRU multiplies only ``gh_n`` by ``r``,
      so ``W_ih A`` cannot join ``W_hh``), one C++ loop; training on the CPU in float32 only.

    Args:
        decoder: a single-layer, batch-first ``nn.LSTM`` or ``nn.GRU`` with biases, input size F.
        output_layer: ``nn.Linear(H, F)`` with a bias.
        state: the decoder's initial state: LSTM ``(h, c)``, GRU ``h``, each (1, B, H).
        length: how many outputs ``x̂(0), ..., x̂(length - 1)``.

    Returns:
        The outputs in the order they are produced, (B, length, F); None where no fused path
        applies (several layers, ``length < 2``, another module, a GRU outside CPU float32
        training): then the caller steps the decoder itself.
    """
    if length < 2 or not _foldable(decoder, output_layer):
        return None
    dec, out = decoder, output_layer
    h_top = (state[0] if isinstance(state, tuple) else state)[-1]  # (B, H)
    if isinstance(dec, nn.LSTM):
        w_hh = dec.weight_hh_l0 + dec.weight_ih_l0 @ out.weight
        bias = dec.bias_ih_l0 + dec.bias_hh_l0 + dec.weight_ih_l0 @ out.bias
        no_input = h_top.new_zeros(h_top.shape[0], length - 1, 1)
        hidden = lstm_layer(no_input, state, h_top.new_zeros(w_hh.shape[0], 1), w_hh, bias, torch.zeros_like(bias))
    else:
        w_cat = torch.cat([dec.weight_hh_l0, dec.weight_ih_l0 @ out.weight])
        b_cat = torch.cat([dec.bias_hh_l0, dec.weight_ih_l0 @ out.bias + dec.bias_ih_l0])
        time_major = gru_free_running(h_top, length - 1, w_cat, b_cat)
        if time_major is None:
            return None
        hidden = time_major.transpose(0, 1)
    return torch.cat([out(h_top).unsqueeze(1), out(hidden)], dim=1)  # (B, length, F)


def _foldable(decoder: nn.Module, output_layer: nn.Module) -> bool:
    """Whether ``decoder`` and ``output_layer`` have the shapes :func:`free_running` folds."""
    return (isinstance(decoder, (nn.LSTM, nn.GRU)) and isinstance(output_layer, nn.Linear)
            and decoder.num_layers == 1 and decoder.batch_first and decoder.bias and not decoder.bidirectional
            and not getattr(decoder, "proj_size", 0) and output_layer.bias is not None
            and output_layer.in_features == decoder.hidden_size and output_layer.out_features == decoder.input_size)
