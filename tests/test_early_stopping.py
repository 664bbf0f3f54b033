"""EarlyStopping counts like Keras and Lightning: patience = epochs without improvement after which training stops."""
from __future__ import annotations

from types import SimpleNamespace

import pytest

from agents.hooks import EarlyStopping, EpochEnd
from agents.state import TrainState


def _epochs_run(val_losses: list[float], patience: int | None, min_delta: float = 0.0) -> int:
    """Feed the losses epoch by epoch as BaseAgent.train does; the number of epochs run before the stop."""
    agent = SimpleNamespace(state=TrainState())
    hook = EarlyStopping(patience)
    for epoch, loss in enumerate(val_losses):
        improved = agent.state.update_best(loss, min_delta, epoch)
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
