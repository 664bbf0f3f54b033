"""BaseAgent: the training loop every agent shares (its hooks are in :mod:`agents.hooks`), and the reconstruction
agent; ``vae`` and ``rnn_autoencoder`` (the agents of earlier versions) are its aliases, so existing configs work."""
from __future__ import annotations

import contextlib
import json
import logging
import math
import time
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import Tensor, nn

from agents.detector.checkpoint import build_checked_model, check_score_dimensions, check_training_checkpoint
from agents.detector.detector import Detector
from agents.detector.scaler import Scaler, too_large
from agents.hooks import (
    Checkpointer,
    EarlyStopping,
    EpochEnd,
    Hook,
    ProgressBar,
    StopOnSignal,
    TensorBoardLogger,
    open_summary_writer,
)
from agents.parts import NullWriter, TrainState, build_component, build_scheduler, select_device
from graphs.kernels.native import rnn_loops
from utils.core.errors import CheckpointError, ConfigError, TrainingDivergedError
from utils.core.registry import DATASETS, LOSSES, register_agent
from utils.runs.checkpoints import check_same_data, check_same_run, load_checkpoint, load_model_state
from utils.runs.run_folder import RunFolder, record_numerics, wait_for_a_later_event_file_second
from utils.runtime.batching import batch_indices
from utils.runtime.distributed import DistInfo, all_reduce_mean, check_ranks_in_sync, cuda_device_for, init_from_env
from utils.runtime.reproducibility import (
    array_digest,
    epoch_generator,
    flush_denormals,
    numerics,
    pin_threads,
    recorded_data,
    recorded_threads,
    recording_digests,
    seed_everything,
    state_digest,
)

logger = logging.getLogger("anomaly")


class TrainingForward(nn.Module):
    """``model.training_outputs`` as a module's forward, so DistributedDataParallel can wrap it once."""

    def __init__(self, model: nn.Module) -> None:
        super().__init__()
        self.model = model

    def forward(self, x: Tensor) -> dict[str, Tensor]:
        return self.model.training_outputs(x)


