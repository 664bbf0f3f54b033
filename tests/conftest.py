"""Fixtures shared by the test suite."""
from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

# One intra-op thread per process: the models here are small, so a second thread buys little,
# and on a busy 2-core machine oversubscribed OpenMP threads slow training tenfold. Subprocesses
# started by tests inherit the variable.
os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(int(os.environ["OMP_NUM_THREADS"]))

REPO_ROOT = Path(__file__).resolve().parents[1]
SHARED_ECG_DIR = REPO_ROOT.parent / "shared" / "data" / "ECG5000"


@pytest.fixture
def warnings_seen(caplog, monkeypatch) -> pytest.LogCaptureFixture:
    """caplog seeing the product's "anomaly" logger at WARNING (a run set up before stops it propagating:
    :func:`utils.runtime.logger.setup_logging`)."""
    monkeypatch.setattr(logging.getLogger("anomaly"), "propagate", True)
    caplog.set_level(logging.WARNING, logger="anomaly")
    return caplog


@pytest.fixture(scope="session")
def shared_ecg_dir() -> Path:
    """The shared ECG5000 TRAIN files (../shared/data/ECG5000); skip when absent."""
    if not (SHARED_ECG_DIR / "ECG5000_TRAIN.txt").exists():
        pytest.skip(f"shared ECG5000 data not found at {SHARED_ECG_DIR}")
    return SHARED_ECG_DIR


@pytest.fixture()
def train_only_dir(tmp_path: Path, shared_ecg_dir: Path) -> Path:
    """tmp_path/ECG5000 holding a copy of the shared TRAIN.txt alone."""
    folder = tmp_path / "ECG5000"
    folder.mkdir()
    shutil.copy(shared_ecg_dir / "ECG5000_TRAIN.txt", folder)
    return folder


class TinyRuns:
    """Finished tiny runs, trained once per test session and shared by every test that asks."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._done: dict[str, Path] = {}

    def of_model(self, model_name: str) -> Path:
        """The run folder of ``model_name``'s tiny run (see :func:`tests.helpers.tiny_model_config`)."""
        if model_name not in self._done:
            import main
            from tests.helpers import tiny_model_config

            config = tiny_model_config(model_name, self.root)
            assert main.main([str(config)]) == 0, f"tiny run of {model_name} failed"
            self._done[model_name] = self.root / f"tiny_{model_name}"
        return self._done[model_name]

    def of_config(self, config: str, *overrides: str) -> Path:
        """The run folder of ``configs/<config>`` with ``--set`` overrides (an exp_name is chosen unless given)."""
        key = "|".join((config, *overrides))
        if key not in self._done:
            from tests.helpers import run_main

            named = [item.split("=", 1)[1] for item in overrides if item.startswith("exp_name=")]
            name = named[-1] if named else f"run{len(self._done)}"
            assert run_main(config, self.root, *overrides, f"exp_name={name}") == 0, f"run {key} failed"
            self._done[key] = self.root / name
        return self._done[key]


@pytest.fixture(scope="session")
def tiny_runs(tmp_path_factory) -> TinyRuns:
    """:class:`TinyRuns` under one session folder."""
    return TinyRuns(tmp_path_factory.mktemp("tiny_runs"))


@pytest.fixture(scope="session")
def finished(tiny_runs) -> Path:
    """A finished tiny VAE run (:data:`tests.helpers.TINY_VAE`), shared: copy it (``run_copy``) to change it."""
    from tests.helpers import TINY_VAE

    return tiny_runs.of_config("vae_converter.json", *TINY_VAE)


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    """A copy of :func:`finished` in ``tmp_path / "run"``, free to damage."""
    import shutil

    shutil.copytree(finished, tmp_path / "run")
    return tmp_path / "run"
