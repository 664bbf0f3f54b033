"""Bugs found by a user's hunt through the benchmark scripts: their results files (``--out``, ``--json``)."""
from __future__ import annotations

import json
import math
from pathlib import Path

import pytest

from benchmarks import converter_benchmark, quality, skab, speed

VAE = ["--configs", "configs/vae_converter.json"]


@pytest.mark.parametrize("make_bad", [lambda tmp: tmp, lambda tmp: tmp / "a_file" / "results.json"],
                         ids=["a folder", "under a file"])
def test_a_results_path_that_cannot_be_written_is_refused_before_any_run(tmp_path: Path, make_bad,
                                                                         capsys: pytest.CaptureFixture[str]) -> None:
    # Before: every run was made, then the write raised a traceback and the results were lost.
    (tmp_path / "a_file").write_text("mine\n", encoding="utf-8")
    bad = make_bad(tmp_path)
    for parse, argv, option in [(converter_benchmark.parse_args, [*VAE, "--out", str(bad)], "--out"),
                                (skab.parse_args, ["--json", str(bad)], "--json"),
                                (speed.parse_args, ["--json", str(bad)], "--json")]:
        with pytest.raises(SystemExit) as exit_info:
            parse(argv)
        assert exit_info.value.code == 2
        assert f"{option} {bad}:" in capsys.readouterr().err
    assert (tmp_path / "a_file").read_text(encoding="utf-8") == "mine\n"


def test_results_are_written_as_strict_json_in_a_new_folder(tmp_path: Path) -> None:
    # Before: a missing folder was a traceback after the runs, and skab's NaN figures were written as bare NaN.
    out = tmp_path / "new" / "results.json"
    quality.write_results(out, {"auc": math.nan, "rows": [1.5, math.inf]})
    assert json.loads(out.read_text(encoding="utf-8")) == {"auc": None, "rows": [1.5, None]}
    assert [p.name for p in out.parent.iterdir()] == ["results.json"]  # no temporary file left beside it



def test_skab_benchmarks_answer_a_data_mistake_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                           capsys: pytest.CaptureFixture[str]) -> None:
    # Before: a run refused for missing SKAB data (exit 2), or a --source that was not a SKAB recording, ended
    # skab.py / skab_selection.py in a Python traceback.
    from benchmarks import skab_selection
    from utils.core.errors import DataError

    def refused(args):
        raise DataError("vae_skab: SKAB data not found in /nowhere")

    monkeypatch.setattr(skab, "run_benchmark", refused)
    assert skab.main(["--configs", "configs/vae_skab.json"]) == 2
    assert capsys.readouterr().err == "error: vae_skab: SKAB data not found in /nowhere\n"
    for text, said in [("a;b\n1;2\n", "the first column is 'a', not 'datetime'"), ("", "the first column is ''"),
                       ("datetime;a\nt0;1\nt1;q\n", "not numeric sensor rows of 1 columns")]:
        source = tmp_path / "source.csv"
        source.write_text(text, encoding="utf-8")
        assert skab_selection.main(["--quick", "--source", str(source)]) == 2
        assert capsys.readouterr().err.startswith(f"error: {source}: {said}")
    with pytest.raises(SystemExit) as exit_info:
        skab_selection.main(["--source", str(tmp_path / "missing.csv")])
    assert exit_info.value.code == 2
    assert "--source" in capsys.readouterr().err


@pytest.mark.parametrize("argv", [["--seeds", "0"], ["--alphas", "0.05", "1.5"]])
def test_false_alarm_validity_refuses_no_seeds_or_an_alpha_outside_0_1(argv: list[str]) -> None:
    # Before: --seeds 0 was an IndexError, --alphas 1.5 a ValueError traceback after every run was made.
    from benchmarks import false_alarm_validity

    with pytest.raises(SystemExit) as exit_info:
        false_alarm_validity.parse_args(argv)
    assert exit_info.value.code == 2


def test_false_alarm_validity_removes_its_temporary_run_folders(tmp_path: Path,
                                                                monkeypatch: pytest.MonkeyPatch) -> None:
    # Before: without --experiments-dir every seed's run folder (checkpoints included) stayed in the temp folder.
    from benchmarks import false_alarm_validity
    from utils.core.errors import DataError

    def refused(config, overrides, run_dir, args):
        run_dir.mkdir(parents=True)
        raise DataError("refused")

    monkeypatch.setattr(quality, "train_config", refused)
    monkeypatch.setattr(false_alarm_validity.tempfile, "tempdir", str(tmp_path))
    assert false_alarm_validity.main(["--seeds", "1"]) == 2
    assert list(tmp_path.iterdir()) == []
