"""Process-level measurements of the speed benchmark: items 3 (scoring 100k windows,
in a child process so its peak memory is its own), 5 (start-up and imports) and
6 (whole runs of the default configs).

``python -m benchmarks.speed_system score ...`` is the child of item 3.
"""
from __future__ import annotations

import argparse
import json
import os
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

from benchmarks.speed_common import (REPO_ROOT, Row, build_agent, config_overrides, interleave, peak_rss_mib,
                                     reset_peak_rss, rss_mib, throughput_row, CONFIGS)

HEAVY = ("matplotlib", "tensorboard", "sklearn", "scipy", "pandas")


def child_env(ctx: Any) -> dict[str, str]:
    """Environment of child processes: the same thread count as this run."""
    env = dict(os.environ, PYTHONPATH=str(REPO_ROOT))
    if ctx.threads:
        env.update(OMP_NUM_THREADS=str(ctx.threads), MKL_NUM_THREADS=str(ctx.threads))
    return env


# ----- 3. scoring ----------------------------------------------------------------------
def scoring(ctx: Any) -> list[Row]:
    """Run the scoring child and turn its JSON into rows."""
    n = 2000 if ctx.quick else 100_000
    cmd = [sys.executable, "-m", "benchmarks.speed_system", "score", "--n", str(n), "--repeats",
           str(ctx.score_repeats), "--experiments-dir", str(ctx.exp_dir)] + (["--quick"] if ctx.quick else [])
    if ctx.threads:
        cmd += ["--threads", str(ctx.threads)]
    if ctx.data_dir:
        cmd += ["--data-dir", str(ctx.data_dir)]
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=child_env(ctx), capture_output=True, text=True, check=False)
    if done.returncode != 0:
        raise RuntimeError(f"scoring child failed:\n{done.stderr[-3000:]}")
    rows = []
    for line in done.stdout.splitlines():
        if not line.startswith("{"):
            continue
        res = json.loads(line)
        rows.append(throughput_row(
            "3", f"scoring {res['n']:,} windows, {res['agent']}", "the model's reconstruction alone, same batches",
            res["n"], "windows/s", res["t_ours"], res["t_ref"],
            note=f"Detector.analyse() (scores and per-sensor contributions): {', '.join(res['scores'])}; "
                 f"torch.inference_mode, batches of {res['batch']}"))
        rows.append(Row("3", f"scoring peak memory, {res['agent']}", res["mem_ours"], res["mem_ref"], "MiB",
                        res["mem_ours"] / max(res["mem_ref"], 1e-9),
                        ref_name="peak of the model's reconstruction alone (lower is better)",
                        note=f"peak RSS above the RSS before the call (clear_refs reset: {res['reset']}); "
                             f"the {res['n']:,} input windows themselves take {res['input_mib']:.1f} MiB"))
    return rows


