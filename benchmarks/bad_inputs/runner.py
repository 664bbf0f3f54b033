"""Running one case of the bad-input sweep in a fresh ``python main.py`` process and classifying its outcome."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from typing import Any, Callable

from benchmarks.bad_inputs.common import CLASSES, MAX_MESSAGE_LINES, OUTCOMES, ROOT, Case, tree_hash

def classify(rc: int | None, stderr: str, changed: list[str]) -> str:
    if rc is None:
        return "hang"
    if "Traceback (most recent call last)" in stderr:
        return "traceback"
    if changed or rc == 0:
        return "accepted"
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error:") or line.startswith("main.py: error:")]
    if rc == 2 and errors and len("\n".join(lines[lines.index(errors[-1]):]).splitlines()) <= MAX_MESSAGE_LINES:
        return "answered"
    return "other"


def message_of(stderr: str, stdout: str) -> str:
    lines = [line for line in stderr.strip().splitlines() if line.strip()]
    errors = [i for i, line in enumerate(lines) if line.startswith("error:") or line.startswith("main.py: error:")]
    if "Traceback (most recent call last)" in stderr:
        tail = lines[-1] if lines else ""
        return f"Traceback ... {tail}"
    if errors:
        return " | ".join(lines[errors[-1]:])
    return " | ".join(lines[-3:]) if lines else " | ".join(stdout.strip().splitlines()[-2:])


def _limit_memory(gib: float) -> Callable[[], None]:
    def limit() -> None:
        import resource
        resource.setrlimit(resource.RLIMIT_AS, (int(gib * 2**30), int(gib * 2**30)))
    return limit


def run_case(case: Case, env: dict[str, str]) -> dict[str, Any]:
    if case.prepare:
        case.prepare()
    before = {str(p): tree_hash(p) for p in case.watch}
    bg = None
    if case.background:
        bg = subprocess.Popen([sys.executable, "main.py", *case.background], cwd=ROOT, env=env,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
        deadline = time.monotonic() + 120
        while not (case.background_ready and case.background_ready()) and time.monotonic() < deadline \
                and bg.poll() is None:
            time.sleep(0.2)
        before = {str(p): tree_hash(p) for p in case.watch}
    start = time.monotonic()
    try:
        proc = subprocess.run([sys.executable, "main.py", *case.argv], cwd=ROOT, env=env, capture_output=True,
                              text=True, errors="replace", timeout=case.timeout, start_new_session=True,
                              preexec_fn=_limit_memory(case.mem_gb))
        rc, stdout, stderr = proc.returncode, proc.stdout, proc.stderr
    except subprocess.TimeoutExpired as err:
        rc = None
        stdout = (err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
        stderr = (err.stderr or b"").decode(errors="replace") if isinstance(err.stderr, bytes) else (err.stderr or "")
    seconds = time.monotonic() - start
    if bg is not None:
        bg_alive = bg.poll() is None
        if bg_alive:
            os.killpg(bg.pid, signal.SIGKILL)
        bg.wait()
        if not bg_alive:
            stderr += "\n[sweep: the background run had ended before this case ran]"
    after = {str(p): tree_hash(p) for p in case.watch}
    changed = []
    for p in before:
        for file in sorted(set(before[p]) | set(after[p])):
            if before[p].get(file) != after[p].get(file):
                how = "modified" if file in before[p] and file in after[p] else "created" if file in after[p] \
                    else "removed"
                changed.append(f"{file} {how}")
    changed += [f"{p} exists (code ran)" for p in case.must_not_exist if p.exists()]
    outcome = classify(rc, stderr, changed)
    message = message_of(stderr, stdout)
    if changed:
        message = f"CHANGED: {'; '.join(changed)[:200]} / exit {rc}: {message}"
    elif outcome == "accepted":
        message = f"exit 0: {message}"
    return {"class": case.cls, "case": case.name, "outcome": outcome, "exit_code": rc, "seconds": round(seconds, 1),
            "message": message[:2000], "changed": changed, "argv": case.argv if len(" ".join(case.argv)) < 3000
            else case.argv[:3] + ["..."]}


def counts_table(results: list[dict[str, Any]]) -> str:
    header = f"| {'class':<11} | cases | " + " | ".join(OUTCOMES) + " |"
    lines = [header, "|" + "---|" * (len(OUTCOMES) + 2)]
    for cls in (*CLASSES, "overall"):
        rows = [r for r in results if cls == "overall" or r["class"] == cls]
        if not rows:
            continue
        counts = [sum(r["outcome"] == o for r in rows) for o in OUTCOMES]
        name = f"**{cls}**" if cls == "overall" else cls
        lines.append(f"| {name:<11} | {len(rows)} | " + " | ".join(str(c) for c in counts) + " |")
    return "\n".join(lines)
