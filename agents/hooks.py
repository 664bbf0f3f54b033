"""Hooks around the training loop (as detectron2's hooks and Lightning's callbacks); see docs/stopping-resuming.md.
:class:`agents.base.BaseAgent` calls them in list order, ``after_train`` also when training raises; they see the
agent as the :class:`Trainer` protocol, so this module does not import the agent that imports it."""
from __future__ import annotations

import json
import logging
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import torch
from tqdm import tqdm

from agents.detector.checkpoint import check_matches_data
from agents.detector.scaler import Scaler
from agents.parts import NullWriter, TrainState, epoch_values
from utils.core.errors import CheckpointError
from utils.runs.checkpoints import CheckpointWriter, clone_state, load_model_state
from utils.runs.outputs import cannot_write
from utils.runs.run_folder import RunFolder
from utils.runtime.distributed import DistInfo, SignalOfAnyRank, all_reduce_sum
from utils.runtime.reproducibility import get_rng_state, set_rng_state
from utils.runtime.signals import Interrupted, StopSignals, signal_name

logger = logging.getLogger("anomaly")


class Trainer(Protocol):
    """What the hooks read and change of the agent that trains (:class:`agents.base.BaseAgent` is one)."""

    config: Any
    state: TrainState
    dist: DistInfo
    device: torch.device
    model: torch.nn.Module
    optimizer: torch.optim.Optimizer
    scheduler: Any
    scaler: Scaler
    data: Any
    model_inputs: dict[str, int]
    writer: Any
    folder: RunFolder

    def epoch_batches(self, epoch: int) -> list[torch.Tensor]: ...


@dataclass(frozen=True)
class EpochEnd:
    """What an epoch gave (``epoch`` is 0-based; ``improved``: a new best validation loss)."""

    epoch: int
    train: dict[str, float]
    val: dict[str, float]
    lr: float
    seconds: float
    improved: bool


class Hook:
    """Base class: every method is a no-op."""

    def before_train(self, agent: Trainer) -> None: ...

    def before_epoch(self, agent: Trainer, epoch: int) -> None: ...

    def after_step(self, agent: Trainer, logs: dict[str, float]) -> None: ...

    def after_epoch(self, agent: Trainer, end: EpochEnd) -> None: ...

    def after_train(self, agent: Trainer) -> None: ...


class EarlyStopping(Hook):
    """Sets ``state.stopped_early`` after ``patience`` epochs without improvement (None: never) or once the learning
    rate is below ``min_learning_rate`` (0: never): from what ``last.pt`` holds, so a resume stops where a run did."""

    def __init__(self, patience: int | None, min_learning_rate: float = 0.0) -> None:
        self.patience, self.min_learning_rate = patience, min_learning_rate

    def after_epoch(self, agent: Trainer, end: EpochEnd) -> None:
        reason = self.reason(agent)
        agent.state.stopped_early = reason is not None
        if reason is not None:
            logger.info("Early stopping: %s", reason)

    @classmethod
    def from_config(cls, trainer: Any) -> EarlyStopping:
        """The rule of a run's ``trainer`` section (the learning-rate floor applies to the plateau scheduler)."""
        return cls(trainer.early_stopping_patience, trainer.min_learning_rate if trainer.scheduler == "plateau" else 0.0)

    def reason(self, agent: Trainer) -> str | None:
        """Why training should stop now, or None."""
        found = self.reason_for(agent.state.bad_epochs, agent.optimizer.param_groups[0]["lr"])
        return found and found[1]

    def reason_for(self, bad_epochs: int, lr: float) -> tuple[str, str] | None:
        """(the trainer key whose rule is met, the reason in words), or None."""
        if self.patience is not None and bad_epochs >= self.patience:
            return "early_stopping_patience", (f"no improvement for {bad_epochs} epochs "
                                               f"(trainer.early_stopping_patience={self.patience})")
        if lr < self.min_learning_rate:
            return "min_learning_rate", (f"the scheduler took the learning rate to {lr:.2g}, below "
                                         f"trainer.min_learning_rate={self.min_learning_rate:g}")
        return None


