"""Item 1 of the speed benchmark: BaseAgent's training loop vs a bare hand-written loop."""
from __future__ import annotations

import contextlib
import copy
import statistics
import time
from typing import Any, Callable

import torch
from torch import Tensor, nn

from benchmarks.speed_common import FakeTTY, Row, build_agent, interleave_many, throughput_row


# ----- 1. framework overhead -----------------------------------------------------------
def _vae_loss(model: nn.Module, loss_fn: Any, xb: Tensor) -> Tensor:
    x_hat, mu, logvar = model(xb)
    return loss_fn(x_hat, xb, mu, logvar)["loss"]


def _rnn_loss(model: nn.Module, loss_fn: Any, xb: Tensor) -> Tensor:
    return loss_fn(model(xb), xb)["loss"]


def bare_loop(agent: Any, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
              epochs: int) -> float:
    """Seconds of the hand-written reference: shuffle, step, and the same validation loss per epoch."""
    loss_of = _vae_loss if agent.config.agent == "vae" else _rnn_loss
    trainer, x, val_x = agent.config.trainer, agent.train_x, agent.val_x
    start = time.perf_counter()
    for epoch in range(epochs):
        model.train()
        order = torch.randperm(len(x), generator=torch.Generator().manual_seed(epoch))
        for idx in order.split(trainer.batch_size):
            xb = x[idx]
            loss = loss_of(model, agent.loss_fn, xb)
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            if trainer.grad_clip_norm:
                nn.utils.clip_grad_norm_(model.parameters(), trainer.grad_clip_norm)
            optimizer.step()
        model.eval()
        total = 0.0
        with torch.no_grad():
            for idx in torch.arange(len(val_x)).split(agent.config.evaluation.batch_size):
                total += loss_of(model, agent.loss_fn, val_x[idx]).item() * len(idx)
        if scheduler is not None:
            scheduler.step(total / len(val_x)) if trainer.scheduler == "plateau" else scheduler.step()
    return time.perf_counter() - start


def framework_overhead(ctx: Any) -> list[Row]:
    """BaseAgent.train() vs the bare loop, per default config, plus the share of batching in an epoch."""
    from agents.base import build_scheduler
    from utils.batching import batch_indices
    from utils.seed import epoch_generator

    rows = []
    epochs = 1  # short, many alternating repeats: bursts of load from other processes hit both sides alike
    repeats = ctx.repeats if ctx.quick else 2 * ctx.repeats + 1
    for which in ("vae", "lstm"):
        agent = build_agent(which, ctx.exp_dir, ctx.quick)
        trainer = agent.config.trainer
        trainer.epochs = epochs
        model = copy.deepcopy(agent.model)
        optimizer = type(agent.optimizer)(model.parameters(), **agent.optimizer.defaults)
        scheduler = build_scheduler(optimizer, trainer.scheduler, trainer.epochs)
        tty = FakeTTY()

        def ours(save: bool = True) -> Callable[[], float]:
            def run() -> float:
                agent.state = copy.deepcopy(agent.fresh_state)
                if not save:
                    agent.save = lambda name: None  # attribution only: the same loop without checkpoint writes
                try:
                    with contextlib.redirect_stderr(tty), contextlib.redirect_stdout(tty):  # bar drawn, lines logged
                        start = time.perf_counter()
                        agent.train()
                        return time.perf_counter() - start
                finally:
                    agent.__dict__.pop("save", None)
            return run

        times = interleave_many({"ours": ours(), "ref": lambda: bare_loop(agent, model, optimizer, scheduler, epochs),
                                 "nosave": ours(save=False)}, repeats)
        t_ours, t_ref = times["ours"], times["ref"]
        tty.close()
        agent.writer.close()
        n = len(agent.train_x) * epochs
        label = f"{agent.config.agent} ({'converter' if which == 'vae' else 'ECG5000'})"
        ckpt = statistics.median(times["ours"]) - statistics.median(times["nosave"])
        rows.append(throughput_row(
            "1", f"framework overhead, {label}", "bare loop: same model, data, batch size, optimizer, "
            "epochs and per-epoch validation loss; no bar, logging, TensorBoard or checkpoints",
            n, "samples/s", t_ours, t_ref, target=0.95,
            note=f"{len(agent.train_x)} windows x {epochs} epochs, batch {trainer.batch_size}, "
                 f"checkpoints every epoch (last.pt, and best.pt as the epoch improves: the worst case, as "
                 f"in early training), progress bar drawn"))
        rows.append(throughput_row(
            "1", f"  same, without checkpoint writes, {label}", "the same bare loop", n, "samples/s",
            times["nosave"], t_ref, note=f"attribution, not a mode of the framework: writing last.pt/best.pt "
            f"(torch.save + fsync) took {ckpt / epochs * 1e3:.1f} ms per epoch of "
            f"{statistics.median(t_ours) / epochs * 1e3:.1f} ms"))
        x, bs, seed = agent.train_x, trainer.batch_size, agent.config.seed
        data = [_time(lambda: [x[idx] for idx in batch_indices(len(x), bs, epoch_generator(seed, 0))])
                for _ in range(max(3, ctx.repeats))]
        epoch_s = statistics.median(t_ours) / epochs
        share = statistics.median(data) / epoch_s
        rows.append(Row("1", f"data batching share of an epoch, {label}", statistics.median(data) * 1e3,
                        epoch_s * 1e3, "ms", share, ref_name="one training epoch of BaseAgent (ms)",
                        target="<= 0.05", met=share <= 0.05,
                        note="ours = shuffling and gathering every batch of an epoch from the in-memory tensor "
                             "(batch_indices + x[idx]); ratio = share of the epoch"))
    return rows


def _time(fn: Callable[[], Any]) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start
