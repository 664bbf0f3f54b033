"""How does ``python main.py`` answer hostile and mistaken input? (issue 12's closing figures)

Builds, in a temporary folder, well over 150 bad inputs in seven classes (config and ``--set`` values, CSV data,
NPY score input, damaged checkpoints, output paths, run-folder and resume misuse, the ECG5000 dataset offline),
runs each through ``python main.py ...`` in a fresh process with a timeout and classifies the outcome:

- **answered**: exit 2, no ``Traceback`` in stderr, a message of at most a few lines, nothing of the user's changed;
- **traceback**: any exit with a Python traceback in stderr;
- **accepted**: exit 0 for an input that should have been refused, or data silently changed (an input file or a
  run-folder file modified, code of a pickle run);
- **hang**: the timeout passed;
- **other**: anything else (exit 1 without a traceback, a long message, a signal...).

Every case is meant to be refused. Each row is printed as soon as it is measured, then the counts per class and
overall; ``--out`` writes them as JSON.

    OMP_NUM_THREADS=1 python benchmarks/bad_input_sweep.py --jobs 2 --out sweep.json
    python benchmarks/bad_input_sweep.py --only csv --list          # the case names of one class

The cases (one module per class) and how one is run and classified live in the package ``benchmarks/bad_inputs/``.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

if __package__ in (None, ""):
    sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from benchmarks.bad_inputs.builder import Builder  # noqa: E402
from benchmarks.bad_inputs.common import CLASSES, OUTCOMES, ROOT, Case  # noqa: E402
from benchmarks.bad_inputs.runner import classify, counts_table, run_case  # noqa: E402
from utils.core.paths import user_path  # noqa: E402

__all__ = ["CLASSES", "Builder", "Case", "build_cases", "classify", "counts_table", "main", "run_case", "train_base"]


def build_cases(tmp: Path) -> tuple[Builder, list[Case]]:
    """The cases, their files written under ``tmp`` (those needing the base run are made when they run)."""
    builder = Builder(tmp)
    return builder, builder.build()


def train_base(builder: Builder, env: dict[str, str]) -> None:
    proc = subprocess.run([sys.executable, "main.py", *builder.base_argv()], cwd=ROOT, env=env, capture_output=True,
                          text=True, timeout=300)
    if proc.returncode != 0:
        raise SystemExit(f"the base run failed (exit {proc.returncode}):\n{proc.stderr[-2000:]}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=user_path, help="write the results as JSON here")
    parser.add_argument("--jobs", type=int, default=2, help="cases run at once (default 2)")
    parser.add_argument("--only", choices=CLASSES, action="append", help="run only these classes (repeatable)")
    parser.add_argument("--match", help="run only cases whose name contains this text")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds a case may take (default 60)")
    parser.add_argument("--rerun", type=user_path, help="run only the cases not answered in this earlier --out JSON")
    parser.add_argument("--every", type=int, default=1, help="run every N-th case only (a quick look)")
    parser.add_argument("--list", action="store_true", help="list the cases and exit")
    parser.add_argument("--keep", action="store_true", help="keep the temporary folder")
    args = parser.parse_args(argv)
    from benchmarks import quality

    quality.check_results_path(parser, args.out)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    tmp = Path(tempfile.mkdtemp(prefix="bad_input_sweep_"))
    try:
        builder, cases = build_cases(tmp)
        cases = [c for c in cases if (not args.only or c.cls in args.only) and (not args.match or args.match in c.name)]
        if args.rerun:
            earlier = json.loads(args.rerun.read_text())["results"]
            again = {(r["class"], r["case"]) for r in earlier if r["outcome"] != "answered"}
            cases = [c for c in cases if (c.cls, c.name) in again]
        cases = cases[:: max(1, args.every)]
        if args.list:
            for c in cases:
                print(f"{c.cls:<11} {c.name}")
            print(f"{len(cases)} cases")
            return 0
        for c in cases:
            c.timeout = args.timeout
        t0 = time.monotonic()
        print(f"training the tiny base run in {builder.base} ...", flush=True)
        train_base(builder, env)
        print(f"base run ready ({time.monotonic() - t0:.0f} s); {len(cases)} cases, {args.jobs} at a time", flush=True)
        lock = threading.Lock()
        results: list[dict[str, Any]] = []

        def one(case: Case) -> dict[str, Any]:
            try:
                result = run_case(case, env)
            except Exception as err:  # the sweep's own failure to build a case is reported, not hidden
                result = {"class": case.cls, "case": case.name, "outcome": "other", "exit_code": None, "seconds": 0,
                          "message": f"sweep could not run the case: {type(err).__name__}: {err}", "changed": [],
                          "argv": case.argv[:3]}
            with lock:
                results.append(result)
                msg = result["message"].replace("\n", " | ")[:160]
                print(f"{result['class']:<11} {result['outcome']:<9} {result['seconds']:5.1f}s  {result['case']}  "
                      f":: {msg}", flush=True)
            return result

        # one at a time: a background run holds a long training run; the output cases share their input file and
        # the base run, so one case's damage must not show up in another's hashes
        serial = [c for c in cases if c.background or c.cls == "output"]
        with ThreadPoolExecutor(max_workers=max(1, args.jobs)) as pool:
            list(pool.map(one, [c for c in cases if c not in serial]))
        for case in serial:
            one(case)
        order = {(c.cls, c.name): i for i, c in enumerate(cases)}
        results.sort(key=lambda r: order[(r["class"], r["case"])])
        print(f"\n{len(results)} cases in {time.monotonic() - t0:.0f} s\n")
        print(counts_table(results))
        bad = [r for r in results if r["outcome"] != "answered"]
        if bad:
            print("\nnot answered:")
            for r in bad:
                print(f"- [{r['class']}] {r['case']}: {r['outcome']} (exit {r['exit_code']}): {r['message'][:400]}")
        if args.out:
            summary = {cls: {o: sum(r["outcome"] == o for r in results if cls == "overall" or r["class"] == cls)
                             for o in OUTCOMES} for cls in (*CLASSES, "overall")}
            for cls in summary:
                summary[cls]["cases"] = sum(1 for r in results if cls == "overall" or r["class"] == cls)
            quality.write_results(args.out, {"counts": summary, "results": results})
        return 0
    finally:
        if args.keep:
            print(f"kept {tmp}")
        else:
            shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    sys.exit(main())
