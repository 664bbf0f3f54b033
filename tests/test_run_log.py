"""logs/train.log holds every line the console showed for the run, those logged before the file existed included."""
from __future__ import annotations

import json
import re

import numpy as np
import torch

import main

#: The prefix train.log gives each record (utils.runtime.logger.setup_logging), which the console does not.
PREFIX = re.compile(r"(?m)^\d{4}-\d\d-\d\d \d\d:\d\d:\d\d,\d{3} (?:INFO|WARNING|ERROR|CRITICAL) ")


def test_train_log_holds_the_console_lines_logged_while_the_data_load_and_on_a_resume(tmp_path, capsys):
    rows = np.random.default_rng(0).normal(size=(400, 2))
    (tmp_path / "tiny.csv").write_text("a,b\n" + "".join(f"{a:.4f},{b:.4f}\n" for a, b in rows))
    config = {"exp_name": "run", "agent": "vae", "seed": 0, "device": "cpu", "experiments_dir": str(tmp_path),
              "data": {"name": "csv", "path": str(tmp_path / "tiny.csv"), "window_length": 10, "stride": 10},
              "model": {"name": "vae", "hidden_sizes": [8], "latent_dim": 2, "output_activation": "none"},
              "loss": {"name": "vae", "reconstruction": "mse", "beta": 1e-05},
              "trainer": {"epochs": 1, "batch_size": 16, "progress_bar": False},
              "evaluation": {"make_plots": False, "scores": ["reconstruction"], "baselines": []}}
    path = tmp_path / "tiny.json"
    path.write_text(json.dumps(config))
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
