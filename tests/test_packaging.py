"""pyproject.toml installs every package of the product and the console script that is main.py."""
from __future__ import annotations

import subprocess
import sys
import tomllib
from pathlib import Path

from setuptools import find_packages

ROOT = Path(__file__).resolve().parents[1]


def test_every_product_package_is_installed() -> None:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())
    include = project["tool"]["setuptools"]["packages"]["find"]["include"]
    installed = set(find_packages(str(ROOT), include=include))
    on_disk = {str(p.parent.relative_to(ROOT)).replace("/", ".") for top in ("agents", "graphs", "datasets", "utils")
               for p in (ROOT / top).rglob("__init__.py")}
    assert installed == on_disk
    assert project["project"]["scripts"]["ts-anomaly"] == "main:cli"
    assert "main" in project["tool"]["setuptools"]["py-modules"]


def test_the_console_entry_point_is_main_py(tmp_path: Path) -> None:
    """``main:cli`` called as the console script calls it (from another folder, the repository on the path)."""
    code = (f"import sys; sys.path.insert(0, {str(ROOT)!r}); sys.argv = ['ts-anomaly', '--help']; "
            "from main import cli; sys.exit(cli())")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--mode" in done.stdout


def test_the_command_line_exits_with_its_objects_frozen(tmp_path: Path) -> None:
    """After its answer the command freezes the garbage collector, so the exit skips collecting torch's objects;
    the exit code is main's."""
    code = (f"import gc, sys; sys.path.insert(0, {str(ROOT)!r}); sys.argv = ['ts-anomaly', 'missing.json']; "
            "from main import cli; code = cli(); print(gc.get_freeze_count() > 0); sys.exit(code)")
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "missing.json" in done.stderr
    assert done.stdout.strip() == "True"


def test_a_run_starts_with_the_collector_paused_then_restored() -> None:
    """In-process (``main.main``) the start only pauses the collector; the command line also freezes what the
    start made."""
    import gc

    import main

    frozen = gc.get_freeze_count()
    assert gc.isenabled()
    with main.collection_paused(freeze=False):
        assert not gc.isenabled()
    assert gc.isenabled() and gc.get_freeze_count() == frozen
    code = (f"import gc, sys; sys.path.insert(0, {str(ROOT)!r}); import main\n"
            "with main.collection_paused(freeze=True):\n    assert not gc.isenabled()\n"
            "print(gc.isenabled(), gc.get_freeze_count() > 0)")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    assert done.stdout.split() == ["True", "True"], done.stderr
