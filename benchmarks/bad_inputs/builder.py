"""The sweep's case builder: the base state and one mixin per case class, composed."""
from __future__ import annotations

from benchmarks.bad_inputs.base import BuilderBase
from benchmarks.bad_inputs.checkpoint_cases import CheckpointCases
from benchmarks.bad_inputs.config_cases import ConfigCases
from benchmarks.bad_inputs.csv_cases import CsvCases
from benchmarks.bad_inputs.ecg_cases import EcgCases
from benchmarks.bad_inputs.npy_cases import NpyCases
from benchmarks.bad_inputs.run_cases import RunCases


class Builder(BuilderBase, ConfigCases, CsvCases, NpyCases, CheckpointCases, RunCases, EcgCases):
    """Makes every case's files under ``tmp``; a case's ``prepare`` makes what needs the finished base run.

    ``Builder(tmp).build()`` returns the cases of every class in the order of
    :data:`benchmarks.bad_inputs.common.CLASSES`.
    """
