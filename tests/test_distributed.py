"""torchrun with 2 processes on 127.0.0.1 (gloo): ranks stay identical, curves match one process."""
from __future__ import annotations

import os
import re
import subprocess
import sys

import pytest

from tests.helpers import FAST_VAE, REPO_ROOT, run_main
from utils.runs.checkpoints import load_checkpoint

COMMON = [*FAST_VAE, "trainer.epochs=3", "trainer.batch_size=64", "evaluation.make_plots=false"]


def torchrun(tmp_path, *overrides: str, resume: bool = False) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--nnodes=1", "--nproc_per_node=2",
           "--master_addr=127.0.0.1", "--master_port=0", "--rdzv_backend=c10d", "--rdzv_endpoint=127.0.0.1:0",
           str(REPO_ROOT / "main.py"), str(REPO_ROOT / "configs" / "vae_converter.json"),
           "--set", f"experiments_dir={tmp_path}"]
    for item in overrides:
        cmd += ["--set", item]
    if resume:
        cmd.append("--resume")
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)


def test_two_processes_match_one(tmp_path):
    proc = torchrun(tmp_path, *COMMON, "exp_name=ddp")
    assert proc.returncode == 0, proc.stderr[-3000:]
    log = (tmp_path / "ddp" / "logs" / "train.log").read_text()
    digests = re.search(r"Weights digest per rank: (\S+) (\S+) \(identical\)", log)
    assert digests and digests.group(1) == digests.group(2), log[-2000:]
    assert "2 processes" in log
    assert run_main("vae_converter.json", tmp_path, *COMMON, "exp_name=single") == 0
    ddp = load_checkpoint(tmp_path / "ddp" / "checkpoints" / "last.pt")
    single = load_checkpoint(tmp_path / "single" / "checkpoints" / "last.pt")
    assert ddp["global_step"] == single["global_step"]  # same global batch -> same number of steps
    for key in ("train", "val"):
        assert ddp["history"][key] == pytest.approx(single["history"][key], rel=0.05), key
    assert (tmp_path / "ddp" / "out" / "metrics.json").is_file()


def test_resume_under_torchrun(tmp_path):
    assert torchrun(tmp_path, *COMMON, "trainer.epochs=2", "exp_name=r").returncode == 0
    proc = torchrun(tmp_path, *COMMON, "trainer.epochs=3", "exp_name=r", resume=True)
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert load_checkpoint(tmp_path / "r" / "checkpoints" / "last.pt")["epoch"] == 3
    assert "Resuming at epoch 3" in (tmp_path / "r" / "logs" / "train.log").read_text()


def test_nproc_per_node_launches_the_processes_and_keeps_exit_2(tmp_path):
    """main.py --nproc-per-node 2: a data mistake found in the processes exits 2 with its line and no traceback
    (torchrun would exit 1 with its own); a config mistake exits 2 before any process starts; a run trains."""
    env = {**os.environ, "OMP_NUM_THREADS": "1"}

    def launch(config: str, *overrides: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, str(REPO_ROOT / "main.py"), str(REPO_ROOT / "configs" / config), "--nproc-per-node",
               "2", "--set", f"experiments_dir={tmp_path}"]
        for item in overrides:
            cmd += ["--set", item]
        return subprocess.run(cmd, capture_output=True, text=True, timeout=300, cwd=tmp_path, env=env)

    missing = launch("example_csv.json", "data.path=absent.csv")
    assert missing.returncode == 2 and "Traceback" not in missing.stderr, missing.stderr[-2000:]
    assert "error: data.path: file not found: absent.csv" in missing.stderr
    config = launch("vae_converter.json", "trainer.epochs=-1")
    assert config.returncode == 2 and config.stderr.count("\n") == 1 and "trainer.epochs" in config.stderr
    run = launch("vae_converter.json", *COMMON, "trainer.epochs=1", "exp_name=launched")
    assert run.returncode == 0, run.stderr[-3000:]
    assert "2 processes" in (tmp_path / "launched" / "logs" / "train.log").read_text()


@pytest.mark.parametrize("env, place", [({}, (0, 1, 0)), ({"WORLD_SIZE": "1", "RANK": "3"}, (0, 1, 0)),
                                        ({"WORLD_SIZE": "2", "RANK": "1", "LOCAL_RANK": "1"}, (1, 2, 1)),
                                        ({"WORLD_SIZE": "4", "RANK": "0"}, (0, 4, 0))])
def test_one_reader_of_torchrun_variables_for_the_quiet_ranks_and_the_process_group(monkeypatch, env, place):
    """other_rank (before any process group, without torch.distributed) and init_from_env read one rule."""
    import torch
    import torch.distributed as dist

    from utils.runtime.distributed import DistInfo, init_from_env
    from utils.runtime.signals import other_rank, torchrun_place

    for name in ("RANK", "WORLD_SIZE", "LOCAL_RANK"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    joined = []
    monkeypatch.setattr(dist, "is_initialized", lambda: False)
    monkeypatch.setattr(dist, "init_process_group", lambda backend: joined.append(backend))
    assert torchrun_place() == place and other_rank() == (place[0] > 0)
    assert init_from_env(torch.device("cpu")) == DistInfo(*place) and joined == (["gloo"] if place[1] > 1 else [])
    code = "import sys, utils.runtime.signals; print('torch.distributed' in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=REPO_ROOT,
                          check=True).stdout.strip() == "False"
