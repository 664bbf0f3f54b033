"""BaseAgent: the one training loop every agent shares.

A subclass builds its model and says how to compute losses and anomaly scores;
everything else (seeding, device, batching, progress bar, validation, early
stopping, checkpoints, TensorBoard, evaluation and reports) lives here.
"""
from __future__ import annotations

import logging
import math
import time
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Iterator

import numpy as np
import torch
from torch import Tensor, nn
from tqdm import tqdm

from agents.checkpointing import Checkpointing
from agents.parts import NullWriter, build_component, build_scheduler, select_device
from datasets.base import DataSplits
from utils.runtime.batching import batch_indices
from utils.runs.checkpoints import CheckpointWriter, clone_state, load_checkpoint
from utils.runtime.denormals import flush_denormals
from utils.runtime.distributed import all_reduce_mean, cuda_device_for, gather_digests, init_from_env
from utils.core.errors import ConfigError, TrainingDivergedError
from utils.runtime.signals import Interrupted, StopSignals, signal_name
from utils.core.registry import DATASETS, LOSSES, MODELS
from utils.runs.run_folder import wait_for_a_later_event_file_second
from utils.scoring.scaler import Scaler
from utils.runtime.seed import epoch_generator, seed_everything

__all__ = ["BaseAgent", "NullWriter", "build_component", "build_scheduler", "select_device"]

logger = logging.getLogger("anomaly")


