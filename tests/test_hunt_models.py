"""Bugs found hunting in the models and their training numerics, each pinned by the user's situation."""
from __future__ import annotations

import pytest
import torch

from agents.base import BaseAgent
from graphs.kernels import native
from graphs.kernels.native import rnn_loops
from graphs.models.recurrent_autoencoder import RecurrentAutoencoder
from tests.helpers import TINY_VAE, run_main


def _adam_steps(model: RecurrentAutoencoder, x: torch.Tensor, steps: int = 2) -> dict[str, torch.Tensor]:
    optimizer = torch.optim.Adam(model.parameters(), lr=0.05)
    for _ in range(steps):
        optimizer.zero_grad()
        (model(x) - x).abs().mean().backward()
        optimizer.step()
    return model.state_dict()


def test_gru_free_running_trains_a_batch_of_one_two_step_window_on_both_time_loop_paths(monkeypatch) -> None:
    """A GRU decoder running free on windows of 2 steps, in a batch of one window (the last batch of an epoch):
    before, the Python loops (no compiler, ANOMALY_NATIVE_RNN=0) raised torch's 'A view was created in no_grad
    mode ...' RuntimeError in backward, as the gate buffer was a view of the bias it was filled from."""
    x = torch.randn(1, 2, 3)

    def trained() -> dict[str, torch.Tensor]:
        torch.manual_seed(0)
        return _adam_steps(RecurrentAutoencoder(2, 3, hidden_size=4, cell="gru", teacher_forcing=False).train(), x)

    with_cpp = trained() if rnn_loops() is not None else None
    monkeypatch.setattr(native, "_ops", None)  # as without a compiler
    in_python = trained()
    if with_cpp is not None:
        assert all(torch.equal(with_cpp[name], in_python[name]) for name in in_python)


@pytest.mark.parametrize("value", [float("inf"), float("nan")])
def test_a_validation_loss_that_is_not_finite_stops_the_run_naming_what_to_change(tmp_path, capsys, monkeypatch,
                                                                                  value) -> None:
    """A learning rate so high that the training loss stays finite but the validation loss overflows (a VAE at
    learning rate 10 gave train 3.7e22, val inf): before, the epoch was never the best, no best.pt was written and
    the run ended 'best.pt: checkpoint not found'; now it stops as a non-finite training loss does."""
    evaluate_loss = BaseAgent.evaluate_loss
    monkeypatch.setattr(BaseAgent, "evaluate_loss", lambda self, x: {**evaluate_loss(self, x), "loss": value})
    assert run_main("vae_converter.json", tmp_path, *TINY_VAE) == 2
    err = capsys.readouterr().err
    assert f"the validation loss became {value} after step " in err and "(epoch 1)" in err, err
    assert "no checkpoint was written yet" in err and "Lower trainer.learning_rate" in err, err
    assert "best.pt" not in err and not (tmp_path / "run").exists()


def test_a_diverged_run_names_the_epoch_its_last_checkpoint_holds(tmp_path, capsys, monkeypatch) -> None:
    """last.pt is rewritten only every trainer.checkpoint_interval_s: a run diverging in epoch 4 whose last write was
    after epoch 1 said 'the last good checkpoint ... (epoch 3) is kept'; it names epoch 1, the one a resume starts
    after."""
    from agents.hooks import Checkpointer
    from utils.runs.checkpoints import load_checkpoint

    after_epoch = Checkpointer.after_epoch

    def first_epoch_only(self, agent, end):  # as if the interval had passed after epoch 1 alone
        self.interval_s = 0 if end.epoch == 0 else 1e9
        after_epoch(self, agent, end)
    compute_loss = BaseAgent.compute_loss

    def poisoned(self, x, forward=None):
        logs = compute_loss(self, x, forward)
        return {**logs, "loss": logs["loss"] * float("nan")} if self.model.training and self.state.epoch == 3 else logs
    monkeypatch.setattr(Checkpointer, "after_epoch", first_epoch_only)
    monkeypatch.setattr(BaseAgent, "compute_loss", poisoned)
    assert run_main("vae_converter.json", tmp_path, *TINY_VAE, "trainer.epochs=5") == 2
    last = tmp_path / "run" / "checkpoints" / "last.pt"
    assert f"the last good checkpoint {last} (epoch 1) is kept" in capsys.readouterr().err
    assert load_checkpoint(last)["epoch"] == 1


@pytest.mark.parametrize("built", [True, False])
def test_a_lock_left_by_a_killed_build_falls_back_naming_it_instead_of_waiting_forever(monkeypatch, tmp_path,
                                                                                       built) -> None:
    """A build killed hard (SIGKILL, a lost machine) leaves ``lock`` in its folder: before, every later run printed
    'Building the C++ RNN loops' and waited on it forever (torch's lock waits without a deadline), even with the
    library built; now an old lock is named with what to do, and the run goes on with the Python loops."""
    import os
    import time

    import torch.utils.cpp_extension

    monkeypatch.setenv("TORCH_EXTENSIONS_DIR", str(tmp_path))
    monkeypatch.delenv("ANOMALY_NATIVE_RNN", raising=False)
    monkeypatch.setattr(native, "_ops", native._NOT_LOADED)
    monkeypatch.setattr(native, "_registered", lambda: False)
    name = f"anomaly_rnn_loops_{native.build_key()}"
    lock = tmp_path / name / "lock"
    lock.parent.mkdir()
    lock.touch()
    old = time.time() - native.STALE_LOCK_S - 1
    os.utime(lock, (old, old))
    if built:
        (tmp_path / name / f"{name}.so").write_bytes(b"")

    def never(*args, **kwargs):
        raise AssertionError("must not be called: torch's load would wait on the lock forever")
    monkeypatch.setattr(torch.utils.cpp_extension, "load", never)
    monkeypatch.setattr(torch.ops, "load_library", never)
    with pytest.warns(RuntimeWarning, match=f"{lock} is left from a build that did not finish") as record:
        assert native.rnn_loops() is None
    assert "delete it" in str(record[0].message) and "the same results, bit for bit" in str(record[0].message)
