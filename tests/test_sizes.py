"""Sizes checked before allocation: data, model and covariance sizes of a config or checkpoint, and stops
honoured within a fraction of a second during a long SciPy call."""
from __future__ import annotations

import os
import signal
import threading
import time

import pytest
import torch

from agents.detector.detector import Detector
from tests.helpers import REPO_ROOT, run_main
from utils.core.errors import CheckpointError
from utils.runs.checkpoints import load_checkpoint
from utils.runtime.signals import Interrupted, TerminateAsInterrupt, call_interruptibly

FAST = ["trainer.progress_bar=false", "evaluation.make_plots=false", "exp_name=x"]


@pytest.mark.parametrize("config, override, fragments", [
    ("vae_converter.json", "data.time_steps=100000000",
     ["data.n_samples=200, data.time_steps=100000000: the simulated windows would need about 2.3 TiB, more "
      "than the", "of memory available; lower these values"]),
    ("vae_converter.json", "data.n_samples=1000000000",
     ["data.n_samples=1000000000, data.time_steps=100: the simulated windows would need about 11.4 TiB"]),
    ("vae_converter.json", "model.hidden_sizes=[10000000]",
     ["model.hidden_sizes=[10000000], model.latent_dim=64: the 7,940,000,428 parameters of model 'vae' "
      "(time_steps=100, n_features=3) would need about 177.5 GiB"]),
    ("vae_converter.json", "model.latent_dim=5000",
     ["evaluation.scores.2: score 'latent_mahalanobis' would fit a 5000 x 5000 covariance (the model's latent "
      "code; set by model.latent_dim=5000), beyond the 1024 dimensions"]),
    ("conv_ae_converter.json", "data.time_steps=1000",
     ["evaluation.scores.1: score 'error_gaussian' would fit a 3000 x 3000 covariance (the window's 1000 time "
      "steps x 3 features"]),
])
def test_sizes_that_cannot_fit_are_refused_before_anything_is_written(tmp_path, capsys, config, override,
                                                                       fragments):
    code = run_main(config, tmp_path, *FAST, "data.n_samples=200", override)
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err, err
    for fragment in fragments:
        assert fragment in err
    assert not any(tmp_path.iterdir()), "nothing is written before the sizes are known to fit"


def test_a_best_pt_declaring_a_billion_time_steps_is_refused(tiny_runs, tmp_path):
    best = load_checkpoint(tiny_runs.of_model("vae") / "checkpoints" / "best.pt")
    best["model_inputs"]["time_steps"] = best["window_length"] = 10**9
    path = tmp_path / "best.pt"
    torch.save(best, path)
    expected = (rf"{path}: config.model.hidden_sizes=.*, model_inputs.time_steps=1000000000, model_inputs.n_features=3: "
                r"the .* parameters of model 'vae' \(time_steps=1000000000, n_features=3\) would need about")
    with pytest.raises(CheckpointError, match=expected):
        Detector.load(path)


def test_a_stop_signal_is_honoured_during_a_long_call():
    threading.Timer(0.3, os.kill, (os.getpid(), signal.SIGTERM)).start()
    start = time.monotonic()
    with pytest.raises(Interrupted), TerminateAsInterrupt():
        call_interruptibly(time.sleep, 30)
    assert time.monotonic() - start < 2


def test_call_interruptibly_returns_and_raises_like_the_call():
    assert call_interruptibly(sum, [1, 2]) == 3
    with pytest.raises(ZeroDivisionError):
        call_interruptibly(divmod, 1, 0)


@pytest.mark.parametrize("limit, fragment", [
    (1000, "data.path=examples/converter_telemetry.csv: the rows of examples/converter_telemetry.csv would need about "
           "595.2 KiB, more than the 1000 B of memory available"),
    (10**6, "data.window_length=300, data.stride=1: the 6901 windows of examples/converter_telemetry.csv would need "
            "about 118.5 MiB, more than the 976.6 KiB of memory available"),
])
def test_csv_rows_and_overlapping_windows_are_sized_first(tmp_path, capsys, monkeypatch, limit, fragment):
    import utils.runtime.memory as memory

    monkeypatch.setattr(memory, "available_bytes", lambda: limit)
    monkeypatch.chdir(REPO_ROOT)
    code = run_main("example_csv.json", tmp_path, *FAST, "data.window_length=300", "data.stride=1")
    err = capsys.readouterr().err
    assert code == 2 and fragment in err, err
