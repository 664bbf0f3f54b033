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
    assert project["project"]["scripts"]["ts-anomaly"] == "main:main"
    assert "main" in project["tool"]["setuptools"]["py-modules"]


def test_the_console_entry_point_is_main_py(tmp_path: Path) -> None:
    """``main:main`` called as the console script calls it (from another folder, the repository on the path)."""
    code = f"import sys; sys.path.insert(0, {str(ROOT)!r}); from main import main; sys.exit(main(['--help']))"
    done = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60)
    assert done.returncode == 0 and "--mode" in done.stdout
