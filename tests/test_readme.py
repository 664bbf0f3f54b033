"""Every command of the README's ```bash blocks runs and prints what it should.

The commands run in README order through ``bash`` (pipes included) in one scratch folder that
links the repository's ``main.py``, ``configs/`` and ``examples/``, so what they write
(``experiments/``, ``scores.csv``, ``vae.onnx``) stays out of the checkout and a later command
finds what an earlier one made (resume, score and export use the trainings before them).
:data:`PLANS` says, for each command, what the test adds and why: long trainings get ``--set``
overrides that make them short (a later ``--set`` of a key wins), installs get ``--dry-run``,
the server is started, asked and stopped. A command added to the README without a plan fails
:func:`test_every_readme_command_has_a_plan`; the full-length first runs are ``@pytest.mark.slow``.
"""
from __future__ import annotations

import json
import os
import re
import shlex
import socket
import subprocess
import sys
import time
import urllib.request
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import REPO_ROOT, SHARED_ECG_DIR

README = REPO_ROOT / "README.md"
MAX_README_BYTES = 12 * 1024
COMMAND_TIMEOUT_S = 300


@dataclass(frozen=True)
class Plan:
    """How the test runs one README command.

    Attributes:
        append: arguments added at the end of the command (of its last stage, for a pipe).
        expect: text the command must print (standard output and error together).
        why: the reason for ``append`` (empty when the command runs as written).
        in_repo: run in the repository itself (pip, pytest and mkdocs read its files), not the scratch
            folder; ``{scratch}`` in ``append`` stands for the scratch folder.
        server: the command serves until stopped: wait until it answers ``/data/runs``, then stop it.
        slow: too long for the default run (``@pytest.mark.slow``).
    """

    append: tuple[str, ...] = ()
    expect: tuple[str, ...] = ()
    why: str = ""
    in_repo: bool = False
    server: bool = False
    slow: bool = False


def _set(*items: str) -> tuple[str, ...]:
    return tuple(arg for item in items for arg in ("--set", item))


#: One epoch, no figures, no baselines, no bar: a training that shows every stage (data, loop, checkpoint,
#: evaluation, thresholds, report) in seconds instead of minutes.
SHORT = _set("trainer.epochs=1", "evaluation.make_plots=false", "evaluation.baselines=[]", "trainer.progress_bar=false")
#: The shipped ECG5000 config downloads TRAIN and TEST; the tests are offline and ../shared holds
#: the TRAIN file alone, which the merged protocol trains on.
ECG_OFFLINE = _set(f"data.data_dir={SHARED_ECG_DIR}", "data.download=false", "data.protocol=merged")
DRY_RUN = ("--dry-run",)  # resolves the requirements without changing the environment the tests run in
TRAINED = ("Classification report", "Outputs in")  # the evaluation's report, and where the run went

