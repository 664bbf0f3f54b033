"""Identical configs give bit-identical runs across processes; the numerics settings are recorded."""
from __future__ import annotations

import errno
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from utils.core.errors import WriteError
from utils.runs.checkpoints import load_checkpoint
from utils.runs.run_folder import RunFolder, record_numerics, source_digest
from utils.runtime.reproducibility import array_digest, numerics, pin_threads, recorded_threads, state_digest

REPO_ROOT = Path(__file__).resolve().parents[1]
TINY = ["data.n_samples=200", "data.time_steps=25", "trainer.epochs=2", "trainer.progress_bar=false",
        "model.hidden_sizes=[32]", "model.latent_dim=4", "evaluation.make_plots=false", "evaluation.baselines=[]"]


def _run(tmp_path: Path, name: str) -> Path:
    argv = [sys.executable, str(REPO_ROOT / "main.py"), str(REPO_ROOT / "configs" / "vae_converter.json")]
    for item in (*TINY, f"experiments_dir={tmp_path}", f"exp_name={name}"):
        argv += ["--set", item]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    done = subprocess.run(argv, cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr[-2000:]
    return tmp_path / name


def test_two_identical_runs_in_separate_processes_are_bit_identical(tmp_path: Path) -> None:
    first, second = _run(tmp_path, "a"), _run(tmp_path, "b")
    assert (first / "out" / "scores.csv").read_bytes() == (second / "out" / "scores.csv").read_bytes()
    weights = [load_checkpoint(run / "checkpoints" / "last.pt")["model"] for run in (first, second)]
    assert weights[0].keys() == weights[1].keys()
    assert all(torch.equal(weights[0][key], weights[1][key]) for key in weights[0])
    record = json.loads((first / "environment.json").read_text())["invocations"][-1]["numerics"]
    assert record["threads"] == 1 and record["environment"]["OMP_NUM_THREADS"] == "1"
    assert record["rnn_loops"] == "none" and record["deterministic"] is True and "cpu_capability" in record
    invocation = json.loads((first / "environment.json").read_text())["invocations"][-1]
    assert invocation["source_sha256"] == source_digest()  # the code it ran, even uncommitted
    other = json.loads((second / "environment.json").read_text())["invocations"][-1]["numerics"]
    assert len(record["data_sha1"]) == 12 and record["data_sha1"] == other["data_sha1"]
    assert record["weights_at_start_sha1"] == other["weights_at_start_sha1"] != state_digest(weights[0])


def test_digests_see_one_bit_the_shape_and_the_names() -> None:
    ones = torch.ones(4)
    bumped = ones.clone()
    bumped[3] = torch.nextafter(torch.tensor(1.0), torch.tensor(2.0))
    assert array_digest([ones]) == array_digest([ones.numpy().copy()])  # a tensor and its array alike
    assert array_digest([bumped]) != array_digest([ones])
    assert array_digest([ones.reshape(2, 2)]) != array_digest([ones])
    assert array_digest([ones.double()]) != array_digest([ones])
    assert array_digest([ones[:2], ones[2:]]) != array_digest([ones])
    assert state_digest({"w": ones}) == state_digest({"w": ones.clone()}) != state_digest({"v": ones})
    assert state_digest({"w": bumped}) != state_digest({"w": ones})


def test_the_source_digest_changes_with_any_product_file_and_nothing_else(tmp_path: Path) -> None:
    (tmp_path / "main.py").write_text("print('hi')\n")
    (tmp_path / "graphs" / "kernels").mkdir(parents=True)
    (tmp_path / "graphs" / "kernels" / "loops.cpp").write_text("int f();\n")
    (tmp_path / "tests").mkdir()
    first = source_digest(tmp_path)
    assert len(first) == 64 and source_digest(tmp_path) == first
    (tmp_path / "tests" / "test_x.py").write_text("x = 1\n")  # not product code
    (tmp_path / "graphs" / "__pycache__").mkdir()
    (tmp_path / "graphs" / "__pycache__" / "a.py").write_text("stale\n")
    (tmp_path / "graphs" / "kernels" / "loops.so").write_bytes(b"built")
    assert source_digest(tmp_path) == first
    (tmp_path / "graphs" / "kernels" / "loops.cpp").write_text("int g();\n")
    second = source_digest(tmp_path)
    assert second != first
    (tmp_path / "graphs" / "kernels" / "loops.cpp").rename(tmp_path / "graphs" / "loops.cpp")  # same bytes, moved
    assert source_digest(tmp_path) not in (first, second)


def test_a_resumed_run_finds_the_thread_count_it_started_with(tmp_path: Path) -> None:
    path = tmp_path / "environment.json"
    path.write_text(json.dumps({"versions": {}, "invocations": [{"argv": ["main.py"]}]}))
    assert recorded_threads(path) is None
    record_numerics(path, numerics(deterministic=True))
    data = json.loads(path.read_text())
    assert data["invocations"][0]["argv"] == ["main.py"] and data["versions"] == {}
    started = data["invocations"][0]["numerics"]["threads"]
    data["invocations"].append({"argv": ["main.py", "--resume"], "numerics": {"threads": started + 1}})
    path.write_text(json.dumps(data))
    assert recorded_threads(path) == started  # the first invocation's, not the latest
    before = torch.get_num_threads()
    try:
        assert pin_threads(2) == 2 and torch.get_num_threads() == 2
        assert pin_threads(None) == 2  # None keeps the current count
    finally:
        torch.set_num_threads(before)


def test_recording_the_numerics_is_an_atomic_write(tmp_path: Path, monkeypatch) -> None:
    """It wrote environment.json.tmp (a name no cleanup knows) and renamed it: a failed rename raised an OSError
    naming the temporary file and left it behind."""
    path = tmp_path / "environment.json"
    path.write_text(json.dumps({"versions": {}, "invocations": [{"argv": ["main.py"]}]}))
    before = path.read_bytes()

    def full(*args):
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    monkeypatch.setattr(os, "replace", full)
    with pytest.raises(WriteError, match=f"^cannot write {path} .No space left on device.$"):
        record_numerics(path, {"threads": 1})
    assert path.read_bytes() == before and [p.name for p in tmp_path.iterdir()] == ["environment.json"]


def test_the_agent_resumes_on_the_thread_count_the_run_started_with(tmp_path: Path) -> None:
    from types import SimpleNamespace

    from agents.base import BaseAgent

    record_numerics(tmp_path / "environment.json", {"threads": 1})
    before = torch.get_num_threads()

    def agent(threads: int | None) -> SimpleNamespace:
        return SimpleNamespace(folder=RunFolder(tmp_path), config=SimpleNamespace(trainer=SimpleNamespace(threads=threads)))

    try:
        torch.set_num_threads(2)
        BaseAgent.pin_threads(agent(None), resume=False)  # null: torch's own count
        assert torch.get_num_threads() == 2
        BaseAgent.pin_threads(agent(3), resume=False)  # a new run takes trainer.threads
        assert torch.get_num_threads() == 3
        BaseAgent.pin_threads(agent(2), resume=True)  # a resumed run, the count it started with
        assert torch.get_num_threads() == 1
    finally:
        torch.set_num_threads(before)


def test_trainer_threads_defaults_to_one_and_is_validated() -> None:
    from utils.core.config import TrainerConfig

    assert TrainerConfig().threads == 1
    assert TrainerConfig(threads=None).threads is None
    with pytest.raises(ValueError):
        TrainerConfig(threads=0)