class TensorBoardLogger(Hook):
    """``step/<loss>`` every ``every`` steps; ``epoch/*`` at the step that ends the epoch (so ``purge_step`` works)."""

    def __init__(self, every: int) -> None:
        self.every = every

    def after_step(self, agent: Trainer, logs: dict[str, float]) -> None:
        step = agent.state.global_step
        if step % self.every == 0:
            for key, value in logs.items():
                agent.writer.add_scalar(f"step/{key}", value, step)

    def after_epoch(self, agent: Trainer, end: EpochEnd) -> None:
        for key, value in [*epoch_values(end.train, end.val), ("learning_rate", end.lr), ("seconds", end.seconds),
                           ("epoch", end.epoch + 1)]:
            agent.writer.add_scalar(f"epoch/{key}", value, agent.state.global_step)


class Checkpointer(Hook):
    """Writes ``checkpoints/last.pt`` (and ``best.pt``, from a snapshot of the best epoch) in the background."""

    def __init__(self, interval_s: float) -> None:
        self.interval_s = interval_s
        self.writer = CheckpointWriter()
        self.last_save = time.monotonic()
        self.best_snapshot: dict[str, Any] | None = None
        self.saved_epoch = 0  # the epochs done in the last.pt written or restored last

    def before_train(self, agent: Trainer) -> None:
        self.last_save = time.monotonic()

    def after_epoch(self, agent: Trainer, end: EpochEnd) -> None:
        last_epoch = end.epoch + 1 == agent.config.trainer.epochs
        if agent.state.stopped_early or last_epoch or time.monotonic() - self.last_save >= self.interval_s:
            self.save(agent, best=end.improved)
        elif end.improved and agent.dist.is_main:
            fields = ("epoch", "global_step", "best_val", "best_epoch")
            self.best_snapshot = {"model": clone_state(agent.model.state_dict()),
                                  **{key: getattr(agent.state, key) for key in fields}}

    def after_train(self, agent: Trainer) -> None:
        self.writer.close()  # the last checkpoint is on disk before training returns or raises

    def save(self, agent: Trainer, best: bool = False) -> None:
        """Queue ``last.pt``, and ``best.pt`` if this state is the best or a best snapshot is pending."""
        self.last_save, self.saved_epoch = time.monotonic(), agent.state.epoch
        # mid-epoch: every rank's loss sums so far, not rank 0's alone (restore shares them out again). Only a stop
        # saves mid-epoch, on every rank after the same batch; at an epoch's end the sums are empty, so a timed save,
        # which each rank decides by its own clock, starts no collective
        totals = all_reduce_sum(agent.state.epoch_totals, agent.dist, agent.device)
        if not agent.dist.is_main:  # rank 0 alone writes
            return
        agent.writer.flush()  # events up to this checkpoint are on disk with it
        files = [(agent.folder.last, self.state_of(agent) | {"epoch_totals": totals})]
        snapshot, self.best_snapshot = (None if best else self.best_snapshot), None  # best: an older snapshot is stale
        if best or snapshot is not None:
            # best.pt first: a stop between the two writes leaves a last.pt whose best epoch is on disk (the
            # resume retraces the epochs after it and writes best.pt again), never one whose best was not written
            files.insert(0, (agent.folder.best, self.state_of(agent, resumable=False) | (snapshot or {})))
        self.writer.save(files)

    def wait(self) -> None:
        """Block until the queued writes are on disk (re-raising their error)."""
        self.writer.wait()

    @staticmethod
    def state_of(agent: Trainer, resumable: bool = True) -> dict[str, Any]:
        """``last.pt``'s fields; without ``resumable``, ``best.pt``'s (no optimizer, scheduler or RNG states)."""
        state = {"model": agent.model.state_dict(), **agent.state.state_dict(),
                 "model_inputs": dict(agent.model_inputs), "feature_names": list(agent.data.feature_names),
                 "window_length": agent.model_inputs["time_steps"], "scaler": agent.scaler.state_dict(),
                 "scoring": {}, "config": json.loads(json.dumps(agent.config))}
        if resumable:
            state.update(optimizer=agent.optimizer.state_dict(), rng=get_rng_state(),
                         scheduler=agent.scheduler.state_dict() if agent.scheduler is not None else None)
        return state

    def restore(self, agent: Trainer, ckpt: dict[str, Any], source: Path) -> None:
        """Load a ``last.pt`` written from :meth:`state_of` (its fields' types checked already) into the agent;
        CheckpointError: a batch count or moment shapes that do not fit this run, or weights of another model."""
        check_matches_data(ckpt, source, agent.model_inputs, list(agent.data.feature_names))
        state = agent.state
        state.load_state_dict(ckpt, str(source))
        # the sums of every rank (of the run that saved them): each rank of this run takes an equal share
        state.epoch_totals = {key: value / agent.dist.world_size for key, value in state.epoch_totals.items()}
        batches = len(agent.epoch_batches(state.epoch)) if state.batch_in_epoch else 0
        if state.batch_in_epoch > batches:
            raise CheckpointError(f"{source}: field 'batch_in_epoch' holds {state.batch_in_epoch}, but an epoch of "
                                  f"this run has {batches} batches (valid: 0 to {batches}); the checkpoint is damaged "
                                  "or was not written by this project")
        load_model_state(agent.model, ckpt["model"], source)
        optimizer = agent.optimizer
        _load_field(source, "optimizer", optimizer.load_state_dict, ckpt["optimizer"])
        # torch does not check the moments' shapes (Adam would fail later)
        params = [p for group in optimizer.param_groups for p in group["params"]]
        for index, param in enumerate(params):
            for key, value in optimizer.state.get(param, {}).items():
                if isinstance(value, torch.Tensor) and value.ndim and value.shape != param.shape:
                    raise CheckpointError(f"{source}: field 'optimizer.state.{index}.{key}' has shape "
                                          f"{tuple(value.shape)} but its parameter {tuple(param.shape)}; the "
                                          "checkpoint is damaged or was made with another model config")
        if agent.scheduler is not None and ckpt.get("scheduler"):
            _load_field(source, "scheduler", agent.scheduler.load_state_dict, ckpt["scheduler"])
        agent.scaler = _load_field(source, "scaler", Scaler.from_state_dict, ckpt["scaler"])
        _load_field(source, "rng", set_rng_state, ckpt["rng"])
        self.saved_epoch = state.epoch


