"""Helpers for tests that run the command line in-process."""
from __future__ import annotations

from pathlib import Path

import main

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
