"""Speed benchmark: how fast the framework trains and scores, each figure beside a reference.

Every row is measured in this one run on the same data as its reference, the two
alternated (A B B A ...) so that other load on a shared machine hits both alike;
rows show medians and the median of the per-repeat ratios. Items:

1. ``overhead``  BaseAgent.train() (progress bar, logging, TensorBoard, checkpoints
   every epoch) vs a bare hand-written loop, both default configs; and the share of
   an epoch spent batching the in-memory tensors.
2. ``recurrent`` recurrent AE training: the fused teacher-forced path vs a cell
   stepped in Python like the original RecAE (GRU and LSTM); scoring: free-running
   vs teacher-forced reconstruction.
3. ``scoring``   windows/s and peak memory of scoring 100k windows with both agents
   (torch.inference_mode), in a child process.
4. ``flops``     FLOP/s of the recurrent AE training step as a fraction of what a
   torch.matmul of comparable size reaches on the same threads.
5. ``startup``   wall time of ``main.py --help`` and ``import agents``; heavy imports.
6. ``runs``      wall time and peak memory of ``main.py`` on the two default configs.
7. ``threads``   each shipped config's wall time at trainer.threads=1 (the default) vs null (torch's
   default), quiet and beside one busy process (benchmarks/speed_threads.py).

Usage:
    python benchmarks/speed.py                  # everything (over 30 minutes on a shared 2-core machine)
    python benchmarks/speed.py --quick          # tiny sizes, a smoke run
    python benchmarks/speed.py --only overhead recurrent --threads 1 --json experiments/speed.json
    python benchmarks/speed.py --only runs threads --data-dir data/ECG5000 --skab-dir data/SKAB   # not ../shared
"""
from __future__ import annotations

import argparse
import os
import platform
import shutil
import sys
import tempfile
import time
from pathlib import Path
from types import SimpleNamespace

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from utils.core.paths import user_path  # noqa: E402

ITEMS = ("overhead", "recurrent", "scoring", "flops", "startup", "runs", "threads")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    """Command-line options."""
    p = argparse.ArgumentParser(description="Speed of training and scoring, each figure beside a reference "
                                "measured in the same run (ratios hold on a noisy machine).")
    p.add_argument("--quick", action="store_true", help="tiny sizes and few repeats (seconds, a smoke run)")
    p.add_argument("--only", nargs="+", choices=ITEMS, metavar="NAME",
                   help=f"run only these items: {', '.join(ITEMS)}")
    p.add_argument("--repeats", type=int, default=None, help="timed repeats per row (default 9; 3 with --quick)")
    p.add_argument("--run-repeats", type=int, default=None,
                   help="runs per setting in items 6 and 7 (default 2; 1 with --quick)")
    p.add_argument("--conditions", nargs="+", choices=("quiet", "busy"), default=["quiet", "busy"],
                   help="item 7: quiet, beside a busy process, or both (default)")
    p.add_argument("--configs", nargs="+", default=None, metavar="NAME",
                   choices=sorted(c.stem for c in (REPO_ROOT / "configs").glob("*.json")),
                   help="item 7: only these shipped configs (e.g. lstm_skab; default: every one)")
    p.add_argument("--threads", type=int, default=0, help="torch threads (default: torch's default)")
    p.add_argument("--experiments-dir", type=user_path, default=None,
                   help="where the benchmark's run folders go (default: a temporary folder, deleted)")
    p.add_argument("--data-dir", type=user_path, default=None,
                   help="folder with ECG5000_TRAIN.txt, run on the merged protocol (default: data/ECG5000 where it "
                        "holds the full set, else ../shared/data/ECG5000; item 7: ../shared/data/ECG5000)")
    p.add_argument("--skab-dir", type=user_path, default=None,
                   help="item 7: the SKAB folder of the skab configs (default: ../shared/data/SKAB)")
    p.add_argument("--json", type=user_path, default=None, help="also write the rows to this JSON file")
    args = p.parse_args(argv)
    if args.data_dir is not None and not (args.data_dir / "ECG5000_TRAIN.txt").is_file():
        p.error(f"--data-dir {args.data_dir}: no ECG5000_TRAIN.txt there; give the folder holding the ECG5000 files")
    if args.skab_dir is not None and not args.skab_dir.is_dir():
        p.error(f"--skab-dir {args.skab_dir}: no such folder; give the folder holding SKAB's valve1, valve2, ...")
    args.data_dir, args.skab_dir = (None if d is None else d.resolve() for d in (args.data_dir, args.skab_dir))
    from benchmarks import quality

    quality.check_results_path(p, args.json, "--json")
    return args


def main(argv: list[str] | None = None) -> int:
    """Run the chosen items and print the table; returns 1 if an item failed (the others still print)."""
    args = parse_args(argv)
    import torch

    from benchmarks import quality, speed_recurrent, speed_system, speed_threads, speed_train
    from benchmarks.speed_common import format_row, print_table

    if args.threads:
        torch.set_num_threads(args.threads)
    exp_dir = args.experiments_dir or Path(tempfile.mkdtemp(prefix="speedruns-"))
    repeats = args.repeats or (3 if args.quick else 9)
    ctx = SimpleNamespace(quick=args.quick, repeats=repeats, threads=args.threads, exp_dir=exp_dir, ecg=None,
                          score_repeats=1 if args.quick else 2, startup_repeats=1 if args.quick else 5,
                          run_repeats=args.run_repeats or (1 if args.quick else 2), conditions=args.conditions,
                          configs=args.configs, data_dir=args.data_dir, skab_dir=args.skab_dir)
    runners = {"overhead": speed_train.framework_overhead, "recurrent": speed_recurrent.recurrent,
               "scoring": speed_system.scoring, "flops": speed_recurrent.flops, "startup": speed_system.startup,
               "runs": speed_system.whole_runs, "threads": speed_threads.thread_rows}
    print(f"speed benchmark{' (quick)' if args.quick else ''}: torch {torch.__version__}, "
          f"{torch.get_num_threads()} threads, {platform.processor() or platform.machine()}, "
          f"python {platform.python_version()}; {repeats} repeats per row", flush=True)
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > cores:
        print(f"note: load average {load:.1f} on {cores} cores: other processes share the CPU; ratios still compare "
              f"like with like, absolute figures do not (small recurrent ops may also prefer --threads 1)")
    rows, failed, start = [], [], time.perf_counter()
    try:
        for name in args.only or ITEMS:
            t0 = time.perf_counter()
            print(f"  {name}: running ...", flush=True)
            try:
                item_rows = runners[name](ctx)
            except Exception as err:  # noqa: BLE001 (one broken item must not lose the others' rows)
                failed.append(name)
                print(f"  {name}: FAILED: {type(err).__name__}: {err}", file=sys.stderr, flush=True)
                continue
            rows += item_rows
            for row in item_rows:  # as soon as measured: a long run shows its progress
                print(f"    {format_row(row)}", flush=True)
            print(f"  {name}: {time.perf_counter() - t0:.1f} s", flush=True)
    finally:
        if args.experiments_dir is None:
            shutil.rmtree(exp_dir, ignore_errors=True)
    print(f"\n(total {time.perf_counter() - start:.0f} s)\n")
    print_table(rows)
    if failed:
        print(f"\nFAILED items: {', '.join(failed)} (see the messages above)")
    quality.write_results(args.json, [row.as_dict() for row in rows])
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
