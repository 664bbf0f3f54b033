"""TensorBoard for real: the actual server, started over a finished run, serves what the run logged.

The test trains a tiny VAE run, starts ``python -m tensorboard.main`` on 127.0.0.1 on a free port
(with the experiments folder as logdir, as the README says), reads the run's tags and values through
TensorBoard's HTTP API and compares them with the event files (EventAccumulator), the history in
``checkpoints/last.pt`` and ``out/metrics.json``. All traffic stays on 127.0.0.1; the server is
stopped in a ``finally`` block.
"""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import torch

from tests.helpers import FAST_VAE, REPO_ROOT, run_main, scalar_events

pytest.importorskip("tensorboard", reason="tensorboard is not installed")

HOST = "127.0.0.1"
START_TIMEOUT_S = 60.0  # total time allowed for the server to answer and load the run
BIND_ATTEMPTS = 3  # a free port can be taken between picking and binding it: retry with another
EPOCH_TAGS = ("epoch/train", "epoch/val", "epoch/learning_rate", "epoch/train_recon", "epoch/train_kl",
              "epoch/val_recon", "epoch/val_kl", "epoch/seconds", "epoch/epoch")
STEP_TAGS = ("step/loss", "step/recon", "step/kl")
SCORES = ("reconstruction", "latent_euclidean", "latent_mahalanobis")
# an HTTP client that never uses a proxy from the environment: only 127.0.0.1 is contacted
_OPENER = urllib.request.build_opener(urllib.request.ProxyHandler({}))


def _free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((HOST, 0))
        return sock.getsockname()[1]


def _get_json(port: int, path: str, **params: str) -> object:
    query = f"?{urllib.parse.urlencode(params)}" if params else ""
    with _OPENER.open(f"http://{HOST}:{port}{path}{query}", timeout=10) as response:
        return json.loads(response.read().decode("utf-8"))


