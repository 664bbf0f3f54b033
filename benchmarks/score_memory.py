"""Benchmark: peak memory of ``main.py --mode score`` on a 1,000,000-row CSV vs the file's size in floats.

Trains a tiny VAE run on the converter data (windows of 100 steps, 3 sensors)
in a temporary folder, writes CSVs of converter telemetry with 100 (one
window), 100,000 and 1,000,000 rows, and scores each in a **fresh process**
(``python main.py CONFIG --mode score --input F --output scores.csv``, defaults:
non-overlapping windows, 8,192 rows read at a time). Each process reports its
peak resident set size (``resource.getrusage(RUSAGE_SELF).ru_maxrss``).

The one-window file measures the fixed cost (Python, torch, the model); the
difference to it is the memory that scoring the data took. It is compared with
the file's values held in memory at once, rows x F x 8 bytes (float64) or x 4
(float32). With ``--tracemalloc`` the 1M-row scoring runs once more under
:mod:`tracemalloc` (Python and NumPy allocations after the imports and the
model load; torch's own allocations are not traced).

Usage:
    python benchmarks/score_memory.py                 # about a minute
    python benchmarks/score_memory.py --rows 1000000 100000 --tracemalloc --out experiments/mem.json
"""
from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

REPO_ROOT = Path(__file__).resolve().parents[1]
CONFIG = REPO_ROOT / "configs" / "vae_converter.json"
TRAIN_SETTINGS = ["data.n_samples=600", "trainer.epochs=2", "trainer.progress_bar=false", "model.hidden_sizes=[32]",
                  "model.latent_dim=4", "evaluation.make_plots=false", "exp_name=score_memory"]
MiB = 1024 * 1024


