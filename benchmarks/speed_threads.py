"""Item 7 of benchmarks/speed.py: each shipped config's wall time at trainer.threads=1 (the default) against
trainer.threads=null (torch's own choice: every CPU, 2 on the 2-core development machine), quiet and beside
one busy process (a child spinning a torch matmul loop on 2 threads, as another user's job would).

The two settings alternate (A B B A ...), so load from elsewhere hits both alike; rows give medians and the
ratio threads=1 / threads=null measured in the same run. ``--quick``: one config on tiny sizes, one repeat.
"""
from __future__ import annotations

import json
import os
import statistics
import subprocess
import sys
from pathlib import Path
from typing import Any

from benchmarks.speed_common import REPO_ROOT, SHARED_ECG, Row, format_row
from benchmarks.speed_system import _run_main, child_env
from utils.runs.run_folder import RunFolder

SHARED_SKAB = REPO_ROOT.parent / "shared" / "data" / "SKAB"
#: A busy neighbour: a torch matmul loop on 2 threads until it is killed.
BUSY = ("import torch; torch.set_num_threads(2); a = torch.rand(512, 512)\n"
        "while True: a = torch.tanh(a @ a)")
QUICK = ["data.n_samples=200", "data.time_steps=25", "trainer.epochs=2", "evaluation.make_plots=false",
         "evaluation.baselines=[]"]


def shipped_configs() -> list[Path]:
    """Every config of configs/."""
    return sorted((REPO_ROOT / "configs").glob("*.json"))


def data_overrides(config: Path, ecg: Path | None = None, skab: Path | None = None) -> list[str] | None:
    """Overrides that run ``config`` on its data in ``ecg`` or ``skab`` (speed.py's ``--data-dir``, ``--skab-dir``;
    default: the shared copy), None where that folder is not on this machine."""
    ecg, skab = ecg or SHARED_ECG, skab or SHARED_SKAB
    if "ecg5000" in config.stem:
        return ["data.protocol=merged", "data.download=false", f"data.data_dir={ecg}"] if ecg.is_dir() else None
    if "skab" in config.stem:
        return ["data.download=false", f"data.data_dir={skab}"] if skab.is_dir() else None
    return []


def thread_rows(ctx: Any) -> list[Row]:
    """Rows of item 7: per config and condition, wall time at threads=1 vs threads=null."""
    env = {key: value for key, value in child_env(ctx).items() if key not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS")}
    if ctx.configs:
        configs = [c for c in shipped_configs() if c.stem in ctx.configs]
    else:
        configs = [REPO_ROOT / "configs" / "vae_converter.json"] if ctx.quick else shipped_configs()
    rows, floor = [], torch_floor(env)
    for config in configs:
        overrides = data_overrides(config, ctx.data_dir, ctx.skab_dir)
        if overrides is None:
            print(f"    7: {config.name} skipped: its data is not on this machine", flush=True)
            continue
        overrides += QUICK if ctx.quick else []
        for busy in [condition == "busy" for condition in ctx.conditions]:
            for row in _compare(ctx, env, config, overrides, busy, floor):
                rows.append(row)
                print(f"    measured: {format_row(row)}", flush=True)  # a config takes minutes: show each
    return rows


def _compare(ctx: Any, env: dict[str, str], config: Path, overrides: list[str], busy: bool,
             floor: float) -> list[Row]:
    """The wall-time row, and the row of the fixed cost of the threads=1 runs (all but training and evaluation)."""
    neighbour = subprocess.Popen([sys.executable, "-c", BUSY]) if busy else None
    try:
        walls: dict[str, list[float]] = {"1": [], "null": []}
        fixed: list[float] = []
        for rep in range(ctx.run_repeats):
            for threads in (("1", "null") if rep % 2 == 0 else ("null", "1")):
                name = f"speed_threads_{config.stem}_{threads}_{int(busy)}_{os.getpid()}_{rep}"
                cmd = [sys.executable, "main.py", str(config), "--set", f"experiments_dir={ctx.exp_dir}", "--set",
                       f"exp_name={name}", "--set", f"trainer.threads={threads}", "--set", "trainer.progress_bar=false",
                       *[arg for item in overrides for arg in ("--set", item)]]
                walls[threads].append(_run_main(cmd, env)[0])
                if threads == "1":
                    fixed.append(walls["1"][-1] - timed_phases(Path(ctx.exp_dir) / name))
    finally:
        if neighbour is not None:
            neighbour.kill()
            neighbour.wait()
    ours, ref = statistics.median(walls["1"]), statistics.median(walls["null"])
    where = "beside a busy process" if busy else "quiet"
    wall_row = Row("7", f"run wall time, {config.stem}, {where}", ours, ref, "s", ours / ref,
                   ref_name="the same run at trainer.threads=null (torch's default, the old default)",
                   note=f"trainer.threads=1 (the default); median of {len(walls['1'])} runs each, alternated"
                        + ("; the busy process: a torch matmul loop on 2 threads" if busy else "")
                        + ("; quick sizes: " + " ".join(QUICK) if ctx.quick else ""))
    cost = statistics.median(fixed)
    cost_row = Row("7", f"  fixed cost, {config.stem}, {where}", cost, floor, "s", cost / floor, target="ours <= 3 s",
                   met=cost <= 3.0, ref_name="torch's own floor, measured quiet: python -c 'import gc; gc.disable(); "
                   "import torch; torch.optim.Adam(...); gc.freeze()' (the optimizer's first use imports torch._dynamo)",
                   note="wall time of the threads=1 runs less the training and evaluation each recorded in "
                        "out/metrics.json (seconds.training_this_process, seconds.evaluation): interpreter, "
                        "imports, data, model, run folder")
    return [wall_row, cost_row]


def timed_phases(run_dir: Path) -> float:
    """Seconds a finished run recorded for its training and its evaluation (``out/metrics.json``)."""
    seconds = json.loads(RunFolder(run_dir).metrics.read_text(encoding="utf-8"))["seconds"]
    return seconds["training_this_process"] + seconds["evaluation"]


def torch_floor(env: dict[str, str], repeats: int = 3) -> float:
    """Median wall seconds of a process that imports torch and builds an optimizer: what any training costs
    (started and ended as ``main.py`` is: the garbage collector paused, then frozen, see main.collection_paused)."""
    code = "import gc; gc.disable(); import torch; torch.optim.Adam([torch.zeros(1, requires_grad=True)]); gc.freeze()"
    return statistics.median(_run_main([sys.executable, "-c", code], env)[0] for _ in range(repeats))
