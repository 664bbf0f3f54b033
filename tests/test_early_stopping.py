"""EarlyStopping counts like Keras and Lightning: patience = epochs without improvement after which training stops."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from agents.hooks import EarlyStopping, EpochEnd
from agents.parts import TrainState


def _epochs_run(val_losses: list[float], patience: int | None, min_delta: float = 0.0, min_delta_rel: float = 0.0,
                lrs: list[float] | None = None, min_learning_rate: float = 0.0) -> int:
    """Feed the losses (and the learning rates the scheduler set after each epoch) epoch by epoch as
    BaseAgent.train does; the number of epochs run before the stop."""
    agent = SimpleNamespace(state=TrainState(), optimizer=SimpleNamespace(param_groups=[{"lr": 1e-3}]))
    hook = EarlyStopping(patience, min_learning_rate)
    for epoch, loss in enumerate(val_losses):
        improved = agent.state.update_best(loss, min_delta, epoch, min_delta_rel)
        agent.optimizer.param_groups[0]["lr"] = lrs[epoch] if lrs else 1e-3
        hook.after_epoch(agent, EpochEnd(epoch, {"loss": loss}, {"loss": loss}, 1e-3, 0.0, improved))
        if agent.state.stopped_early:
            return epoch + 1
    return len(val_losses)


@pytest.mark.parametrize("patience", [1, 3, 20])
def test_training_stops_after_patience_epochs_without_improvement(patience: int) -> None:
    losses = [3.0, 2.0, 1.0] + [1.5] * 50  # best at epoch 3, never improved again
    assert _epochs_run(losses, patience) == 3 + patience


def test_an_improvement_resets_the_count_and_none_never_stops() -> None:
    losses = [1.0, 1.1, 0.9, 1.2, 1.3, 1.4]  # improves at epoch 3; then 3 bad epochs
    assert _epochs_run(losses, 3) == 6
    assert _epochs_run(losses, 4) == 6 and _epochs_run(losses + [0.5], 4) == 7  # not stopped: ran them all
    assert _epochs_run([1.0] + [2.0] * 30, None) == 31


def test_min_delta_counts_a_too_small_gain_as_no_improvement() -> None:
    assert _epochs_run([1.0, 0.999, 0.998], 2, min_delta=0.01) == 3


def test_min_delta_rel_counts_a_gain_below_that_fraction_of_the_best_as_no_improvement() -> None:
    slow = [1.0, 0.9995, 0.999, 0.9985, 0.998]  # gains of 0.05 %
    assert _epochs_run(slow, 2, min_delta_rel=1e-3) == 3
    assert _epochs_run(slow, 2, min_delta_rel=1e-4) == 5  # each gain counts
    assert _epochs_run([1.0, 0.5, 0.2, 0.1, 0.1], 1, min_delta_rel=0.4) == 5  # 50 % and 60 % gains count
    assert _epochs_run([-1.0, -1.0005, -1.01, -1.01], 1, min_delta_rel=1e-3) == 2  # negative losses: of |best|


def test_a_learning_rate_below_the_floor_stops_training() -> None:
    lrs = [1e-3, 1e-4, 1e-5, 1e-6, 1e-7, 1e-8]
    improving = [1.0 - 0.1 * i for i in range(6)]
    assert _epochs_run(improving, 20, lrs=lrs, min_learning_rate=1e-6) == 5  # the scheduler set 1e-7 after epoch 5
    assert _epochs_run(improving, 20, lrs=lrs, min_learning_rate=0.0) == 6


@pytest.mark.parametrize("scheduler, floor", [("plateau", 1e-6), ("cosine", 0.0), ("none", 0.0)])
def test_the_floor_applies_to_the_plateau_scheduler_only(scheduler: str, floor: float) -> None:
    trainer = SimpleNamespace(early_stopping_patience=5, min_learning_rate=1e-6, scheduler=scheduler)
    assert EarlyStopping.from_config(trainer).min_learning_rate == floor