def score_child(argv: list[str]) -> None:
    """Score ``--n`` windows with each default agent; print one JSON line per agent."""
    import torch

    p = argparse.ArgumentParser()
    p.add_argument("--n", type=int, required=True)
    p.add_argument("--repeats", type=int, default=2)
    p.add_argument("--experiments-dir", type=Path, required=True)
    p.add_argument("--threads", type=int, default=0)
    p.add_argument("--quick", action="store_true")
    p.add_argument("--data-dir", type=Path, default=None)
    args = p.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    for which in ("vae", "lstm"):
        agent = build_agent(which, args.experiments_dir, args.quick, writer=False, data_dir=args.data_dir)
        model, bs = agent.model.eval(), agent.config.evaluation.batch_size
        detector = agent.detector()
        detector.fit(agent.train_x, agent.val_x, agent.config.evaluation.false_alarm_rate)
        with torch.inference_mode():
            pool = torch.cat([agent.train_x, agent.val_x, agent.to_tensor(agent.data.test.x)])
            x = pool.repeat(-(-args.n // len(pool)), 1, 1)[: args.n].clone()
        del pool
        mem = {"ours": 0.0, "ref": 0.0}
        reset_ok = reset_peak_rss()

        def measured(fn: Any, key: str) -> Any:
            def run() -> float:
                reset_peak_rss()
                before = rss_mib()
                with torch.inference_mode():
                    start = time.perf_counter()
                    out = fn()
                    seconds = time.perf_counter() - start
                mem[key] = max(mem[key], peak_rss_mib() - before)
                del out
                return seconds
            return run

        def reference() -> Any:
            return torch.cat([model(part) for part in x.split(bs)])  # noqa: F821 (x: this loop pass's, del'd after)

        t_ours, t_ref = interleave(measured(lambda: detector.analyse(x), "ours"),  # noqa: F821
                                   measured(reference, "ref"),
                                   args.repeats, warmup=False)
        print(json.dumps({"agent": agent.config.agent, "n": len(x), "batch": bs, "t_ours": t_ours, "t_ref": t_ref,
                          "mem_ours": mem["ours"], "mem_ref": mem["ref"], "reset": reset_ok,
                          "input_mib": x.numel() * x.element_size() / 2**20,
                          "scores": list(detector.score_names)}), flush=True)
        del x


# ----- 5. start-up ---------------------------------------------------------------------
def _wall(cmd: list[str], env: dict[str, str]) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, cwd=REPO_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=True)
    return time.perf_counter() - start


def imported_modules(code: str, env: dict[str, str], script: list[str] | None = None) -> set[str]:
    """Top-level packages imported by ``python -c code`` (or a script), from ``-X importtime``."""
    cmd = [sys.executable, "-X", "importtime", *(script or ["-c", code])]
    done = subprocess.run(cmd, cwd=REPO_ROOT, env=env, capture_output=True, text=True, check=True)
    names = re.findall(r"^import time:\s+\d+ \|\s+\d+ \|\s*([\w.]+)", done.stderr, flags=re.M)
    return {name.split(".")[0] for name in names} | {name for name in names if name.startswith("torch.utils.tensorboard")}


def startup(ctx: Any) -> list[Row]:
    """``main.py --help`` and ``import agents`` wall time, and which heavy packages they import."""
    env, py, reps = child_env(ctx), sys.executable, ctx.startup_repeats
    rows = []
    pairs = [("python main.py --help", [py, "main.py", "--help"], "python -c 'import argparse' (interpreter start)",
              [py, "-c", "import argparse"], 1.5),
             ("python -c 'import agents'", [py, "-c", "import agents"], "python -c 'import torch' (the floor)",
              [py, "-c", "import torch"], None)]
    for name, cmd, ref_name, ref_cmd, limit in pairs:
        t_ours, t_ref = interleave(lambda c=cmd: _wall(c, env), lambda c=ref_cmd: _wall(c, env), reps,
                                   warmup=not ctx.quick)
        ours, ref = statistics.median(t_ours), statistics.median(t_ref)
        rows.append(Row("5", f"start-up: {name}", ours, ref, "s", ours / ref, ref_name=ref_name,
                        target="" if limit is None else f"ours < {limit:g} s",
                        met=None if limit is None else ours < limit,
                        note=f"median of {reps} runs; ratio = ours / reference (lower is better)"))
    for name, code, script in (("import agents", "import agents", None),
                               ("main.py --help", "", ["main.py", "--help"])):
        mods = imported_modules(code, env, script)
        heavy = sorted(m for m in mods if m.split(".")[0] in HEAVY or m.startswith("torch.utils.tensorboard"))
        torch_note = "torch imported" if "torch" in mods else "torch not imported"
        rows.append(Row("5", f"heavy imports at {name}", float(len(heavy)), 0.0, "packages", float(len(heavy)),
                        ref_name=f"none of {', '.join(HEAVY)} (imported lazily where used)",
                        target="0 heavy", met=not heavy,
                        note=f"{len(mods)} top-level modules, {torch_note}; heavy: {', '.join(heavy) or 'none'}"))
    return rows


# ----- 6. whole runs -------------------------------------------------------------------
QUICK_RUN = {"vae": ["trainer.epochs=2", "model.hidden_sizes=[32]", "evaluation.make_plots=false"],
             "lstm": ["trainer.epochs=1", "model.hidden_size=16", "evaluation.make_plots=false"]}


# Peak RSS comes from a small wrapper's RUSAGE_CHILDREN: a child forked straight from this (large)
# process would report this process's peak as its own (Linux keeps the high-water mark across exec).
_WRAPPER = ("import resource, subprocess, sys, time; t = time.perf_counter(); rc = subprocess.call(sys.argv[1:]); "
            "t = time.perf_counter() - t; print('SPEED_CHILD', rc, t, resource.getrusage(resource.RUSAGE_CHILDREN)"
            ".ru_maxrss, file=sys.stderr)")


def _run_main(cmd: list[str], env: dict[str, str]) -> tuple[float, float]:
    """Wall seconds and peak RSS (MiB) of one child process."""
    done = subprocess.run([sys.executable, "-c", _WRAPPER, *cmd], cwd=REPO_ROOT, env=env,
                          stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True, check=False)
    found = re.findall(r"^SPEED_CHILD (-?\d+) (\S+) (\d+)$", done.stderr, flags=re.M)
    if not found or found[-1][0] != "0":
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{done.stderr[-3000:]}")
    rc, seconds, maxrss_kib = found[-1]
    return float(seconds), int(maxrss_kib) / 1024


def logged_epoch_times(log: Path) -> list[float]:
    """The epoch times a run logged ("epoch 3/30 ... 0.52s")."""
    text = log.read_text(encoding="utf-8") if log.exists() else ""
    return [float(s) for s in re.findall(r"epoch \d+/\d+ .*?(\d+(?:\.\d+)?)s\b", text)]


def epoch_seconds(log: Path) -> float:
    """Sum of the epoch times a run logged."""
    return sum(logged_epoch_times(log))


def _main_cmd(ctx: Any, which: str, name: str, extra: list[str] = ()) -> list[str]:
    overrides = config_overrides(which, ctx.quick, ctx.data_dir) + (QUICK_RUN[which] if ctx.quick else []) + list(extra)
    return [sys.executable, "main.py", CONFIGS[which], "--set", f"experiments_dir={ctx.exp_dir}",
            "--set", f"exp_name={name}"] + [a for o in overrides for a in ("--set", o)]


def denormal_change(ctx: Any, env: dict[str, str], flushed_epochs: list[float]) -> Row:
    """Mean epoch time of the default VAE run with denormals flushed (given) vs not (run here): over a
    whole run Adam's moments of dead units reach the denormal range, which short benchmarks do not."""
    name = f"speed_run_vae_denormal_{os.getpid()}"
    _run_main(_main_cmd(ctx, "vae", name, ["trainer.flush_denormal=false"]), env)
    plain = logged_epoch_times(Path(ctx.exp_dir) / name / "logs" / "train.log")
    ours, ref = statistics.mean(flushed_epochs), statistics.mean(plain)
    return Row("6", "  change: flush_denormal=true, whole vae_converter.json run", 1 / ours, 1 / ref, "epochs/s",
               ref / ours, ref_name="the same run with trainer.flush_denormal=false (before the change)",
               note=f"mean over the run's epochs ({len(flushed_epochs)} and {len(plain)}); the runs differ in the "
                    "last float bits, so early stopping may end them at different epochs")


def whole_runs(ctx: Any) -> list[Row]:
    """Wall time and peak memory of ``main.py`` on the two default configs."""
    env, rows = child_env(ctx), []
    for which in ("vae", "lstm"):
        walls, peaks, trains, floors = [], [], [], []
        data = config_overrides(which, ctx.quick, ctx.data_dir)
        for rep in range(ctx.run_repeats):
            name = f"speed_run_{which}_{os.getpid()}_{rep}"
            wall, peak = _run_main(_main_cmd(ctx, which, name), env)
            walls.append(wall)
            peaks.append(peak)
            trains.append(epoch_seconds(Path(ctx.exp_dir) / name / "logs" / "train.log"))
            floors.append(_run_main([sys.executable, "-c", "import agents"], env)[1])
        label = CONFIGS[which].split("/")[-1] + (" (quick sizes)" if ctx.quick else "")
        wall, train = statistics.median(walls), statistics.median(trains)
        rows.append(Row("6", f"whole run wall time, {label}", wall, train, "s", wall / max(train, 1e-9),
                        ref_name="time inside the epoch loop (sum of the logged epoch times)",
                        note=f"median of {len(walls)} runs; ratio = wall / training (the rest is start-up, data, "
                             f"evaluation, plots)" + ("; " + " ".join(data) if which == "lstm" and data else "")))
        peak, floor = statistics.median(peaks), statistics.median(floors)
        rows.append(Row("6", f"whole run peak memory, {label}", peak, floor, "MiB", peak / floor,
                        ref_name="peak RSS of python -c 'import agents' (interpreter, torch, the package)",
                        note="peak RSS of the process (wait4 ru_maxrss); ratio = ours / reference"))
        if which == "vae":
            last = Path(ctx.exp_dir) / f"speed_run_vae_{os.getpid()}_{ctx.run_repeats - 1}" / "logs" / "train.log"
            rows.append(denormal_change(ctx, env, logged_epoch_times(last)))
    return rows


if __name__ == "__main__":
    sys.path.insert(0, str(REPO_ROOT))
    if len(sys.argv) > 1 and sys.argv[1] == "score":
        score_child(sys.argv[2:])
    else:
        sys.exit("usage: python -m benchmarks.speed_system score --n N --experiments-dir DIR")