class BaseAgent:
    """Trains ``self.model`` on normal windows; a subclass says what :meth:`evaluate` does afterwards. ``config``:
    validated; ``run_dir``: checked already; ``device``, ``dist``: default from the config and the environment."""

    def __init__(self, config: Any, run_dir: Path, resume: bool = False, device: torch.device | None = None,
                 dist: DistInfo | None = None) -> None:
        self.config, self.run_dir, self.folder = config, Path(run_dir), RunFolder(run_dir)
        trainer = config.trainer
        ckpt = checked_checkpoint(self.folder.last, config) if resume else None  # before anything is built
        seed_everything(config.seed, trainer.deterministic)
        self.pin_threads(resume)
        self.dist = dist or init_from_env(select_device(config.device))
        self.device = device or cuda_device_for(self.dist, select_device(config.device))
        if trainer.batch_size % self.dist.world_size:
            raise ConfigError(f"trainer.batch_size: {trainer.batch_size} is the global batch and must be divisible "
                              f"by the {self.dist.world_size} processes")
        started = recorded_threads(self.folder.environment, "processes") if resume else None
        if started not in (None, self.dist.world_size):
            logger.warning("Resuming with %s a run started with %s: it goes on, but not bit-identically to a run never "
                           "stopped (the batches are split across processes differently); --nproc-per-node %d for that",
                           *(f"{n} process{'es' if n > 1 else ''}" for n in (self.dist.world_size, started)), started)
        self.data = build_component(DATASETS, config.data, seed=config.seed)
        self.scaler = Scaler(config.evaluation.scaler).fit(self.data.train.x, self.data.feature_names)
        self.train_x, self.val_x = (self.to_tensor(getattr(self.data, name).x, name) for name in ("train", "val"))
        test = self.data.test.x  # its extremes checked now, not after the training (scaling is monotone per sensor)
        if len(test) and too_large(self.scaler.unchecked(np.stack([test.min(axis=(0, 1)), test.max(axis=(0, 1))]))):
            self.to_tensor(test, "test")  # raises the DataError naming the cell
        self.data_digest = array_digest([self.train_x, self.val_x, self.data.test.x])
        self.data_windows = {split: len(getattr(self.data, split)) for split in ("train", "val", "test")}
        self.data_recordings = recording_digests(self.data)
        if ckpt is not None:
            check_same_data(recorded_data(self.folder.environment), self.data_digest, self.data_windows,
                            config.data, self.run_dir, self.data_recordings)
        _, time_steps, n_features = self.data.train.x.shape
        self.model_inputs = {"time_steps": int(time_steps), "n_features": int(n_features)}
        self.model = build_checked_model(config.model, self.model_inputs).to(self.device)
        check_score_dimensions(config.evaluation.scores, self.model, self.model_inputs, config,
                               {"train": len(self.data.train), "val": len(self.data.val)})
        self.loss_fn = build_component(LOSSES, config.loss)
        # foreach: each update op runs once over all parameters (bit-identical to the default per-parameter loop)
        self.optimizer = torch.optim.Adam(self.model.parameters(), lr=trainer.learning_rate,
                                          weight_decay=trainer.weight_decay, foreach=True)
        self.scheduler = build_scheduler(self.optimizer, trainer.scheduler, trainer.epochs)
        self.state = TrainState()
        self.writer: Any = NullWriter()
        self.train_seconds = 0.0
        self.checkpointer = Checkpointer(trainer.checkpoint_interval_s)
        every = trainer.log_every_n_steps
        self.early_stopping = EarlyStopping.from_config(trainer)
        self.hooks: list[Hook] = [self.early_stopping, TensorBoardLogger(every),
                                  self.checkpointer, ProgressBar(trainer.progress_bar and self.dist.is_main, every),
                                  StopOnSignal(self.checkpointer)]
        if ckpt is not None:
            self.checkpointer.restore(self, ckpt, self.folder.last)
        # Wrapped once: gradients are averaged across ranks in backward (after the weights are restored).
        forward = TrainingForward(self.model)
        self.forward_train = torch.nn.parallel.DistributedDataParallel(forward) if self.dist.enabled else forward

    def pin_threads(self, resume: bool) -> None:
        """Fix the thread count: a resumed run's original one (bit-identical continuation), else ``trainer.threads``."""
        started_with = recorded_threads(self.folder.environment) if resume else None
        if started_with is not None and started_with != torch.get_num_threads():
            logger.info("Using %d threads, as when this run started (environment.json), not %d: a bit-identical "
                        "continuation", started_with, torch.get_num_threads())
        pin_threads(started_with or self.config.trainer.threads)

    def to_tensor(self, x: Any, split: str | None = None) -> Tensor:
        """Scale windows (N, T, F) onto the device; DataError: a value too large once scaled (placed in ``split``)."""
        names = self.data.feature_names
        scaled = self.scaler.transform(x, where=lambda i: f"{self.cell_name(split, i[0], i[1])}, sensor "
                                                          f"{names[i[-1]]!r}")
        return torch.from_numpy(scaled).to(self.device)

    def cell_name(self, split: str | None, window: int, step: int) -> str:
        """Where ``step`` of ``window`` lies: a recording's file row (stream val/test), else window and step."""
        for recording in self.data.recordings if split in ("val", "test") else []:
            part = getattr(recording, split)
            if part is not None and window < len(part.starts):
                return f"{recording.name}: row {part.first_row + int(part.starts[window]) + step}"
            window -= 0 if part is None else len(part.starts)
        return f"the {split or 'given'} windows: window {window}, time step {step}"

    def evaluate(self) -> dict[str, Any]:
        """After training: score, write the outputs; returns the metrics."""
        raise NotImplementedError

    def run(self) -> dict[str, Any]:
        """Train (from scratch or where the checkpoint left off), then evaluate on rank 0."""
        if self.dist.is_main:  # the run folder exists from here on; digests: which input differed between runs
            trainer = self.config.trainer
            record_numerics(self.folder.environment, numerics(
                processes=self.dist.world_size,
                deterministic=bool(trainer.deterministic), flush_denormal=bool(trainer.flush_denormal),
                rnn_loops=rnn_loops_in_use(self.model), data_sha1=self.data_digest, data_windows=self.data_windows,
                data_recordings=self.data_recordings,
                weights_at_start_sha1=state_digest(self.model.state_dict())))
        resumed_at = self.state.global_step  # TensorBoard hides what a stopped run logged after it
        if resumed_at:
            wait_for_a_later_event_file_second(self.folder.summaries)
        # a new run purges too (from step 0, nothing): TensorBoard's Python loader (--load_fast=false) takes a run's
        # first purge for its start and ignores it, so a resume's purge must not be the first
        self.writer = open_summary_writer(self.folder.summaries, resumed_at + 1 if resumed_at else 0, self.dist.is_main)
        try:
            started = time.perf_counter()
            self.train()
            self.train_seconds = time.perf_counter() - started  # this process's share, for the cost of the rest
            check_ranks_in_sync(self.model, self.dist)
            result = self.evaluate() if self.dist.is_main else {}
        except BaseException:
            with contextlib.suppress(Exception):  # the error in flight says what went wrong, not the close's
                self.writer.close()
            raise
        self.writer.close()
        return result

    def train(self) -> None:
        """The epoch loop: train, validate, let the hooks log, checkpoint and stop."""
        trainer, state = self.config.trainer, self.state
        if state.stopped_early:  # a resume may loosen the rule (a larger patience, a lower floor) and go on
            state.stopped_early = self.early_stopping.reason(self) is not None
        if state.stopped_early or (state.epoch >= trainer.epochs and not state.batch_in_epoch):
            logger.info("Training had finished at epoch %d (step %d); evaluating", state.epoch, state.global_step)
        elif state.epoch or state.global_step:
            logger.info("Resuming at epoch %d, batch %d (step %d)", state.epoch + 1, state.batch_in_epoch + 1,
                        state.global_step)
        try:
            self.call("before_train")
            with flush_denormals(trainer.flush_denormal):
                for epoch in range(state.epoch, trainer.epochs):
                    if state.stopped_early:
                        break
                    self.call("before_epoch", epoch)
                    t0 = time.perf_counter()
                    train_logs = self.train_one_epoch(epoch)
                    val_logs = self.evaluate_loss(self.val_x)
                    if not math.isfinite(val_logs["loss"]):  # weights that no longer reconstruct: no best epoch
                        raise self.diverged(f"the validation loss became {val_logs['loss']} after step "
                                            f"{state.global_step}")
                    lr = self.optimizer.param_groups[0]["lr"]
                    state.record_epoch(train_logs, val_logs, lr)
                    if self.scheduler is not None:
                        plateau = trainer.scheduler == "plateau"  # steps on the validation loss
                        self.scheduler.step(val_logs["loss"]) if plateau else self.scheduler.step()
                    improved = state.update_best(val_logs["loss"], trainer.min_delta, epoch, trainer.min_delta_rel)
                    state.epoch = epoch + 1
                    seconds = time.perf_counter() - t0
                    logger.info("epoch %d/%d  train %.5g  val %.5g  lr %.2e  %.2fs%s", epoch + 1, trainer.epochs,
                                train_logs["loss"], val_logs["loss"], lr, seconds, "  *best*" if improved else "")
                    self.call("after_epoch", EpochEnd(epoch, train_logs, val_logs, lr, seconds, improved))
        finally:
            self.call("after_train")

    def train_one_epoch(self, epoch: int) -> dict[str, float]:
        """One pass over the training normals; returns sample-weighted mean losses."""
        self.model.train()
        state, batches = self.state, self.epoch_batches(epoch)
        totals = state.epoch_totals  # sample-weighted sums, kept in mid-epoch checkpoints
        # Resuming mid-epoch: the order is fixed by (seed, epoch), so skipping the batches done is exact.
        for done, idx in enumerate(batches[state.batch_in_epoch:], start=state.batch_in_epoch + 1):
            # Python floats: training_step synced already, and .item() costs less than a tensor op per term.
            logs = {key: value.item() for key, value in self.training_step(self.train_x[idx.to(self.device)]).items()}
            for key, value in logs.items():
                totals[key] = totals.get(key, 0.0) + value * len(idx)
            state.batch_in_epoch = done
            self.call("after_step", logs)
        seen = sum(len(idx) for idx in batches)
        means = {key: value / seen for key, value in totals.items()}
        state.batch_in_epoch, state.epoch_totals = 0, {}
        return all_reduce_mean(means, self.dist, self.device)

    def epoch_batches(self, epoch: int) -> list[Tensor]:
        """This process's batches of training indices in ``epoch``, in the order fixed by (seed, epoch)."""
        world = self.dist.world_size
        return batch_indices(len(self.train_x), self.config.trainer.batch_size // world,
                             epoch_generator(self.config.seed, epoch), self.dist.rank, world)

    def compute_loss(self, x: Tensor, forward: nn.Module | None = None) -> dict[str, Tensor]:
        """Loss dict (``"loss"`` plus logged components) of a batch (B, T, F), through ``forward`` or the bare model."""
        outputs = forward(x) if forward is not None else self.model.training_outputs(x)
        return self.loss_fn(x=x, **outputs)

    def training_step(self, x: Tensor) -> dict[str, Tensor]:
        """Forward, backward and optimizer step on one batch (B, T, F)."""
        logs = self.compute_loss(x, self.forward_train)
        loss = logs["loss"]
        if not math.isfinite(loss.item()):  # .item(): one sync, cheaper than torch.isfinite on the CPU
            # stop before a non-finite loss updates anything
            raise self.diverged(f"loss became {loss.item()} at step {self.state.global_step + 1}")
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if self.config.trainer.grad_clip_norm:
            nn.utils.clip_grad_norm_(self.model.parameters(), self.config.trainer.grad_clip_norm)
        self.optimizer.step()
        self.state.global_step += 1
        return logs

    def diverged(self, what: str) -> TrainingDivergedError:
        """The error that stops a run whose ``what`` loss is no longer finite: the checkpoint kept, what to change."""
        self.checkpointer.wait()
        last, state = self.folder.last, self.state
        kept = (f"the last good checkpoint {last} (epoch {self.checkpointer.saved_epoch}) is kept" if last.is_file()
                else f"no checkpoint was written yet, so {self.run_dir} is removed and the same command starts "
                     "the run again")
        return TrainingDivergedError(f"{what} (epoch {state.epoch + 1}); training stopped and {kept}. "
                                     "Lower trainer.learning_rate or set trainer.grad_clip_norm")

    @torch.no_grad()
    def evaluate_loss(self, x: Tensor) -> dict[str, float]:
        """Sample-weighted mean loss components over ``x`` in eval mode."""
        self.model.eval()
        totals: dict[str, float] = {}
        for idx in batch_indices(len(x), self.config.evaluation.batch_size):
            for key, value in self.compute_loss(x[idx.to(self.device)]).items():
                totals[key] = totals.get(key, 0.0) + value.item() * len(idx)
        return {key: value / len(x) for key, value in totals.items()}

    def call(self, event: str, *args: Any) -> None:
        """Run ``event`` on every hook, in order; ``after_train`` (clean-ups, such as giving the signal handlers back)
        runs on every hook even after one raised, then raises the first error."""
        first: BaseException | None = None
        for hook in self.hooks:
            try:
                getattr(hook, event)(self, *args)
            except BaseException as err:  # noqa: BLE001  (raised again below, once every hook ran)
                if event != "after_train":
                    raise
                first = first or err
        if first is not None:
            raise first


