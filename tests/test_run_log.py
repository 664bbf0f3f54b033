"""logs/train.log holds every line the console showed for the run, those logged before the file existed included."""
from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

import main
from tests.helpers import REPO_ROOT

#: The prefix train.log gives each record (utils.runtime.logger.setup_logging), which the console does not.
PREFIX = re.compile(r"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?:INFO|WARNING|ERROR|CRITICAL) ")


def tiny_unlabelled_run(root: Path) -> Path:
    """The config of a one-epoch VAE run (exp_name ``run``) on a CSV of 400 rows without a label column, whose data
    load warns about it before the run folder exists."""
    rows = np.random.default_rng(0).normal(size=(400, 2))
    (root / "tiny.csv").write_text("a,b\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in rows))
    config = {"exp_name": "run", "agent": "vae", "seed": 0, "device": "cpu", "experiments_dir": str(root),
              "data": {"name": "csv", "path": str(root / "tiny.csv"), "window_length": 10, "stride": 10},
              "model": {"name": "vae", "hidden_sizes": [8], "latent_dim": 2, "output_activation": "none"},
              "loss": {"name": "vae", "reconstruction": "mse", "beta": 1e-05},
              "trainer": {"epochs": 1, "batch_size": 16, "progress_bar": False},
              "evaluation": {"make_plots": False, "scores": ["reconstruction"], "baselines": []}}
    path = root / "tiny.json"
    path.write_text(json.dumps(config))
    return path


def test_train_log_holds_the_console_lines_logged_while_the_data_load_and_on_a_resume(tmp_path, capsys):
    path = tiny_unlabelled_run(tmp_path)
    assert main.main([str(path)]) == 0
    first = capsys.readouterr().out
    log = tmp_path / "run" / "logs" / "train.log"
    assert "data: no label column" in first  # logged while the data load, before the run folder exists
    assert PREFIX.sub("", log.read_text(encoding="utf-8")) == first
    torch.set_num_threads(2)  # the run started with 1: the resume logs its thread note before loading the data
    assert main.main([str(path), "--resume", "--set", "trainer.epochs=2"]) == 0
    second = capsys.readouterr().out
    assert "Using 1 threads" in second and "data: no label column" in second
    assert PREFIX.sub("", log.read_text(encoding="utf-8")) == first + second


def test_train_log_of_two_processes_holds_rank_0s_console_lines(tmp_path):
    proc = subprocess.run([sys.executable, str(REPO_ROOT / "main.py"), str(tiny_unlabelled_run(tmp_path)),
                           "--nproc-per-node", "2"], capture_output=True, text=True, timeout=300, cwd=tmp_path,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.count("data: no label column") == 1 and "2 processes" in proc.stdout, proc.stdout
    log = (tmp_path / "run" / "logs" / "train.log").read_text(encoding="utf-8")
    assert PREFIX.sub("", log) == proc.stdout


def test_the_windows_line_names_at_most_twelve_features_then_counts_them(tmp_path, capsys):
    path = tiny_unlabelled_run(tmp_path)
    rows = np.random.default_rng(1).normal(size=(400, 30))
    names = [f"sensor_{i:02d}" for i in range(30)]
    (tmp_path / "tiny.csv").write_text(",".join(names) + "\n" + "".join(",".join(f"{v:.4f}" for v in r) + "\n"
                                                                       for r in rows))
    assert main.main([str(path)]) == 0
    line = next(line for line in capsys.readouterr().out.splitlines() if line.startswith("Windows (N, T, F)"))
    assert line.endswith("features " + ", ".join(names[:12]) + ", ... (30 in all)")
