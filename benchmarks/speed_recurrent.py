"""Items 2 and 4 of the speed benchmark: the recurrent autoencoder's training and scoring paths
against a per-step cell loop and against what the fast paths replaced, and its FLOP/s
against torch.matmul on the same threads.
"""
from __future__ import annotations

import contextlib
import time
from typing import Any, Callable

import torch
from torch import Tensor, nn

from benchmarks.speed_common import Row, build_agent, interleave, interleave_many, throughput_row


# ----- 2. recurrent AE -----------------------------------------------------------------
class CellLoopAE(nn.Module):
    """The original RecAE's layout: a fused encoder, then a ``GRUCell`` (or ``LSTMCell``)
    stepped in Python with the output ``Linear`` applied at every step; fed the true
    previous values (teacher forcing) and reconstructing in reverse order, as ours."""

    def __init__(self, n_features: int, hidden_size: int, cell: str) -> None:
        super().__init__()
        self.lstm = cell == "lstm"
        self.encoder = (nn.LSTM if self.lstm else nn.GRU)(n_features, hidden_size, batch_first=True)
        self.cell = (nn.LSTMCell if self.lstm else nn.GRUCell)(n_features, hidden_size)
        self.output_layer = nn.Linear(hidden_size, n_features)

    def forward(self, x: Tensor) -> Tensor:
        _, state = self.encoder(x)
        state = (state[0][0], state[1][0]) if self.lstm else state[0]
        preds = [self.output_layer(state[0] if self.lstm else state)]
        for t in range(x.shape[1] - 1, 0, -1):
            state = self.cell(x[:, t], state)
            preds.append(self.output_layer(state[0] if self.lstm else state))
        return torch.stack(preds[::-1], dim=1)


def _train_epoch(model: nn.Module, optimizer: torch.optim.Optimizer, batches: list[Tensor]) -> float:
    model.train()
    start = time.perf_counter()
    for xb in batches:
        loss = (model(xb) - xb).abs().mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        optimizer.step()
    return time.perf_counter() - start


def ecg_batches(ctx: Any) -> tuple[list[Tensor], Any]:
    """Training batches of the ECG5000 config (its batch size) and the config."""
    if ctx.ecg is None:
        agent = build_agent("lstm", ctx.exp_dir, ctx.quick, writer=False, data_dir=ctx.data_dir)
        x = agent.train_x[:64] if ctx.quick else agent.train_x
        ctx.ecg = (list(x.split(agent.config.trainer.batch_size)), agent.config)
    return ctx.ecg


@contextlib.contextmanager
def module_rnn() -> Any:
    """Run nn.GRU's / nn.LSTM's own CPU implementation inside graphs.kernels.GRU / LSTM (not graphs.kernels.rnn's)."""
    from graphs.kernels import rnn as fast_rnn

    can_use = fast_rnn._can_use
    fast_rnn._can_use = lambda rnn, x: False
    try:
        yield
    finally:
        fast_rnn._can_use = can_use


@contextlib.contextmanager
def python_loops() -> Any:
    """The time loops without the C++ build: graphs/kernels/python_loops.py (the fallback; the same bits)."""
    from graphs.kernels import native

    ops = native.rnn_loops()
    native._ops = None
    try:
        yield
    finally:
        native._ops = ops


def _with(context: Callable[[], Any], fn: Callable[[], float]) -> Callable[[], float]:
    def run() -> float:
        with context():
            return fn()
    return run


def stepwise_free_running(model: nn.Module, state: Any, length: int) -> Tensor:
    """Free running one decoder call per time step (before :func:`graphs.kernels.free_running`)."""
    pred = model.output_layer(model._top_hidden(state))
    preds = [pred]
    for _ in range(length - 1):
        pred, state = model.decode_step(pred, state)
        preds.append(pred)
    return torch.stack(preds[::-1], dim=1)


def _adam(model: nn.Module) -> torch.optim.Optimizer:
    return torch.optim.Adam(model.parameters(), lr=1e-3, foreach=True)  # as BaseAgent


