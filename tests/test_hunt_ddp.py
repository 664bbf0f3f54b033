"""Multi-process training as a user meets it: stopping a `main.py --nproc-per-node 2` run."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time

import pytest

from tests.helpers import FAST_VAE, REPO_ROOT
from utils.runs.checkpoints import load_checkpoint


@pytest.mark.slow
def test_sigterm_to_the_launcher_stops_both_ranks_at_the_same_batch(tmp_path):
    """SIGTERM to the launcher mid-training: it passes the signal on, both ranks stop after the same batch (before,
    the rank that saw it later started the next batch alone and died in gloo with a traceback), last.pt is whole,
    and the launcher exits 143 (before: 1 and a SignalException traceback)."""
    cmd = [sys.executable, str(REPO_ROOT / "main.py"), str(REPO_ROOT / "configs" / "vae_converter.json"),
           "--nproc-per-node", "2"]
    for item in (*FAST_VAE, "trainer.epochs=500", "trainer.batch_size=8", "evaluation.make_plots=false",
                 f"experiments_dir={tmp_path}", "exp_name=stopped"):
        cmd += ["--set", item]
    log = tmp_path / "stopped" / "logs" / "train.log"
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=tmp_path,
                            env={**os.environ, "OMP_NUM_THREADS": "1"})
    try:
        deadline = time.monotonic() + 120
        while not (log.is_file() and "epoch 2/500" in log.read_text()) and time.monotonic() < deadline:
            assert proc.poll() is None, proc.communicate()[1][-3000:]
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, stderr = proc.communicate(timeout=120)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 143, stderr[-3000:]
    assert "Traceback" not in stderr, stderr[-3000:]
    assert stderr.count("saved " + str(tmp_path / "stopped" / "checkpoints" / "last.pt")) == 2, stderr[-3000:]
    assert load_checkpoint(tmp_path / "stopped" / "checkpoints" / "last.pt")["global_step"] > 0