def _stop(proc: subprocess.Popen) -> None:
    """Stop the server and its data-server child: the process group this test started, by its id."""
    if proc.returncode is not None:  # already exited and reaped; its data server exits with it
        return
    if not hasattr(os, "killpg"):
        proc.terminate()
        try:
            proc.wait(timeout=10)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(timeout=10)
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    end = time.monotonic() + 10
    while time.monotonic() < end:  # wait for the exit without reaping, so the group id stays ours
        if os.waitid(os.P_PID, proc.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
            break
        time.sleep(0.1)
    try:
        os.killpg(proc.pid, signal.SIGKILL)  # whatever of the group is left (normally nothing)
    except ProcessLookupError:
        pass
    proc.wait(timeout=10)


def _start_server(logdir: Path, log_file: Path) -> tuple[subprocess.Popen, int, float]:
    """Start TensorBoard and wait until it answers; skip if it cannot start here.

    Returns the process, its port and the time.monotonic() deadline that bounds the whole wait.
    """
    deadline = time.monotonic() + START_TIMEOUT_S
    output = ""
    for _ in range(BIND_ATTEMPTS):
        port = _free_port()
        with open(log_file, "w", encoding="utf-8") as log:
            proc = subprocess.Popen(
                [sys.executable, "-m", "tensorboard.main", "--logdir", str(logdir), "--host", HOST,
                 "--port", str(port), "--reload_interval", "1"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd=REPO_ROOT,
                start_new_session=True)
        try:
            while time.monotonic() < deadline:
                if proc.poll() is not None:
                    break
                try:
                    _get_json(port, "/data/runs")
                    return proc, port, deadline
                except (urllib.error.URLError, ConnectionError, TimeoutError, OSError):
                    time.sleep(0.5)
        except BaseException:
            _stop(proc)
            raise
        _stop(proc)
        output = log_file.read_text(encoding="utf-8", errors="replace")
        if time.monotonic() >= deadline:
            pytest.skip(f"tensorboard server did not answer on {HOST}:{port} within {START_TIMEOUT_S:.0f} s; "
                        f"its output ends with: {output[-500:]!r}")
        if "in use" not in output.lower():  # not a port race: retrying will not help
            break
    pytest.skip(f"tensorboard server could not start on {HOST} (exit code {proc.returncode}); "
                f"its output ends with: {output[-500:]!r}")


def _wait_for_tags(port: int, run: str, wanted: set[str], deadline: float) -> dict:
    """Scalar tags per run once ``run`` is listed with all ``wanted`` tags (the data loads in the background)."""
    tags: dict = {}
    while time.monotonic() < deadline:
        tags = _get_json(port, "/data/plugin/scalars/tags")
        if wanted <= set(tags.get(run, {})):
            return tags
        time.sleep(0.5)
    pytest.fail(f"tensorboard did not serve scalar tags {sorted(wanted)} for run {run!r} within "
                f"{START_TIMEOUT_S:.0f} s; it serves {json.dumps(tags)[:1000]}")


def _served(port: int, run: str, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs of a scalar as the server returns them ([wall_time, step, value] rows)."""
    rows = _get_json(port, "/data/plugin/scalars/scalars", run=run, tag=tag)
    return [(int(step), float(value)) for _, step, value in rows]


def test_tensorboard_server_serves_the_logged_run(tmp_path):
    experiments = tmp_path / "experiments"
    assert run_main("vae_converter.json", experiments, *FAST_VAE, "exp_name=tb", "trainer.log_every_n_steps=5") == 0
    run_dir = experiments / "tb"
    summaries = run_dir / "summaries"
    # runs are named by their folder relative to the logdir
    run, hparams_run = "tb/summaries", "tb/summaries/hparams"

    proc, port, deadline = _start_server(experiments, tmp_path / "tensorboard.log")
    try:
        environment = _get_json(port, "/data/environment")
        assert Path(environment["data_location"]) == experiments
        tags = _wait_for_tags(port, run, set(EPOCH_TAGS) | set(STEP_TAGS), deadline)
        while hparams_run not in tags and time.monotonic() < deadline:
            time.sleep(0.5)
            tags = _get_json(port, "/data/plugin/scalars/tags")
        assert set(_get_json(port, "/data/runs")) == {run, hparams_run}

        # every scalar tag of the event files is served, with the same steps and values
        from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

        acc = EventAccumulator(str(summaries), size_guidance={"scalars": 0})
        acc.Reload()
        assert set(tags[run]) == set(acc.Tags()["scalars"])
        for tag in tags[run]:
            served, logged = _served(port, run, tag), scalar_events(summaries, tag)
            assert [s for s, _ in served] == [s for s, _ in logged], tag
            assert [v for _, v in served] == pytest.approx([v for _, v in logged], rel=1e-6), tag

        # the epoch curves are the history the checkpoint holds (float32 in the event file)
        ckpt = torch.load(run_dir / "checkpoints" / "last.pt", weights_only=True, map_location="cpu")
        history = ckpt["history"]
        assert ckpt["epoch"] == 3
        for tag, key in (("epoch/train", "train"), ("epoch/val", "val"), ("epoch/learning_rate", "lr"),
                         ("epoch/train_recon", "train_recon"), ("epoch/val_kl", "val_kl")):
            served = _served(port, run, tag)
            assert [s for s, _ in served] == [ckpt["global_step"] // 3 * k for k in (1, 2, 3)], tag  # epoch ends
            assert [v for _, v in served] == pytest.approx(history[key], rel=1e-6), tag
        step_loss = _served(port, run, "step/loss")
        assert step_loss and all(0 < s <= ckpt["global_step"] for s, _ in step_loss)

        # the final metrics in the hparams run match out/metrics.json
        metrics = json.loads((run_dir / "out" / "metrics.json").read_text())
        for name in SCORES:
            for key in ("roc_auc", "pr_auc"):
                served = _served(port, hparams_run, f"final/{name}_{key}")
                assert served and served[-1][1] == pytest.approx(metrics["scores"][name][key], rel=1e-6)

        # figures and PR curves are served by their plugins as well
        images = _get_json(port, "/data/plugin/images/tags")[run]
        assert {"figures/loss_curves", "figures/roc_pr_curves", "figures/reconstructions"} <= set(images)
        assert {f"pr_curve/{name}" for name in SCORES} <= set(_get_json(port, "/data/plugin/pr_curves/tags")[run])
    finally:
        _stop(proc)
    assert proc.poll() is not None
