"""Helpers shared by tests: the command line run in-process, tiny settings, brute-force references."""
from __future__ import annotations

import json
from pathlib import Path

import main
from datasets.splits import NORMAL

REPO_ROOT = Path(__file__).resolve().parents[1]

FAST_VAE = [
    "data.n_samples=600", "trainer.epochs=3", "trainer.progress_bar=false", "model.hidden_sizes=[32]",
    "model.latent_dim=4",
]


def run_main(config: str, tmp_path: Path, *overrides: str, resume: bool = False) -> int:
    """Run ``main.main`` on ``configs/<config>`` with experiments under ``tmp_path``."""
    argv = [str(REPO_ROOT / "configs" / config), "--set", f"experiments_dir={tmp_path}"]
    for item in overrides:
        argv += ["--set", item]
    if resume:
        argv.append("--resume")
    return main.main(argv)


def scalar_events(summaries: Path, tag: str) -> list[tuple[int, float]]:
    """(step, value) pairs of a scalar tag as TensorBoard reads them (purged steps dropped)."""
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    acc = EventAccumulator(str(summaries), size_guidance={"scalars": 0})
    acc.Reload()
    return [(e.step, e.value) for e in acc.Scalars(tag)]

#: The data of every model's tiny run: simulated converter windows, no file needed.
# A tiny VAE run (one epoch) for tests that damage or resume a finished run folder (conftest: run_copy).
TINY_VAE = ["data.n_samples=300", "trainer.epochs=1", "trainer.progress_bar=false", "model.hidden_sizes=[8]",
            "model.latent_dim=2", "evaluation.make_plots=false", "exp_name=run"]
TINY_DATA = {"name": "converter", "n_samples": 200, "time_steps": 25}
TINY_TRAINER = {"epochs": 2, "batch_size": 32, "progress_bar": False, "checkpoint_interval_s": 0}


def shipped_configs() -> dict[str, dict]:
    """Every config of ``configs/`` by file stem."""
    return {path.stem: json.loads(path.read_text()) for path in sorted((REPO_ROOT / "configs").glob("*.json"))}


def tiny_model_config(model_name: str, root: Path) -> Path:
    """A tiny run of ``model_name`` written to ``root``: its first shipped config (model, loss, scaler and
    scores as shipped) on :data:`TINY_DATA` for :data:`TINY_TRAINER`, without figures."""
    found = [cfg for cfg in shipped_configs().values() if cfg["model"]["name"] == model_name]
    assert found, f"model {model_name!r} has no config in configs/: add one (a new model is its file plus a config)"
    config = json.loads(json.dumps(found[0]))
    config.update(exp_name=f"tiny_{model_name}", experiments_dir=str(root), data=dict(TINY_DATA))
    config["trainer"] = {**config.get("trainer", {}), **TINY_TRAINER}
    config["evaluation"] = {**config.get("evaluation", {}), "make_plots": False}
    path = root / f"tiny_{model_name}.json"
    path.write_text(json.dumps(config))
    return path


def run_test_split(run_dir: Path):
    """The test split (raw windows, labels, kinds) of a finished run, rebuilt from its saved config and seed."""
    import agents  # noqa: F401  (fills the registries)
    from utils.core.config import load_config
    from utils.core.registry import DATASETS

    config = load_config(run_dir / "config.json")
    params = {key: value for key, value in config.data.items() if key != "name"}
    return DATASETS.get(config.data.name)(seed=config.seed, **params).test


def brute_ranges(labels, kinds):
    """Runs of anomalous rows of one kind, row by row."""
    out, start = [], None
    for i in range(len(labels) + 1):
        key = (labels[i], kinds[i]) if i < len(labels) else (0, NORMAL)
        if start is not None and key != (1, kinds[start]):
            out.append((start, i, str(kinds[start])))
            start = None
        if start is None and i < len(labels) and labels[i]:
            start = i
    return out


def trained_csv_run(root: Path, name: str, data: dict) -> Path:
    """Train a tiny VAE (one epoch, the reconstruction score, no baselines) on a ``csv`` data section under ``root``;
    returns its config file, which ``--mode score`` takes."""
    config = {"exp_name": name, "agent": "vae", "seed": 0, "device": "cpu", "experiments_dir": str(root),
              "data": {"name": "csv", **data},
              "model": {"name": "vae", "hidden_sizes": [8], "latent_dim": 2, "output_activation": "none"},
              "loss": {"name": "vae", "reconstruction": "mse", "beta": 1e-05},
              "trainer": {"epochs": 1, "batch_size": 64, "progress_bar": False},
              "evaluation": {"make_plots": False, "scores": ["reconstruction"], "baselines": []}}
    path = root / f"{name}.json"
    path.write_text(json.dumps(config))
    assert main.main([str(path)]) == 0
    return path
