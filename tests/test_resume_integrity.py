"""Resume integrity: the same config, one process per run folder, printed commands that work, no stale files,
and filesystem errors (no space left) that exit 2 naming the path without leaving a folder that blocks a rerun."""
from __future__ import annotations

import errno
import os
import shlex
import signal
from pathlib import Path

import pytest
import torch

import main
from tests.helpers import REPO_ROOT, TINY_VAE
from utils.runs.run_folder import RunLock

VAE = TINY_VAE


def outcome(capsys, *overrides: str, root: Path, resume: bool = False, mode: tuple[str, ...] = ()) -> tuple[int, str]:
    argv = [str(REPO_ROOT / "configs" / "vae_converter.json"), "--set", f"experiments_dir={root}"]
    for item in (*VAE, *overrides):
        argv += ["--set", item]
    code = main.main([*argv, *(["--resume"] if resume else []), *mode])
    return code, capsys.readouterr().err




def test_resume_refuses_another_data_model_loss_or_seed_naming_the_keys(run_copy, capsys):
    code, err = outcome(capsys, "data.n_samples=400", "model.latent_dim=3", "seed=7", "trainer.batch_size=32",
                        "trainer.epochs=2", root=run_copy.parent, resume=True)
    assert code == 2 and "Traceback" not in err
    assert f"--resume: this config differs from the one {run_copy}/checkpoints/last.pt was trained with in seed " \
           "(42 in the checkpoint, 7 now), data.n_samples (300 in the checkpoint, 400 now), model.latent_dim " \
           "(2 in the checkpoint, 3 now), trainer.batch_size (64 in the checkpoint, 32 now); a resume keeps" in err
    assert "except trainer.epochs, trainer.early_stopping_patience" in err and "--set exp_name=NEW_NAME" in err


@pytest.mark.parametrize("field,value,shown", [
    ("feature_names", ["a", "b", "c"], "['a', 'b', 'c'] but this config's data gives ['voltage', 'current', "
                                       "'temperature']"),
    ("window_length", 0, "0 but this config's data gives 100"),
    ("model_inputs", {"time_steps": 10**9, "n_features": 3}, "{'time_steps': 1000000000, 'n_features': 3} but this"),
    ("feature_names", torch.zeros(3), "tensor([0., 0., 0.]) but this config's data gives"),
])
def test_resume_refuses_a_last_pt_whose_record_of_its_data_is_not_this_data(run_copy, capsys, field, value, shown):
    last = run_copy / "checkpoints" / "last.pt"
    ckpt = torch.load(last, weights_only=True)
    ckpt[field] = value
    torch.save(ckpt, last)
    before = last.read_bytes()
    code, err = outcome(capsys, "trainer.epochs=2", root=run_copy.parent, resume=True)
    assert code == 2 and "Traceback" not in err
    assert f"{last}: field '{field}' holds {shown}" in err and "the checkpoint is damaged" in err
    assert last.read_bytes() == before


def test_resume_may_grow_epochs_but_not_shrink_them(run_copy, capsys):
    (run_copy / "checkpoints" / ".last.pt.x1y2.tmp").write_bytes(b"\0" * 1000)  # a killed write's leftover
    code, err = outcome(capsys, "trainer.epochs=2", "trainer.progress_bar=false", root=run_copy.parent, resume=True)
    assert code == 0, err
    assert not list((run_copy / "checkpoints").glob(".*.tmp")), "stale temporary files are removed at the start"
    code, err = outcome(capsys, "trainer.epochs=1", root=run_copy.parent, resume=True)
    assert code == 2 and f"--resume: trainer.epochs=1 is below the 2 epochs {run_copy}/checkpoints/last.pt has " \
                         "already trained; set trainer.epochs to at least 2" in err


def test_a_second_run_of_a_folder_in_use_is_refused_naming_the_pid(run_copy, capsys):
    lock = RunLock(run_copy)
    lock.acquire()  # as a training process holds it
    try:
        for resume in (True, False):
            code, err = outcome(capsys, "trainer.epochs=2", root=run_copy.parent, resume=resume)
            assert code == 2 and f"{run_copy} is in use by another run (PID {os.getpid()}); wait until it ends" in err
        code, err = outcome(capsys, root=run_copy.parent, mode=("--mode", "export", "--format", "torchscript",
                                                                "--output", str(run_copy.parent / "m.pt")))
        assert code == 2 and f"{run_copy} is being trained now (PID {os.getpid()}): its checkpoints/best.pt " \
                             "changes until that run ends; --mode export once it has finished" in err
    finally:
        lock.release()
    code, err = outcome(capsys, "trainer.epochs=2", root=run_copy.parent, resume=True)
    assert code == 0, err  # released with its descriptor (and so when its process dies, SIGKILL included)