PLANS: dict[str, Plan] = {
    "pip install -r requirements.txt": Plan(DRY_RUN, ("Requirement already satisfied: torch",),
                                            "--dry-run: installs nothing", in_repo=True),
    "pip install -e .": Plan(DRY_RUN + ("--no-build-isolation",), ("Would install ts-anomaly",),
                             "--dry-run: installs nothing; --no-build-isolation: builds the metadata with the "
                             "installed setuptools instead of downloading one", in_repo=True),
    "python main.py configs/vae_converter.json": Plan(
        SHORT + _set("data.n_samples=400"), ("Threshold of reconstruction: ", *TRAINED),
        "300 epochs on 3000 windows take minutes: 1 epoch on 400 (full length: the slow test)"),
    "python main.py configs/lstm_ecg5000.json": Plan(
        SHORT + ECG_OFFLINE, ("Threshold of error_gaussian_train: ", *TRAINED),
        "200 epochs take minutes: 1 epoch (full length: the slow test); offline, on the shared TRAIN file"),
    "python main.py configs/vae_converter.json --set exp_name=vae_small --set model.latent_dim=16": Plan(
        SHORT + _set("data.n_samples=400"), ("Threshold of latent_mahalanobis", *TRAINED), "short, as above"),
    "python main.py configs/vae_converter.json --resume --set trainer.epochs=400": Plan(
        SHORT + _set("trainer.epochs=2", "data.n_samples=400"),
        ("epoch 2/2", *TRAINED), "resumes the short run above (its data) for one more epoch, not 399"),
    "python main.py configs/example_csv.json": Plan(SHORT, ("Threshold of reconstruction", *TRAINED),
                                                    "200 epochs: 1"),
    "python main.py configs/example_csv.json --mode score --input examples/converter_telemetry.csv "
    "--output scores.csv": Plan(expect=("scores.csv",)),
    "cat examples/converter_telemetry.csv | python main.py configs/example_csv.json --mode score --input - "
    "--output -": Plan(expect=("window,start_row,start_timestamp,score_reconstruction",)),
    "python main.py configs/vae_converter.json --mode export --format onnx --output vae.onnx": Plan(
        expect=("Exported onnx model to vae.onnx",)),
    "tensorboard --logdir experiments": Plan(
        server=True, why="a server: started on a free loopback port, asked for its runs, stopped"),
    "python main.py configs/example_csv.json --set data.path=my_sensors.csv --set exp_name=my_sensors": Plan(
        SHORT, TRAINED, "200 epochs: 1; my_sensors.csv stands for your file: the test writes one (the first "
                        "hour of the shipped example)"),
    "pip install -r requirements-dev.txt": Plan(DRY_RUN, ("Requirement already satisfied: pytest",),
                                                "--dry-run: installs nothing", in_repo=True),
    "python -m pytest -q": Plan(("tests/test_packaging.py",), ("4 passed",),
                                "the whole suite takes 9 minutes and holds this test: one small file of it",
                                in_repo=True),
    "python -m pytest -q -m slow": Plan(
        ("--collect-only", "tests/test_readme.py", "tests/test_live_scoring.py", "tests/test_score_steps.py"),
        ("test_readme_command_runs[python -m mkdocs build --strict --site-dir site]",
         "test_first_run_at_full_length[python main.py configs/vae_converter.json]",
         "test_first_run_at_full_length[python main.py configs/lstm_ecg5000.json]",
         "test_a_file_grows_line_by_line_and_a_stop_signal_keeps_every_line[15-143]",
         "test_cat_into_the_pipe_gives_the_bytes_of_the_file", "\n5/"),
        "collect only, in the files of the slow tests the README names (the whole suite's collection takes "
        "long): -m slow selects those and only those",
        in_repo=True),
    "pip install -r requirements-docs.txt": Plan(DRY_RUN, ("mkdocs",), "--dry-run: installs nothing", in_repo=True),
    "python -m mkdocs build --strict --site-dir site": Plan(
        ("--site-dir", "{scratch}/site"), ("Documentation built",),
        "into the scratch folder, not the checkout; slow (CI builds the site before the tests anyway)",
        in_repo=True, slow=True),
}

#: The README's first two runs, at full length in the slow test (with what the offline test machine needs).
FULL_LENGTH = {
    "python main.py configs/vae_converter.json": (),
    "python main.py configs/lstm_ecg5000.json": ECG_OFFLINE,
}


def readme_commands(text: str) -> list[str]:
    """The commands of the ```bash blocks of ``text``, in order: ``\\``-continued lines joined, comments and
    blank lines dropped."""
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.M | re.S):
        for line in block.replace("\\\n", " ").splitlines():
            command = " ".join(shlex.split(line, comments=True))
            if command:
                commands.append(command)
    return commands


COMMANDS = readme_commands(README.read_text(encoding="utf-8"))


def test_readme_is_short() -> None:
    size = len(README.read_bytes())
    assert size <= MAX_README_BYTES, f"README.md is {size} bytes; keep it at most {MAX_README_BYTES} (move to docs/)"


def test_every_readme_command_has_a_plan() -> None:
    unplanned = [command for command in COMMANDS if command not in PLANS]
    assert not unplanned, f"README commands without a plan in tests/test_readme.py PLANS: {unplanned}"
    stale = [command for command in PLANS if command not in COMMANDS]
    assert not stale, f"PLANS for commands no longer in the README: {stale}"
    assert len(COMMANDS) == len(set(COMMANDS)), "a README command appears twice; PLANS runs each once"


def test_readme_parsing_joins_continuations_and_drops_comments() -> None:
    text = "```bash\n# a comment\npython main.py a.json \\\n    --set x=1   # why\n\n```\n```\nnot bash\n```\n"
    assert readme_commands(text) == ["python main.py a.json --set x=1"]


