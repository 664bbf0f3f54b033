"""logs/train.log ends as the run did: a failed run's error line, a stopped run's stop and next-step lines, and the
Python warnings raised while it ran (each also shown on the console, once, as before)."""
from __future__ import annotations

import errno
import os
import signal
import warnings

import pytest

import agents.evaluation
import main
from agents.base import BaseAgent
from tests.test_run_log import PREFIX, tiny_unlabelled_run


def log_lines(root) -> list[str]:
    """train.log's lines without the time and level prefix."""
    return PREFIX.sub("", (root / "run" / "logs" / "train.log").read_text(encoding="utf-8")).splitlines()


def test_a_run_that_fails_after_its_folder_exists_ends_its_train_log_with_the_error(tmp_path, monkeypatch, capsys):
    full = tmp_path / "run" / "out" / "metrics.json"

    def evaluate_run(run):
        raise OSError(errno.ENOSPC, "No space left on device", str(full))

    monkeypatch.setattr(agents.evaluation, "evaluate_run", evaluate_run)
    assert main.main([str(tiny_unlabelled_run(tmp_path))]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"error: cannot write {full} (No space left on device)") and err.count("error:") == 1
    assert log_lines(tmp_path)[-1] == err.strip()
    before = log_lines(tmp_path)  # a later call's error before its own run logs: not in this run's file
    assert main.main([str(tmp_path / "tiny.json"), "--set", "trainer.epochs=0"]) == 2
    assert "trainer.epochs" in capsys.readouterr().err and log_lines(tmp_path) == before


def test_a_run_stopped_by_sigint_ends_its_train_log_with_the_stop_and_the_resume_command(tmp_path, monkeypatch,
                                                                                        capsys):
    training_step = BaseAgent.training_step

    def signalling_step(self, x):
        logs = training_step(self, x)
        if self.state.global_step == 1:
            os.kill(os.getpid(), signal.SIGINT)
        return logs

    monkeypatch.setattr(BaseAgent, "training_step", signalling_step)
    assert main.main([str(tiny_unlabelled_run(tmp_path))]) == 130
    err = capsys.readouterr().err
    assert "SIGINT received: stopped in epoch 1 after batch 1/" in err and "Resume with: python main.py" in err
    assert log_lines(tmp_path)[-2:] == err.strip().splitlines()[-2:]


def test_a_warning_raised_while_training_is_in_train_log_and_still_shown(tmp_path, monkeypatch):
    training_step = BaseAgent.training_step

    def warning_step(self, x):
        if self.state.global_step == 0:
            warnings.warn("a warning while training", UserWarning, stacklevel=1)
        return training_step(self, x)

    monkeypatch.setattr(BaseAgent, "training_step", warning_step)
    with pytest.warns(UserWarning, match="a warning while training") as shown:
        assert main.main([str(tiny_unlabelled_run(tmp_path))]) == 0
    assert len([w for w in shown if "a warning while training" in str(w.message)]) == 1
    assert any(line.endswith("UserWarning: a warning while training") for line in log_lines(tmp_path))
    assert warnings.showwarning is warnings._showwarning_orig  # put back once the run ended