def test_an_early_double_ctrl_c_prints_a_command_that_works(tmp_path, capsys, monkeypatch):
    """Stopped at once after the first epoch ended but before the first checkpoint: the folder holds nothing to
    resume, so it is removed and the printed command starts the run again (it used to print a failing --resume)."""
    from agents.base import BaseAgent

    step = BaseAgent.training_step

    def twice(self, x):
        logs = step(self, x)
        if self.state.global_step == 4:  # in epoch 2 (3 batches an epoch)
            os.kill(os.getpid(), signal.SIGINT)
            os.kill(os.getpid(), signal.SIGINT)
        return logs

    monkeypatch.setattr(BaseAgent, "training_step", twice)
    code, err = outcome(capsys, "trainer.epochs=3", "trainer.checkpoint_interval_s=1000", root=tmp_path)
    monkeypatch.undo()
    run = tmp_path / "run"
    assert code == 130 and "SIGINT received again: stopped at once; no checkpoint had been written yet" in err
    assert f"Nothing was saved yet, so there is nothing to resume; its folder {run} was removed. Start again " \
           "with: python main.py " in err
    assert not run.exists()
    command = shlex.split(err.split("Start again with: ")[1].splitlines()[0])
    assert "--resume" not in command
    assert main.main(command[2:]) == 0


def test_no_space_at_the_start_leaves_no_folder_behind(tmp_path, capsys, monkeypatch):
    import utils.runs.run_folder as run_folder

    def full(path, obj):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(path))

    monkeypatch.setattr(run_folder, "write_json", full)
    code, err = outcome(capsys, root=tmp_path)
    run = tmp_path / "run"
    assert code == 2 and f"cannot write the run folder {run} (No space left on device writing {run}/config.json)" \
                         in err and "Traceback" not in err
    assert not run.exists(), "a failed start must not leave a folder that refuses every rerun"
    monkeypatch.undo()
    assert outcome(capsys, root=tmp_path)[0] == 0


def test_no_space_for_a_checkpoint_exits_2_naming_it(run_copy, capsys, monkeypatch):
    import torch

    def full(obj, handle):
        handle.write(b"PK\3\4")
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    last = run_copy / "checkpoints" / "last.pt"
    before = last.read_bytes()
    monkeypatch.setattr(torch, "save", full)
    handler = signal.getsignal(signal.SIGINT)
    code, err = outcome(capsys, "trainer.epochs=2", root=run_copy.parent, resume=True)
    assert code == 2 and "Traceback" not in err
    # the failed final save stops the hooks after it; the signal hook still gives the caller its handler back
    assert signal.getsignal(signal.SIGINT) is handler
    # epoch 2 improved: best.pt is written first (before last.pt), and fails first
    assert f"cannot write the checkpoint {last.parent}/best.pt (No space left on device); the previous best.pt, if " \
           "any, is kept whole; free some space or fix the permissions, then resume with: python main.py " in err
    assert last.read_bytes() == before and not list(last.parent.glob(".*.tmp"))


def test_a_write_error_outside_the_checkpoints_exits_2_naming_the_path(run_copy, capsys, monkeypatch):
    import agents.evaluation as evaluation

    def full(*args, **kwargs):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), str(run_copy / "out" / "metrics.json"))

    monkeypatch.setattr(evaluation, "write_json", full)
    code, err = outcome(capsys, "trainer.epochs=2", root=run_copy.parent, resume=True)
    assert code == 2 and f"cannot write {run_copy}/out/metrics.json (No space left on device); free some space " \
                         "or fix the permissions, then resume with: python main.py " in err


def test_no_space_for_the_first_checkpoint_removes_the_folder_and_says_start_again(tmp_path, capsys, monkeypatch):
    import torch

    def full(obj, handle):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(torch, "save", full)
    code, err = outcome(capsys, root=tmp_path)
    run = tmp_path / "run"
    assert code == 2 and f"cannot write the checkpoint {run}/checkpoints/best.pt (No space left on device)" in err
    assert f"then start again (nothing was saved yet, so there is nothing to resume; its folder {run} was removed) " \
           "with: python main.py " in err and "--resume" not in err
    assert not run.exists()


def _recorded(run_dir: Path) -> dict[str, bytes]:
    """Every file of a run folder (the lock file's PID aside), by path."""
    return {str(p.relative_to(run_dir)): p.read_bytes() for p in sorted(run_dir.rglob("*"))
            if p.is_file() and p.name != RunLock(run_dir).path.name}


def test_resume_of_a_finished_run_says_so_and_changes_nothing(run_copy, capsys):
    before = _recorded(run_copy)
    assert {"out/metrics.json", "checkpoints/best.pt", "out/report.md"} <= set(before)
    code = main.main([str(REPO_ROOT / "configs" / "vae_converter.json"), "--set", f"experiments_dir={run_copy.parent}",
                      *[arg for item in VAE for arg in ("--set", item)], "--resume"])
    said = capsys.readouterr()
    assert code == 0, said.err
    assert f"{run_copy} is finished (it trained all 1 epochs of trainer.epochs=1, best epoch 1)" in said.out + said.err
    assert "add --set trainer.epochs=N (N above 1) to --resume" in said.out + said.err
    assert "Resuming" not in said.out + said.err
    assert _recorded(run_copy) == before, "a finished run's --resume rewrote a file it recorded"
