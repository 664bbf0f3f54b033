"""The state every case mixin builds on: the folders, the base run's arguments, and the list the cases go into."""
from __future__ import annotations

from pathlib import Path
from typing import Any

from benchmarks.bad_inputs.common import TINY, Case


class BuilderBase:
    """Makes every case's files under ``tmp``; a case's ``prepare`` makes what needs the finished base run.

    The case methods ``build`` calls (``config_cases``, ``csv_cases``, ``npy_cases``, ``checkpoint_cases``,
    ``output_cases``, ``run_folder_cases``, ``ecg_cases``) come from the mixins that
    :class:`benchmarks.bad_inputs.builder.Builder` composes with this class.

    Attributes:
        tmp: the sweep's temporary folder.
        exp: the ``experiments_dir`` of every run (``tmp/exp``).
        base: the tiny base run every score/export/resume case reuses (``exp/base``).
        files: the folder of the cases' input files (``tmp/files``).
        cases: the cases made so far, in order.
    """

    def __init__(self, tmp: Path) -> None:
        self.tmp = tmp
        self.exp = tmp / "exp"
        self.base = self.exp / "base"
        self.files = tmp / "files"
        self.cases: list[Case] = []
        self._n = 0

    # the base run every score/export/resume case reuses
    def base_argv(self) -> list[str]:
        return ["configs/vae_converter.json", *TINY, "--set", f"experiments_dir={self.exp}", "--set", "exp_name=base"]

    def run_of(self, exp_name: str) -> list[str]:
        return ["configs/vae_converter.json", *TINY, "--set", f"experiments_dir={self.exp}",
                "--set", f"exp_name={exp_name}"]

    def score_argv(self) -> list[str]:
        return ["configs/vae_converter.json", *TINY, "--set", f"experiments_dir={self.exp}", "--set", "exp_name=base",
                "--mode", "score"]

    def new_exp(self) -> str:
        self._n += 1
        return f"c{self._n:03d}"

    def add(self, cls: str, name: str, argv: list[str], **kw: Any) -> None:
        self.cases.append(Case(cls, name, argv, **kw))

    def build(self) -> list[Case]:
        self.files.mkdir(parents=True, exist_ok=True)
        self.exp.mkdir(parents=True, exist_ok=True)
        self.config_cases()
        self.csv_cases()
        self.npy_cases()
        self.checkpoint_cases()
        self.output_cases()
        self.run_folder_cases()
        self.ecg_cases()
        names = [(c.cls, c.name) for c in self.cases]
        assert len(names) == len(set(names)), "duplicate case names"
        return self.cases