@register_agent("rnn_autoencoder")
@register_agent("vae")
@register_agent("reconstruction")
class ReconstructionAgent(BaseAgent):
    """Trains on normal windows (N, T, F), then scores the test split with the best epoch's detector."""

    def detector(self) -> Detector:
        """A detector around the current model and scaler (statistics and thresholds not fitted yet)."""
        evaluation = self.config.evaluation
        return Detector(self.model, self.scaler, evaluation.scores, self.model_inputs["time_steps"],
                        list(self.data.feature_names), batch_size=evaluation.batch_size, config=self.config)

    def evaluate(self) -> dict[str, Any]:
        """Fit the detector on the normals with the best weights, score the test split, write ``out/``."""
        started = time.perf_counter()  # the evaluation's time includes importing what only it uses
        from agents.evaluation import TrainedRun, evaluate_run
        windows = {"train": self.train_x, "val": self.val_x, "test": self.to_tensor(self.data.test.x, "test")}
        return evaluate_run(TrainedRun(self.detector(), self.data, windows, self.folder, self.config, self.state,
                                       self.train_seconds, self.writer, started))


def finished_run(run_dir: Path, config: Any) -> str | None:
    """What ``--resume`` of a finished run says (epochs done or stopped early, metrics written), else None;
    CheckpointError, ConfigError as the resume itself would raise them (a damaged ``last.pt``, another config)."""
    run = RunFolder(run_dir)
    if not run.finished():
        return None
    last = run.last
    ckpt = checked_checkpoint(last, config)
    state = TrainState()
    state.load_state_dict(ckpt, str(last))
    groups = ckpt["optimizer"]["param_groups"]
    lr = groups[0].get("lr") if groups and isinstance(groups[0], dict) else None
    if state.batch_in_epoch or not isinstance(lr, float):
        return None  # mid-epoch, or a damaged optimizer state that the resume names
    if evaluated_step(run.metrics) != state.global_step:
        return None  # metrics of an earlier end: a resume trained on, then stopped before its evaluation ended
    trainer = config.trainer
    stop = EarlyStopping.from_config(trainer).reason_for(state.bad_epochs, lr) if state.stopped_early else None
    if stop is None and state.epoch < trainer.epochs:
        return None
    try:  # weights that do not fit this config: not finished; the resume itself names what is wrong
        load_model_state(build_checked_model(config.model, ckpt["model_inputs"]), ckpt["model"], last)
    except (CheckpointError, ConfigError, KeyError, TypeError):
        return None
    if stop is None:
        why = f"it trained all {state.epoch} epochs of trainer.epochs={trainer.epochs}"
        longer = f"add --set trainer.epochs=N (N above {state.epoch}) to --resume"
        if trainer.scheduler == "cosine":  # its schedule spans the run's epochs: a resume keeps them (check_same_run)
            longer = ("start a new run with more epochs (--set exp_name=NEW_NAME --set trainer.epochs=N): the cosine "
                      "schedule ended with these")
    else:
        why = f"early stopping ended it after epoch {state.epoch}: {stop[1]}"
        longer = "add " + {"early_stopping_patience": f"--set trainer.early_stopping_patience=P (P above "
                                                      f"{state.bad_epochs}; null: never stop early)",
                           "min_learning_rate": "--set trainer.min_learning_rate=0"}[stop[0]] + " to --resume"
    return (f"{run_dir} is finished ({why}, best epoch {state.best_epoch}); --resume changed nothing. To train it "
            f"longer, {longer}; to score data with it: --mode score")


def evaluated_step(metrics: Path) -> int | None:
    """The training step whose weights ``out/metrics.json`` evaluated (None when it does not say)."""
    try:
        return json.loads(metrics.read_text(encoding="utf-8"))["training"]["global_step"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def checked_checkpoint(last: Path, config: Any) -> dict[str, Any]:
    """``last.pt``, its fields' types checked and its config compared with ``config`` (CheckpointError,
    ConfigError: a damaged checkpoint, or one of another run)."""
    ckpt = load_checkpoint(last)
    check_training_checkpoint(ckpt, last)
    epoch = ckpt.get("epoch")  # its type is checked when the state is restored
    check_same_run(ckpt.get("config"), config, last, 0 if isinstance(epoch, bool) or not isinstance(epoch, int) else epoch)
    return ckpt


def rnn_loops_in_use(model: nn.Module) -> str:
    """``"c++"``, ``"python"`` (not built) or ``"none"`` (no recurrent layer): the time loops a model trains with."""
    if not any(isinstance(module, nn.RNNBase) for module in model.modules()):
        return "none"
    return "c++" if rnn_loops() is not None else "python"
