"""Item 7 of benchmarks/speed.py: each shipped config's wall time at trainer.threads=1 (the default) against
trainer.threads=null (torch's own choice: every CPU, 2 on the 2-core development machine), quiet and beside
one busy process (a child spinning a torch matmul loop on 2 threads, as another user's job would).

The two settings alternate (A B B A ...), so load from elsewhere hits both alike; rows give medians and the
ratio threads=1 / threads=null measured in the same run. ``--quick``: one config on tiny sizes, one repeat.
"""
from __future__ import annotations

import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.speed_common import REPO_ROOT, SHARED_ECG, Row, format_row
from benchmarks.speed_system import _run_main, child_env

SHARED_SKAB = REPO_ROOT.parent / "shared" / "data" / "SKAB"
#: A busy neighbour: a torch matmul loop on 2 threads until it is killed.
BUSY = ("import torch; torch.set_num_threads(2); a = torch.rand(512, 512)\n"
        "while True: a = torch.tanh(a @ a)")
QUICK = ["data.n_samples=200", "data.time_steps=25", "trainer.epochs=2", "evaluation.make_plots=false",
         "evaluation.baselines=[]"]


def shipped_configs() -> list[Path]:
    """Every config of configs/."""
    return sorted((REPO_ROOT / "configs").glob("*.json"))


def data_overrides(config: Path) -> list[str] | None:
    """Overrides that run ``config`` on the shared copy of its data (None: its data is not on this machine)."""
    if "ecg5000" in config.stem:
        return ["data.protocol=merged", "data.download=false", f"data.data_dir={SHARED_ECG}"] \
            if SHARED_ECG.is_dir() else None
    if "skab" in config.stem:
        return ["data.download=false", f"data.data_dir={SHARED_SKAB}"] if SHARED_SKAB.is_dir() else None
    return []


def thread_rows(ctx: Any) -> list[Row]:
    """Rows of item 7: per config and condition, wall time at threads=1 vs threads=null."""
    env = {key: value for key, value in child_env(ctx).items() if key not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    configs = [REPO_ROOT / "configs" / "vae_converter.json"] if ctx.quick else shipped_configs()
    rows = []
    for config in configs:
        overrides = data_overrides(config)
        if overrides is None:
            print(f"    7: {config.name} skipped: its data is not on this machine", flush=True)
            continue
        overrides += QUICK if ctx.quick else []
        for busy in [condition == "busy" for condition in ctx.conditions]:
            rows.append(_compare(ctx, env, config, overrides, busy))
            print(f"    measured: {format_row(rows[-1])}", flush=True)  # a config takes minutes: show each
    return rows


def _compare(ctx: Any, env: dict[str, str], config: Path, overrides: list[str], busy: bool) -> Row:
    neighbour = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        walls: dict[str, list[float]] = {"1": [], "null": []}
        for rep in range(ctx.run_repeats):
            for threads in (("1", "null") if rep % 2 == 0 else ("null", "1")):
                name = f"speed_threads_{config.stem}_{threads}_{int(busy)}_{os.getpid()}_{rep}"
                cmd = [sys.executable, "main.py", str(config), "--set", f"experiments_dir={ctx.exp_dir}", "--set",
                       f"exp_name={name}", "--set", f"trainer.threads={threads}", "--set", "trainer.progress_bar=false",
                       *[arg for item in overrides for arg in ("--set", item)]]
                walls[threads].append(_run_main(cmd, env)[0])
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    ours, ref = statistics.median(walls["1"]), statistics.median(walls["null"])
    where = "beside a busy process" if busy else "quiet"
    return Row("7", f"run wall time, {config.stem}, {where}", ours, ref, "s", ours / ref,
               ref_name="the same run at trainer.threads=null (torch's default, the old default)",
               note=f"trainer.threads=1 (the default); median of {len(walls['1'])} runs each, alternated"
                    + ("; the busy process: a torch matmul loop on 2 threads" if busy else "")
                    + ("; quick sizes: " + " ".join(QUICK) if ctx.quick else ""))