def _load_field(source: Path, field: str, load: Any, value: Any) -> Any:
    """``load(value)``, a failure reported as the field's."""
    try:
        return load(value)
    except (KeyError, TypeError, ValueError, RuntimeError, IndexError, AttributeError, OverflowError) as err:
        detail = str(err).strip().splitlines()[0][:160] if str(err).strip() else type(err).__name__
        raise CheckpointError(f"{source}: field {field!r} cannot be restored ({detail}); the checkpoint is "
                              "damaged or was not written by this project") from None


def open_summary_writer(summaries: Path, purge_step: int | None, is_main: bool) -> Any:
    """The run's TensorBoard writer into ``summaries`` (a no-op one on ranks other than 0)."""
    if not is_main:
        return NullWriter()
    from torch.utils.tensorboard import SummaryWriter
    # max_queue=1000: with the default 10, every add_scalar waited for the writer thread's checksums
    return NamingSummaryWriter(SummaryWriter(str(summaries), purge_step=purge_step, max_queue=1000, flush_secs=5))


class NamingSummaryWriter:
    """A SummaryWriter whose write failures (a full disk) raise a WriteError naming its event file (a failed write
    ends TensorBoard's writer thread and resurfaces in the next call as an OSError naming no file)."""

    def __init__(self, writer: Any) -> None:
        self._writer = writer
        _quiet_writer_threads()

    def __getattr__(self, name: str) -> Any:
        method = getattr(self._writer, name)

        def naming(*args: Any, **kwargs: Any) -> Any:
            try:
                return method(*args, **kwargs)
            except OSError as err:
                raise cannot_write(Path(self._writer.file_writer.event_writer._file_name), err) from None
        return naming