@pytest.fixture(scope="module")
def workspace(tmp_path_factory) -> Path:
    """A scratch folder laid out like the repository root for the commands (links to its files)."""
    folder = tmp_path_factory.mktemp("readme")
    for name in ("main.py", "configs", "examples"):
        (folder / name).symlink_to(REPO_ROOT / name)
    example = (REPO_ROOT / "examples" / "converter_telemetry.csv").read_text(encoding="utf-8").splitlines()
    (folder / "my_sensors.csv").write_text("\n".join(example[:3601]) + "\n", encoding="utf-8")
    return folder


def _environment() -> dict[str, str]:
    """This interpreter first on PATH (python, pip, tensorboard), the checkout importable, no bar."""
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}",
            "PYTHONPATH": str(REPO_ROOT), "OMP_NUM_THREADS": os.environ.get("OMP_NUM_THREADS", "1")}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _serve_and_ask(command: str, cwd: Path) -> str:
    """Start the server on a free loopback port, return its ``/data/runs`` answer once it lists a run, stop it."""
    port = _free_port()
    line = f"{command} --host 127.0.0.1 --port {port}"
    proc = subprocess.Popen(["bash", "-c", f"exec {line}"], cwd=cwd, env=_environment(), stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, start_new_session=True)
    deadline = time.monotonic() + 120
    try:
        while time.monotonic() < deadline and proc.poll() is None:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/data/runs", timeout=5) as answer:
                    runs = json.loads(answer.read())
                if runs:
                    return json.dumps(runs)
            except OSError:
                pass
            time.sleep(0.5)
    finally:
        proc.terminate()
        output = proc.communicate(timeout=30)[0]
    pytest.fail(f"{line} did not list a run within 120 s (exit code {proc.returncode}): {output[-2000:]}")


def _run(command: str, append: tuple[str, ...], cwd: Path) -> str:
    line = command + "".join(f" {shlex.quote(arg)}" for arg in append)
    done = subprocess.run(["bash", "-o", "pipefail", "-c", line], cwd=cwd, env=_environment(),
                          capture_output=True, text=True, timeout=COMMAND_TIMEOUT_S)
    output = done.stdout + done.stderr
    assert done.returncode == 0, f"{line}\nexit code {done.returncode}:\n{output[-3000:]}"
    return output


@pytest.mark.parametrize("command", [pytest.param(c, marks=pytest.mark.slow) if c in PLANS and PLANS[c].slow else c
                                     for c in COMMANDS])
def test_readme_command_runs(command: str, workspace: Path) -> None:
    plan = PLANS.get(command)
    if plan is None:
        pytest.fail(f"no plan for this README command: add it to PLANS in tests/test_readme.py: {command}")
    if "lstm_ecg5000" in command and not (SHARED_ECG_DIR / "ECG5000_TRAIN.txt").exists():
        pytest.skip(f"shared ECG5000 data not found at {SHARED_ECG_DIR}")
    cwd = REPO_ROOT if plan.in_repo else workspace
    append = tuple(arg.replace("{scratch}", str(workspace)) for arg in plan.append)
    output = _serve_and_ask(command, cwd) if plan.server else _run(command, append, cwd)
    missing = [text for text in plan.expect if text not in output]
    assert not missing, f"{command}: its output lacks {missing}:\n{output[-3000:]}"
    if plan.server:
        assert "vae_converter" in output, f"the server does not list the README's first run: {output}"


@pytest.mark.slow
@pytest.mark.parametrize("command", list(FULL_LENGTH))
def test_first_run_at_full_length(command: str, tmp_path: Path) -> None:
    """The first two runs as the README shows them (no shortening), in a scratch folder."""
    assert command in COMMANDS, f"{command} is no longer in the README"
    for name in ("main.py", "configs"):
        (tmp_path / name).symlink_to(REPO_ROOT / name)
    output = _run(command, FULL_LENGTH[command] + _set("trainer.progress_bar=false"), tmp_path)
    assert "false-alarm rate <=" in output and "Model vs baselines on this split" in output, output[-3000:]
    exp_name = json.loads((REPO_ROOT / command.split()[-1]).read_text())["exp_name"]
    assert (tmp_path / "experiments" / exp_name / "out" / "metrics.json").is_file()
