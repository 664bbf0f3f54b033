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
def _loss(model: nn.Module, loss_fn: Any, xb: Tensor) -> Tensor:
    return loss_fn(x=xb, **model.training_outputs(xb))["loss"]


def bare_loop(agent: Any, model: nn.Module, optimizer: torch.optim.Optimizer, scheduler: Any,
              epochs: int) -> float:
    """Seconds of the hand-written reference: shuffle, step, and the same validation loss per epoch."""
    loss_of = _loss
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
    from agents.parts import build_scheduler
    from utils.runtime.batching import batch_indices
    from utils.runtime.reproducibility import epoch_generator, flush_denormals

    rows = []
    # Alternating repeats (bursts of load from other processes hit both sides alike) of runs long
    # enough that the last checkpoint (always written, and awaited) weighs about as in a real run
    # (300 epochs at most in the converter config, 100 in the ECG5000 one).
    epochs = 1 if ctx.quick else 30
    for which in ("vae", "lstm"):
        agent = build_agent(which, ctx.exp_dir, ctx.quick, data_dir=ctx.data_dir)
        trainer = agent.config.trainer
        trainer.epochs = epochs
        model = copy.deepcopy(agent.model)
        optimizer = type(agent.optimizer)(model.parameters(), **agent.optimizer.defaults)
        scheduler = build_scheduler(optimizer, trainer.scheduler, trainer.epochs)
        tty = FakeTTY()
        default_interval = trainer.checkpoint_interval_s

        def ours(interval: float | None = default_interval, flush_denormal: bool = True) -> Callable[[], float]:
            def run() -> float:
                agent.state, agent.checkpointer.best_snapshot = copy.deepcopy(agent.fresh_state), None
                trainer.checkpoint_interval_s = interval if interval is not None else default_interval
                trainer.flush_denormal = flush_denormal
                if interval is None:  # attribution only: the same loop without checkpoint writes
                    agent.checkpointer.save = lambda agent, best=False: None
                try:
                    with contextlib.redirect_stderr(tty), contextlib.redirect_stdout(tty):  # bar drawn, lines logged
                        start = time.perf_counter()
                        agent.train()
                        return time.perf_counter() - start
                finally:
                    agent.checkpointer.__dict__.pop("save", None)
            return run

        def ref() -> float:
            with flush_denormals():  # the same float mode as BaseAgent's default: this row is about the loop
                return bare_loop(agent, model, optimizer, scheduler, epochs)

        times = interleave_many({"ours": ours(), "ref": ref,
                                 "nosave": ours(None), "every_epoch": ours(0.0),
                                 "denormal": ours(flush_denormal=False)}, ctx.repeats if ctx.quick else 5)
        t_ours, t_ref = times["ours"], times["ref"]
        tty.close()
        agent.writer.close()
        n = len(agent.train_x) * epochs
        label = f"{agent.config.agent} ({'converter' if which == 'vae' else 'ECG5000'})"
        sizes = f"{len(agent.train_x)} windows x {epochs} epochs, batch {trainer.batch_size}"
        per_epoch = statistics.median(times["every_epoch"]) - statistics.median(times["nosave"])
        rows.append(throughput_row(
            "1", f"framework overhead, {label}", "bare loop: same model, data, batch size, optimizer, "
            "epochs and per-epoch validation loss; no bar, logging, TensorBoard or checkpoints; denormals flushed too",
            n, "samples/s", t_ours, t_ref, target=0.95,
            note=f"{sizes}; defaults: checkpoint_interval_s={default_interval} (last.pt and best.pt written "
                 f"in the background, the last after the final epoch, awaited), progress bar drawn, "
                 f"log_every_n_steps={trainer.log_every_n_steps}"))
        rows.append(throughput_row(
            "1", f"  change: checkpoints every {default_interval:g} s, not every epoch, {label}",
            "checkpoint_interval_s=0 (a checkpoint after every epoch, as before the change)", n, "samples/s",
            t_ours, times["every_epoch"], note=f"{sizes}; a checkpoint after every epoch cost "
            f"{per_epoch / epochs * 1e3:.1f} ms per epoch of {statistics.median(t_ref) / epochs * 1e3:.1f} ms (bare)"))
        rows.append(throughput_row(
            "1", f"  same, without checkpoint writes, {label}", "the same bare loop", n, "samples/s",
            times["nosave"], t_ref, note="attribution, not a mode of the framework"))
        rows.append(throughput_row(
            "1", f"  change: flush_denormal=true, {label}", "flush_denormal=false (before the change)", n,
            "samples/s", t_ours, times["denormal"], note=f"{sizes}; denormal floats (Adam moments of dead "
            "units decaying towards 0) read as zero instead of taking the CPU's slow path"))
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