def write_csv(path: Path, rows: int, seed: int = 0, chunk: int = 100_000) -> Path:
    """Converter telemetry (voltage, current, temperature), ``rows`` rows, written in chunks."""
    sys.path.insert(0, str(REPO_ROOT))
    from datasets.converter import SENSORS, simulate_normal

    rng = np.random.default_rng(seed)
    with open(path, "w", encoding="utf-8") as handle:
        handle.write(",".join(SENSORS) + "\n")
        for start in range(0, rows, chunk):
            n = min(chunk, rows - start)
            block = simulate_normal(-(-n // 100), 100, rng).reshape(-1, 3)[:n]
            np.savetxt(handle, block, delimiter=",", fmt="%.5f")
    return path


def child(args: argparse.Namespace) -> None:
    """Run one scoring in this process and print its peak memory as JSON."""
    sys.path.insert(0, str(REPO_ROOT))
    import torch

    import main

    torch.set_num_threads(args.threads)

    argv = [str(CONFIG), "--set", f"experiments_dir={args.experiments_dir}", "--set", "exp_name=score_memory",
            "--mode", "score", "--input", args.input, "--output", args.output]
    traced = None
    if args.tracemalloc:  # start after the imports and the model load, which are not the data's
        import tracemalloc

        from agents.detector.detector import Detector

        Detector.load(Path(args.experiments_dir) / "score_memory", device="cpu")
        tracemalloc.start()
    t0 = time.perf_counter()
    code = main.main(argv)
    seconds = time.perf_counter() - t0
    if args.tracemalloc:
        traced = tracemalloc.get_traced_memory()[1]
    print(json.dumps({"exit_code": code, "seconds": seconds,
                      "peak_rss_bytes": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024,
                      "tracemalloc_peak_bytes": traced}))


def measure(experiments_dir: Path, input_path: Path, output: Path, threads: int, tracemalloc: bool = False) -> dict:
    cmd = [sys.executable, __file__, "--child", "--experiments-dir", str(experiments_dir), "--input", str(input_path),
           "--output", str(output), "--threads", str(threads)] + (["--tracemalloc"] if tracemalloc else [])
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO_ROOT)
    if proc.returncode != 0:
        raise SystemExit(f"scoring failed:\n{proc.stdout}\n{proc.stderr}")
    result = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["exit_code"] != 0:
        raise SystemExit(f"scoring exited {result['exit_code']}:\n{proc.stderr}")
    return result


def main(argv: list[str] | None = None) -> None:
    sys.path.insert(0, str(REPO_ROOT))
    from utils.core.paths import user_path

    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--rows", type=int, nargs="+", default=[100_000, 1_000_000], help="file sizes in rows")
    p.add_argument("--tracemalloc", action="store_true", help="also trace Python/NumPy allocations on the largest")
    p.add_argument("--out", type=user_path, help="write the figures as JSON here")
    p.add_argument("--threads", type=int, default=1, help="torch intra-op threads in the scoring processes "
                   "(default 1: on a busy 2-core machine 2 threads made scoring 9x slower)")
    p.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--experiments-dir", help=argparse.SUPPRESS)
    p.add_argument("--input", help=argparse.SUPPRESS)
    p.add_argument("--output", help=argparse.SUPPRESS)
    args = p.parse_args(argv)
    if args.child:
        return child(args)
    from benchmarks import quality

    quality.check_results_path(p, args.out)

    with tempfile.TemporaryDirectory(prefix="score_memory_") as tmp:
        tmp = Path(tmp)
        print("training a tiny VAE run ...", flush=True)
        train = subprocess.run([sys.executable, str(REPO_ROOT / "main.py"), str(CONFIG), "--set",
                                f"experiments_dir={tmp}", *[x for s in TRAIN_SETTINGS for x in ("--set", s)]],
                               capture_output=True, text=True, cwd=REPO_ROOT)
        if train.returncode != 0:
            raise SystemExit(train.stderr)
        results = []
        for rows in [100, *sorted(args.rows)]:
            src = write_csv(tmp / f"rows_{rows}.csv", rows)
            r = measure(tmp, src, tmp / f"scores_{rows}.csv", args.threads)
            r.update(rows=rows, features=3, csv_bytes=src.stat().st_size, float64_bytes=rows * 3 * 8,
                     float32_bytes=rows * 3 * 4)
            results.append(r)
            print(f"  {rows:>9,} rows: peak RSS {r['peak_rss_bytes'] / MiB:7.1f} MiB, {r['seconds']:.1f} s", flush=True)
        base = results[0]["peak_rss_bytes"]
        largest = results[-1]
        if args.tracemalloc:
            traced = measure(tmp, tmp / f"rows_{largest['rows']}.csv", tmp / "traced.csv", args.threads,
                             tracemalloc=True)
            largest["tracemalloc_peak_bytes"] = traced["tracemalloc_peak_bytes"]
    print(f"\nfixed cost (Python + torch + model, one-window file): peak RSS {base / MiB:.1f} MiB")
    print(f"{'rows':>10} {'CSV size':>10} {'float64':>9} {'float32':>9} {'peak RSS':>9} {'- fixed':>9} "
          f"{'vs float64':>10} {'time':>6}")
    for r in results[1:]:
        extra = r["peak_rss_bytes"] - base
        r["extra_rss_bytes"] = extra
        print(f"{r['rows']:>10,} {r['csv_bytes'] / MiB:>8.1f}Mi {r['float64_bytes'] / MiB:>7.1f}Mi "
              f"{r['float32_bytes'] / MiB:>7.1f}Mi {r['peak_rss_bytes'] / MiB:>7.1f}Mi {extra / MiB:>7.1f}Mi "
              f"{extra / r['float64_bytes']:>10.2f} {r['seconds']:>5.1f}s")
    if largest.get("tracemalloc_peak_bytes"):
        print(f"tracemalloc peak (Python + NumPy allocations) scoring {largest['rows']:,} rows: "
              f"{largest['tracemalloc_peak_bytes'] / MiB:.1f} MiB")
    if args.out:
        quality.write_results(args.out, {"fixed_rss_bytes": base, "runs": results})


if __name__ == "__main__":
    main()