def _quiet_writer_threads() -> None:
    """Keep threading's hook from printing a TensorBoard writer thread's OSError (the loop raises it again)."""
    if getattr(threading.excepthook, "quiets_writer_threads", False):
        return
    previous = threading.excepthook

    def hook(args: threading.ExceptHookArgs) -> None:
        if not (issubclass(args.exc_type, OSError) and type(args.thread).__name__ == "_AsyncWriterThread"):
            previous(args)
    hook.quiets_writer_threads = True  # type: ignore[attr-defined]
    threading.excepthook = hook


class ProgressBar(Hook):
    """One tqdm bar over every step of the run; the loss every ``every`` steps."""

    def __init__(self, enabled: bool, every: int) -> None:
        self.enabled, self.every = enabled, every
        self.bar = tqdm(disable=True)

    def before_train(self, agent: Trainer) -> None:
        state = agent.state
        steps = len(agent.epoch_batches(state.epoch))
        self.bar = tqdm(total=agent.config.trainer.epochs * steps, initial=state.epoch * steps + state.batch_in_epoch,
                        unit="step", leave=False, disable=None if self.enabled else True, dynamic_ncols=True)

    def before_epoch(self, agent: Trainer, epoch: int) -> None:
        self.bar.set_description(f"epoch {epoch + 1}/{agent.config.trainer.epochs}", refresh=False)

    def after_step(self, agent: Trainer, logs: dict[str, float]) -> None:
        self.bar.update()
        if agent.state.global_step % self.every == 0:
            self.bar.set_postfix(loss=f"{logs['loss']:.4g}", refresh=False)  # drawn at tqdm's own pace

    def after_train(self, agent: Trainer) -> None:
        self.bar.close()


class StopOnSignal(Hook):
    """SIGINT/SIGTERM: finish the batch, save ``last.pt`` and raise :class:`utils.runtime.signals.Interrupted`."""

    def __init__(self, checkpointer: Checkpointer) -> None:
        self.checkpointer = checkpointer
        self.signals: StopSignals | None = None
        self.any_rank: SignalOfAnyRank | None = None

    def before_train(self, agent: Trainer) -> None:
        self.signals = StopSignals(agent.folder.last).__enter__()

    def after_step(self, agent: Trainer, logs: dict[str, float]) -> None:
        if self.signals is not None and self.requested(agent):
            state = agent.state
            self.stop(agent, f"in epoch {state.epoch + 1} after batch {state.batch_in_epoch}/"
                             f"{len(agent.epoch_batches(state.epoch))}")

    def after_epoch(self, agent: Trainer, end: EpochEnd) -> None:
        if self.signals is not None and self.requested(agent):  # arrived during validation
            self.stop(agent, f"after epoch {end.epoch + 1}")

    def requested(self, agent: Trainer) -> bool:
        """A stop signal arrived here or (torchrun, one batch later) at any rank: all stop after the same batch."""
        if self.any_rank is None:
            self.any_rank = SignalOfAnyRank(agent.dist, agent.device)
        if (agreed := self.any_rank.check(self.signals.signum)) is not None:
            self.signals.signum = agreed
        return agreed is not None

    def after_train(self, agent: Trainer) -> None:
        self.any_rank = None  # its last all-reduce ends on its own (waiting could raise over the error in flight)
        if self.signals is not None:
            self.signals.__exit__(None, None, None)
            self.signals = None

    def stop(self, agent: Trainer, where: str) -> None:
        """Save the current state to last.pt, wait until it is on disk and raise Interrupted."""
        self.checkpointer.save(agent)
        self.checkpointer.wait()
        signum = self.signals.signum
        raise Interrupted(signum, f"{signal_name(signum)} received: stopped {where} (step "
                                  f"{agent.state.global_step}); saved {agent.folder.last}", saved=True)