class BaseAgent(Checkpointing):
    """Trains ``self.model`` on normal windows and evaluates its anomaly scores.

    Subclasses implement :meth:`model_inputs`, :meth:`compute_loss`,
    :meth:`fit_scoring` and :meth:`score`, and may add figures in
    :meth:`extra_figures`.

    Args:
        config: validated config (EasyDict).
        run_dir: the run folder (already prepared).
        resume: continue from ``checkpoints/last.pt``.
    """

    supported_model: tuple[str, ...] | None = None
    supported_loss: tuple[str, ...] | None = None
    supported_data: tuple[str, ...] | None = None
    score_names: tuple[str, ...] = ()
    stop_signals: StopSignals | None = None

    def __init__(self, config: Any, run_dir: Path, resume: bool = False) -> None:
        self.config = config
        self.run_dir = Path(run_dir)
        self.ckpt_dir = self.run_dir / "checkpoints"
        self.checkpoints = CheckpointWriter()
        self.bar = tqdm(disable=True)  # train() shows a real one
        self.best_state: dict[str, Any] | None = None  # the best epoch's weights and counters while best.pt lags behind
        self.last_save = time.monotonic()
        trainer = config.trainer
        seed_everything(config.seed, trainer.deterministic)
        self.device = select_device(config.device)
        self.dist = init_from_env(self.device)  # torchrun: one process per rank, else a single process
        self.device = cuda_device_for(self.dist, self.device)
        if trainer.batch_size % self.dist.world_size:
            raise ConfigError(f"trainer.batch_size: {trainer.batch_size} is the global batch and must be divisible "
                              f"by the {self.dist.world_size} processes")
        self.data = self.load_data()
        self.scaler = Scaler(config.evaluation.scaler).fit(self.data.train.x)
        self.train_x, self.val_x = (self.to_tensor(s.x) for s in (self.data.train, self.data.val))
        self.model = self.build_model(self.model_inputs()).to(self.device)
        self.loss_fn = build_component(LOSSES, config.loss)
        # foreach: each update op runs once over all parameters (bit-identical to the default per-parameter loop)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=trainer.learning_rate,
                                          weight_decay=trainer.weight_decay, foreach=True)
        self.scheduler = build_scheduler(self.optimizer, trainer.scheduler, trainer.epochs)
        self.state: dict[str, Any] = {"epoch": 0, "global_step": 0, "best_val": math.inf, "best_epoch": 0,
                                      "bad_epochs": 0, "stopped_early": False, "history": {},
                                      "batch_in_epoch": 0, "epoch_totals": {}}
        self.scoring: dict[str, Any] = {}
        self.writer = None
        if resume:
            self.restore(load_checkpoint(self.ckpt_dir / "last.pt"))
        self.ddp = (torch.nn.parallel.DistributedDataParallel(self.model) if self.dist.enabled else None)

    # ----- parts a subclass provides -------------------------------------------------
    def model_inputs(self) -> dict[str, Any]:
        """Constructor arguments of the model that come from the data, not the config."""
        raise NotImplementedError

    def compute_loss(self, x: Tensor) -> dict[str, Tensor]:
        """Loss dict (``"loss"`` plus logged components) for a batch (B, T, F)."""
        raise NotImplementedError

    def fit_scoring(self, train_x: Tensor, val_x: Tensor) -> dict[str, Any]:
        """Fit score statistics on normal data; returns tensors to store in best.pt."""
        raise NotImplementedError

    def score(self, x: Tensor) -> dict[str, np.ndarray]:
        """Per-window anomaly scores {name: (N,)}, higher = more anomalous."""
        raise NotImplementedError

    def threshold_scores(self, val_x: Tensor) -> dict[str, np.ndarray]:
        """Scores of the validation normals that the percentile thresholds are taken from.

        Defaults to :meth:`score`; an agent whose score statistics are fitted on
        these same windows returns out-of-sample (cross-fitted) scores instead.
        """
        return self.score(val_x)

    def reconstruct(self, x: Tensor) -> Tensor:
        """Reconstruction (N, T, F) of scaled windows (N, T, F) as used for scoring."""
        raise NotImplementedError

    def extra_figures(self, test_x: Tensor, scores: dict[str, np.ndarray]) -> dict[str, Any]:
        """Agent-specific figures {file stem: matplotlib Figure}."""
        return {}

    # ----- building --------------------------------------------------------------------
    def load_data(self) -> DataSplits:
        """Run the configured dataset loader with the run's seed."""
        return build_component(DATASETS, self.config.data, seed=self.config.seed)

    def build_model(self, model_inputs: dict[str, Any]) -> nn.Module:
        """Instantiate the configured model with the data-derived arguments."""
        return build_component(MODELS, self.config.model, **model_inputs)

    def to_tensor(self, x: np.ndarray) -> Tensor:
        """Scale windows (N, T, F) and move them to the device."""
        return torch.from_numpy(self.scaler.transform(x)).to(self.device)

    # ----- the loop --------------------------------------------------------------------
    def run(self) -> dict[str, Any]:
        """Train (from scratch or where the checkpoint left off), then evaluate."""
        from agents.evaluation import evaluate_run

        # On resume, TensorBoard hides events the interrupted run logged after this checkpoint.
        resumed_at = self.state["global_step"]
        if resumed_at:
            wait_for_a_later_event_file_second(self.run_dir / "summaries")
        self.writer = self.open_writer(purge_step=resumed_at + 1 if resumed_at else None)
        try:
            self.train()
            self.check_ranks_in_sync()
            return evaluate_run(self) if self.dist.is_main else {}
        finally:
            self.writer.close()

    def open_writer(self, purge_step: int | None = None) -> Any:
        """The run's TensorBoard writer (a no-op one on ranks other than 0).

        ``max_queue=1000``: with the default 10, every ``add_scalar`` waited for the writer thread
        (which checksums each event in pure Python); ``flush_secs=5``: TensorBoard sees new points soon.
        """
        if not self.dist.is_main:
            return NullWriter()
        from torch.utils.tensorboard import SummaryWriter

        return SummaryWriter(str(self.run_dir / "summaries"), purge_step=purge_step, max_queue=1000, flush_secs=5)

    def train(self) -> None:
        """Epoch loop with validation, checkpoints and early stopping."""
        trainer = self.config.trainer
        start = self.state["epoch"]
        if start or self.state["global_step"]:
            logger.info("Resuming at epoch %d, batch %d (step %d)", start + 1, self.state["batch_in_epoch"] + 1,
                        self.state["global_step"])
        # SIGINT/SIGTERM: finish the batch, save last.pt mid-epoch, raise Interrupted (utils/runtime/signals.py).
        self.last_save = time.monotonic()
        steps = len(self.epoch_batches(start))
        # One bar for the whole run (its ETA is the run's); epoch lines are logged above it.
        self.bar = tqdm(total=trainer.epochs * steps, initial=start * steps + self.state["batch_in_epoch"],
                        unit="step", leave=False, disable=None if trainer.progress_bar else True, dynamic_ncols=True)
        with (StopSignals(self.ckpt_dir / "last.pt") as self.stop_signals, flush_denormals(trainer.flush_denormal),
              self.bar):
            try:
                for epoch in range(start, trainer.epochs):
                    if self.state["stopped_early"]:
                        break
                    t0 = time.perf_counter()
                    train_logs = self.train_one_epoch(epoch)
                    val_logs = self.evaluate_loss(self.val_x)
                    self.end_epoch(epoch, train_logs, val_logs, time.perf_counter() - t0)
                    if self.stop_signals.requested:  # arrived during validation
                        self.stop_for_signal(f"after epoch {epoch + 1}")
            finally:
                self.checkpoints.close()  # the last checkpoint is on disk before train() returns or raises

    def stop_for_signal(self, where: str) -> None:
        """Save the current state to last.pt, wait until it is on disk and raise Interrupted."""
        self.save()
        self.checkpoints.wait()
        signum = self.stop_signals.signum
        raise Interrupted(signum, f"{signal_name(signum)} received: stopped {where} (step "
                                  f"{self.state['global_step']}); saved {self.ckpt_dir / 'last.pt'}", saved=True)

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training normals; returns sample-weighted mean losses."""
        self.model.train()
        trainer = self.config.trainer
        batches = self.epoch_batches(epoch)
        # Resuming mid-epoch: the order is fixed by (seed, epoch), so skipping the batches done is exact.
        done = self.state["batch_in_epoch"]
        totals: dict[str, float] = self.state["epoch_totals"]  # sample-weighted sums, kept in mid-epoch checkpoints
        self.bar.set_description(f"epoch {epoch + 1}/{trainer.epochs}", refresh=False)
        for done, idx in enumerate(batches[done:], start=done + 1):
            with self.distributed_forward():
                logs = self.training_step(self.train_x[idx.to(self.device)])
            # Python floats: training_step synced already, and .item() costs less than a tensor op per term.
            values = {key: value.item() for key, value in logs.items()}
            for key, value in values.items():
                totals[key] = totals.get(key, 0.0) + value * len(idx)
            step = self.state["global_step"]
            self.bar.update()
            if step % trainer.log_every_n_steps == 0:
                self.bar.set_postfix(loss=f"{values['loss']:.4g}", refresh=False)  # drawn at tqdm's own pace
                for key, value in values.items():
                    self.writer.add_scalar(f"step/{key}", value, step)
            self.state["batch_in_epoch"] = done
            if self.stop_signals is not None and self.stop_signals.requested:
                self.stop_for_signal(f"in epoch {epoch + 1} after batch {done}/{len(batches)}")
        self.state["batch_in_epoch"], self.state["epoch_totals"] = 0, {}
        seen = sum(len(idx) for idx in batches)
        return all_reduce_mean({key: value / seen for key, value in totals.items()}, self.dist, self.device)

    def epoch_batches(self, epoch: int) -> list[Tensor]:
        """This process's batches of training indices in ``epoch``, in the order fixed by (seed, epoch)."""
        world = self.dist.world_size
        return batch_indices(len(self.train_x), self.config.trainer.batch_size // world,
                             epoch_generator(self.config.seed, epoch), self.dist.rank, world)

    def training_step(self, x: Tensor) -> dict[str, Tensor]:
        """Forward, backward and optimizer step on one batch (B, T, F)."""
        logs = self.compute_loss(x)
        loss = logs["loss"]
        if not math.isfinite(loss.item()):  # .item(): one sync, cheaper than torch.isfinite on the CPU
            self.checkpoints.wait()
            last = self.ckpt_dir / "last.pt"
            kept = (f"the last good checkpoint {last} (epoch {self.state['epoch']}) is kept" if last.is_file()
                    else f"no checkpoint was written yet (delete {self.run_dir} to start again)")
            raise TrainingDivergedError(
                f"loss became {loss.item()} at step {self.state['global_step'] + 1} "
                f"(epoch {self.state['epoch'] + 1}); training stopped and {kept}. "
                "Lower trainer.learning_rate or set trainer.grad_clip_norm"
            )
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.trainer.grad_clip_norm:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.trainer.grad_clip_norm)
        self.optimizer.step()
        self.state["global_step"] += 1
        return logs

    @torch.no_grad()
    def evaluate_loss(self, x: Tensor) -> dict[str, float]:
        """Sample-weighted mean loss components over ``x`` in eval mode."""
        self.model.eval()
        totals: dict[str, float] = {}
        for idx in batch_indices(len(x), self.config.evaluation.batch_size):
            for key, value in self.compute_loss(x[idx.to(self.device)]).items():
                totals[key] = totals.get(key, 0.0) + value.item() * len(idx)
        return {key: value / len(x) for key, value in totals.items()}

    def end_epoch(self, epoch: int, train_logs: dict, val_logs: dict, seconds: float) -> None:
        """Log the epoch, step the scheduler, track the best model, checkpoint, early-stop."""
        trainer, state = self.config.trainer, self.state
        val_loss = val_logs["loss"]
        history = state["history"]
        # At the global step, as the step/* points: a resume's purge_step then drops both alike.
        step = state["global_step"]
        for prefix, logs in (("train", train_logs), ("val", val_logs)):
            for key, value in logs.items():
                name = prefix if key == "loss" else f"{prefix}_{key}"
                history.setdefault(name, []).append(value)
                self.writer.add_scalar(f"epoch/{name}", value, step)
        lr = self.optimizer.param_groups[0]["lr"]
        history.setdefault("lr", []).append(lr)
        self.writer.add_scalar("epoch/learning_rate", lr, step)
        self.writer.add_scalar("epoch/seconds", seconds, step)
        self.writer.add_scalar("epoch/epoch", epoch + 1, step)
        if self.scheduler is not None:
            self.scheduler.step(val_loss) if trainer.scheduler == "plateau" else self.scheduler.step()
        improved = val_loss < state["best_val"] - trainer.min_delta
        if improved:
            state.update(best_val=val_loss, best_epoch=epoch + 1, bad_epochs=0)
        else:
            state["bad_epochs"] += 1
        patience = trainer.early_stopping_patience
        state["stopped_early"] = patience is not None and state["bad_epochs"] > patience
        state["epoch"] = epoch + 1
        logger.info("epoch %d/%d  train %.5g  val %.5g  lr %.2e  %.2fs%s", epoch + 1, trainer.epochs,
                    train_logs["loss"], val_loss, lr, seconds, "  *best*" if improved else "")
        due = (state["stopped_early"] or epoch + 1 == trainer.epochs
               or time.monotonic() - self.last_save >= trainer.checkpoint_interval_s)
        if due:
            self.save(best=improved)
        elif improved and self.dist.is_main:  # written with the next last.pt
            self.best_state = {"model": clone_state(getattr(self.model, "module", self.model).state_dict()),
                               **{key: state[key] for key in ("epoch", "global_step", "best_val", "best_epoch")}}
        if state["stopped_early"]:
            logger.info("Early stopping: no improvement for %d epochs", state["bad_epochs"])

    @contextmanager
    def distributed_forward(self) -> Iterator[None]:
        """Route ``self.model(...)`` through DistributedDataParallel so gradients are averaged across ranks."""
        if self.ddp is None:
            yield
            return
        self.model = self.ddp
        try:
            yield
        finally:
            self.model = self.ddp.module

    def check_ranks_in_sync(self) -> None:
        """Under torchrun, log each rank's weight digest; differing weights are a bug, so raise."""
        if not self.dist.enabled:
            return
        digests = gather_digests(self.model, self.dist)
        logger.info("Weights digest per rank: %s (%s)", " ".join(digests),
                    "identical" if len(set(digests)) == 1 else "DIFFERENT")
        if len(set(digests)) != 1:
            raise RuntimeError(f"ranks ended with different weights: {digests}")