def recurrent(ctx: Any) -> list[Row]:
    """Fused teacher-forced training vs a per-step cell loop; the fast paths vs what they replaced;
    free-running vs teacher-forced scoring."""
    from graphs.models.recurrent_autoencoder import RecurrentAutoencoder

    batches, config = ecg_batches(ctx)
    mc = config.model
    n_features, hidden, steps = batches[0].shape[-1], mc.hidden_size, batches[0].shape[1]
    n = sum(len(b) for b in batches)
    sizes = f"batch {len(batches[0])}, T={steps}, F={n_features}, hidden {hidden}, MAE, Adam"
    rows = []
    for cell in ("gru", "lstm"):
        torch.manual_seed(0)
        ours = RecurrentAutoencoder(time_steps=steps, n_features=n_features, hidden_size=hidden, cell=cell,
                                    teacher_forcing=True)
        ref = CellLoopAE(n_features, hidden, cell)
        opt_ours, opt_ref = _adam(ours), _adam(ref)
        t_ours, t_ref = interleave(lambda: _train_epoch(ours, opt_ours, batches),
                                   lambda: _train_epoch(ref, opt_ref, batches), ctx.repeats)
        rows.append(throughput_row(
            "2", f"recurrent AE training, {cell.upper()} teacher-forced fused", f"nn.{cell.upper()} encoder + "
            f"{cell.upper()}Cell stepped in Python with a Linear per step (the original RecAE's decoder)",
            n, "samples/s", t_ours, t_ref, target=5.0, note=sizes))
        times = interleave_many({"fast": lambda: _train_epoch(ours, opt_ours, batches),
                                 "module": _with(module_rnn, lambda: _train_epoch(ours, opt_ours, batches)),
                                 "python": _with(python_loops, lambda: _train_epoch(ours, opt_ours, batches))},
                                ctx.repeats)
        if cell == "gru":
            rows.append(throughput_row(
                "2", "  change: GRU via graphs/kernels/rnn.py", "the same model on nn.GRU's own CPU "
                "implementation (before the change)", n, "samples/s", times["fast"], times["module"], note=sizes))
        else:
            rows.append(throughput_row(
                "2", "  change: C++ time loops, LSTM", "nn.LSTM's own CPU implementation, oneDNN (before the change)",
                n, "samples/s", times["fast"], times["module"], note=f"graphs/kernels/csrc/rnn_loops.cpp; {sizes}"))
        rows.append(throughput_row(
            "2", f"  C++ time loops, {cell.upper()}, against the fallback", "the same loops as tensor ops from Python "
            "(graphs/kernels/python_loops.py: no compiler; the same weights, bit for bit)", n, "samples/s",
            times["fast"], times["python"], note=f"graphs/kernels/csrc/rnn_loops.cpp; {sizes}"))
    # The default config's own training mode (free running), and the changes that made it one call:
    # LSTM with x̂ = A h + b folded into the recurrent weights, GRU with the C++ free-running loop.
    how = {"lstm": "x̂ = A h + b folded into the recurrent weights",
           "gru": "h [W_hh; W_ih A]^T in one matmul a step, C++ loop"}
    for cell in sorted({mc.cell, "lstm", "gru"}, key=lambda c: c != mc.cell):
        torch.manual_seed(0)
        free = RecurrentAutoencoder(time_steps=steps, n_features=n_features, hidden_size=hidden,
                                    num_layers=mc.num_layers, cell=cell, latent_dim=mc.latent_dim,
                                    dropout=mc.dropout, teacher_forcing=False)
        free_opt = _adam(free)

        def free_epoch(stepwise: bool, free: nn.Module = free, free_opt: Any = free_opt) -> Callable[[], float]:
            def run() -> float:
                if stepwise:
                    free.decode_free_running = lambda state, length: stepwise_free_running(free, state, length)
                try:
                    return _train_epoch(free, free_opt, batches)
                finally:
                    free.__dict__.pop("decode_free_running", None)
            return run

        t_fused, t_step = interleave(free_epoch(False), free_epoch(True), ctx.repeats)
        mode = "the ECG5000 config's mode" if cell == mc.cell else "the config's mode with this cell"
        rows.append(throughput_row(
            "2", f"  change: free-running {cell.upper()} training as one call", "one decoder call per time step "
            "(before the change)", n, "samples/s", t_fused, t_step,
            note=f"{mode} (teacher_forcing=False, latent_dim={mc.latent_dim}); single layer: {how[cell]}; {sizes}"))
        if cell == mc.cell:
            model = free
    model.eval()
    x = torch.cat(batches)
    size = 256 if ctx.quick else 4096
    x = x.repeat(-(-size // len(x)), 1, 1)[:size]
    bs = config.evaluation.batch_size

    def score(teacher_forcing: bool, before: bool = False) -> Callable[[], float]:
        def run() -> float:
            if before:  # one decoder call per step, whole batches at once
                model.decode_free_running = lambda state, length: stepwise_free_running(model, state, length)
                model.cpu_inference_chunk = None
            try:
                with torch.inference_mode():
                    start = time.perf_counter()
                    for part in x.split(bs):
                        model(part, teacher_forcing=teacher_forcing)
                    return time.perf_counter() - start
            finally:
                model.__dict__.pop("decode_free_running", None)
                model.__dict__.pop("cpu_inference_chunk", None)
        return run

    times = interleave_many({"free": score(False), "tf": score(True), "step": score(False, True)}, ctx.repeats)
    note = f"{len(x)} windows in batches of {bs}, inference_mode"
    rows.append(throughput_row(
        "2", f"recurrent AE scoring, {mc.cell.upper()} free-running", "teacher-forced reconstruction "
        "(one fused decoder call)", len(x), "windows/s", times["free"], times["tf"],
        note=f"{note}; free running (as the paper scores) feeds back its own predictions"))
    rows.append(throughput_row(
        "2", f"  change: free-running {mc.cell.upper()} scoring, one call per chunk", "one decoder call per time "
        "step on the whole batch (before the change)", len(x), "windows/s", times["free"], times["step"],
        note=f"{note}; LSTM batches split into chunks of {model.cpu_inference_chunk} windows without gradients"))
    return rows


# ----- 4. FLOP/s -----------------------------------------------------------------------
def rnn_train_flops(model: nn.Module, batch: int, steps: int) -> float:
    """Matmul FLOPs of one teacher-forced training step: forward counted, backward = 2x forward."""
    gates = 4 if model.cell == "lstm" else 3
    hidden, feats = model.hidden_size, model.n_features
    per_step = sum(2 * batch * ((feats if layer == 0 else hidden) + hidden) * gates * hidden
                   for layer in range(model.num_layers))
    forward = per_step * steps + per_step * (steps - 1)  # encoder T steps, decoder T - 1
    forward += 2 * batch * steps * hidden * feats  # output layer
    if model.latent_dim is not None:
        width = model.num_layers * hidden * (2 if model.cell == "lstm" else 1)
        forward += 2 * 2 * batch * width * model.latent_dim
    return 3.0 * forward


def flops(ctx: Any) -> list[Row]:
    """Achieved FLOP/s of the default recurrent AE training step vs torch.matmul on the same threads."""
    from graphs.models.recurrent_autoencoder import RecurrentAutoencoder

    batches, config = ecg_batches(ctx)
    batches = [b for b in batches if len(b) == len(batches[0])]
    batch, steps, feats = batches[0].shape
    mc = config.model
    model = RecurrentAutoencoder(time_steps=steps, n_features=feats, hidden_size=mc.hidden_size,
                                 num_layers=mc.num_layers, cell=mc.cell, latent_dim=mc.latent_dim,
                                 dropout=mc.dropout, teacher_forcing=mc.teacher_forcing)
    optimizer = _adam(model)
    work = rnn_train_flops(model, batch, steps) * len(batches)
    gates = 4 if mc.cell == "lstm" else 3
    rows = []
    for label, m in (("per-step gate matmul", batch), ("all steps in one matmul", batch * steps)):
        a, b = torch.randn(m, feats + mc.hidden_size), torch.randn(feats + mc.hidden_size, gates * mc.hidden_size)
        mm_flops = 2.0 * a.shape[0] * a.shape[1] * b.shape[1]
        reps = max(1, int(work / mm_flops))

        def matmul(a: Tensor = a, b: Tensor = b, reps: int = reps) -> float:
            start = time.perf_counter()
            for _ in range(reps):
                torch.matmul(a, b)
            return time.perf_counter() - start

        t_ours, t_ref = interleave(lambda: _train_epoch(model, optimizer, batches), matmul, ctx.repeats)
        row = throughput_row(
            "4", f"recurrent AE training FLOP/s vs {label}", f"torch.matmul ({a.shape[0]}x{a.shape[1]}) @ "
            f"({b.shape[0]}x{b.shape[1]}) on the same {torch.get_num_threads()} threads", (work, reps * mm_flops),
            "GFLOP/s", t_ours, t_ref, scale=1e-9, note=f"{mc.cell.upper()} hidden {mc.hidden_size}, batch {batch}, "
            f"T={steps}, teacher_forcing={mc.teacher_forcing} (the config's mode); {rnn_train_flops(model, batch, steps) / 1e9:.3g} GFLOP per step (gate and linear "
            "matmuls, backward = 2x forward)")
        rows.append(row)
    return rows
