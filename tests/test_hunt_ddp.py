"""Multi-process training as a user meets it: stopping a `main.py --nproc-per-node 2` run and resuming it."""
from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest
import torch

from tests.helpers import FAST_VAE, REPO_ROOT, TINY_VAE, run_main
from utils.runs.checkpoints import load_checkpoint

#: 280 batches of 8 windows an epoch (about 2 s): a stop lands inside the second one.
LONG_EPOCHS = [*FAST_VAE, "data.n_samples=4000", "trainer.epochs=2", "trainer.batch_size=8",
               "evaluation.make_plots=false"]


def launch(tmp_path, name: str, *extra: str) -> subprocess.Popen:
    cmd = [sys.executable, str(REPO_ROOT / "main.py"), str(REPO_ROOT / "configs" / "vae_converter.json"),
           "--nproc-per-node", "2", *extra]
    for item in (*LONG_EPOCHS, f"experiments_dir={tmp_path}", f"exp_name={name}"):
        cmd += ["--set", item]
    return subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})


def finish(proc: subprocess.Popen) -> str:
    """Its standard error once it has ended (killed after 120 s)."""
    try:
        return proc.communicate(timeout=120)[1]
    finally:
        if proc.poll() is None:
            proc.kill()


@pytest.mark.slow
def test_sigterm_mid_epoch_stops_both_ranks_and_the_resume_is_exact(tmp_path):
    """SIGTERM to the launcher inside epoch 2: both ranks stop after the same batch (before, the rank that saw it
    later began the next batch alone and died in gloo with a traceback), the launcher exits 143 (before: 1 and a
    SignalException traceback), and the resume ends with the weights and the loss history of an uninterrupted run
    (before, the stopped epoch's train loss counted rank 0's batches twice and rank 1's not at all)."""
    log = tmp_path / "stopped" / "logs" / "train.log"
    proc = launch(tmp_path, "stopped")
    deadline = time.monotonic() + 120
    while not (log.is_file() and "epoch 1/2" in log.read_text()) and time.monotonic() < deadline:
        assert proc.poll() is None, finish(proc)[-3000:]
        time.sleep(0.05)
    time.sleep(0.3)
    proc.send_signal(signal.SIGTERM)
    stderr = finish(proc)
    assert proc.returncode == 143 and "Traceback" not in stderr, stderr[-3000:]
    # rank 0 alone prints the stop, once (before: once per rank); both ranks stopped mid-epoch (the resume is exact)
    assert stderr.count("received: stopped in epoch 2 after batch") == 1, stderr[-3000:]
    assert stderr.count("SIGTERM received: saving a checkpoint") == 1, stderr[-3000:]
    for name, extra in (("stopped", ["--resume"]), ("whole", [])):  # one after the other
        run = launch(tmp_path, name, *extra)
        stderr = finish(run)
        assert run.returncode == 0, stderr[-3000:]
    resumed, whole = (load_checkpoint(tmp_path / name / "checkpoints" / "last.pt") for name in ("stopped", "whole"))
    assert resumed["global_step"] == whole["global_step"]
    for key in whole["model"]:
        assert torch.equal(resumed["model"][key], whole["model"][key]), key
    assert resumed["history"]["train"] == pytest.approx(whole["history"]["train"], rel=1e-9)



def test_a_warning_and_an_error_are_printed_once_not_once_per_process(tmp_path):
    """A CSV whose labels mark every row anomalous: its warning, then the error that stops every rank (no normal
    window to train on), each printed once by `--nproc-per-node 2` (before: once per process), still exit 2."""
    csv = tmp_path / "all_labelled.csv"
    csv.write_text("a,b,label\n" + "".join(f"{i % 7},{i % 5},1\n" for i in range(200)))
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "main.py"), str(REPO_ROOT / "configs" / "example_csv.json"),
                           "--nproc-per-node", "2", "--set", f"data.path={csv}", "--set", "data.timestamp_column=null",
                           "--set", f"experiments_dir={tmp_path}"], capture_output=True, text=True, timeout=300,
                          cwd=tmp_path, env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-3000:]
    assert proc.stdout.count("\n") == 1 and "mark every row anomalous" in proc.stdout, proc.stdout
    assert proc.stderr.count("\n") == 1 and "error: the train stretch (rows 0..139) holds no window" in proc.stderr


def test_a_resume_with_another_process_count_says_so(run_copy, capsys):
    """A run started with 2 processes and resumed with 1 goes on, but not bit-identically: one warning names both
    counts (before: nothing); a resume with the run's own count says nothing."""
    overrides = [*TINY_VAE, "trainer.epochs=2"]
    assert run_main("vae_converter.json", run_copy.parent, *overrides, resume=True) == 0
    assert "Resuming with" not in capsys.readouterr().out
    environment = run_copy / "environment.json"
    data = json.loads(environment.read_text())
    assert data["invocations"][0]["numerics"]["processes"] == 1  # recorded by every run
    data["invocations"][0]["numerics"]["processes"] = 2  # as `--nproc-per-node 2` records it
    environment.write_text(json.dumps(data))
    assert run_main("vae_converter.json", run_copy.parent, *overrides[:-1], "trainer.epochs=3", resume=True) == 0
    out = capsys.readouterr().out
    assert out.count("Resuming with 1 process a run started with 2 processes: it goes on, but not bit-identically") == 1


@pytest.mark.parametrize("left, unseen", [
    ({0: "error: A", 1: "error: A"}, []),  # rank 0 printed the error the other rank met too
    ({1: "error: A"}, ["rank 1: error: A"]),  # rank 1 alone met it (rank 0 was stopped first): nobody printed it
    ({0: "error: A", 1: "error: B", 2: "error: B", 3: "error: C"}, ["rank 1: error: B", "rank 3: error: C"]),
    ({1: "\nSIGTERM received: stopped"}, []),  # a stop line needs no second copy
])
def test_an_error_met_only_by_a_rank_that_prints_nothing_is_still_announced(left, unseen, tmp_path):
    import main
    for rank, text in left.items():
        (tmp_path / str(rank)).write_text(text)
    assert main.unseen_errors(tmp_path) == unseen
