"""A path that is a folder, a pipe or missing is named as such, wherever the user gives a file (or a folder)."""
from __future__ import annotations

import os
import shutil
import threading
from pathlib import Path

import numpy as np
import pytest

import main
from tests.helpers import REPO_ROOT, TINY_VAE
from utils.core.paths import unreadable_file


def _fifo(path: Path) -> Path:
    os.mkfifo(path)
    return path


def test_unreadable_file_names_each_kind_of_path(tmp_path: Path) -> None:
    (tmp_path / "a.csv").write_text("x\n")
    (tmp_path / "folder").mkdir()
    fifo = _fifo(tmp_path / "pipe.csv")
    assert unreadable_file(tmp_path / "a.csv") is None
    assert unreadable_file(tmp_path / "nope.csv") == "not found"
    assert unreadable_file(tmp_path / "a.csv" / "b.csv") == "not found (a part of its path is a file, not a folder)"
    assert unreadable_file(tmp_path / "folder") == "is a folder, not a file"
    assert unreadable_file(fifo) == "is not a regular file (a pipe, device or socket)"
    assert unreadable_file(fifo, allow_stream=True) is None
    assert unreadable_file("/dev/null") == "is not a regular file (a pipe, device or socket)"
    (tmp_path / "loop").symlink_to(tmp_path / "loop")
    assert unreadable_file(tmp_path / "loop").startswith("cannot be read (")


def _error(capsys, code: int) -> str:
    err = capsys.readouterr().err
    assert code == 2 and err.startswith("error: ") and "Traceback" not in err, err
    return err


@pytest.fixture(scope="module")
def scorer(tiny_runs) -> list[str]:
    return [str(tiny_runs.of_model("vae").parent / "tiny_vae.json"), "--mode", "score"]


def test_score_input_that_is_a_folder_or_a_pipe(scorer, tmp_path: Path, capsys) -> None:
    (tmp_path / "in.csv").mkdir()
    out = tmp_path / "o.csv"
    err = _error(capsys, main.main([*scorer, "--input", str(tmp_path / "in.csv"), "--output", str(out)]))
    assert "in.csv: input file is a folder, not a file" in err
    fifo = _fifo(tmp_path / "pipe.csv")
    err = _error(capsys, main.main([*scorer, "--input", str(fifo), "--output", str(out)]))
    assert "pipe.csv: input file is not a regular file (a pipe, device or socket); to score rows as they arrive, " \
           "use --output - (live scoring)" in err
    assert not out.exists()


def test_live_scoring_reads_a_named_pipe_as_its_rows_arrive(scorer, tmp_path: Path, capsys) -> None:
    fifo = _fifo(tmp_path / "pipe.csv")
    rng = np.random.default_rng(0)
    rows = "voltage,current,temperature\n" + "".join(f"{48 + rng.normal():.3f},{10 + rng.normal():.3f},"
                                                     f"{40 + rng.normal():.3f}\n" for _ in range(60))
    writer = threading.Thread(target=fifo.write_text, args=(rows,))
    writer.start()
    out = tmp_path / "live.csv"
    assert main.main([*scorer, "--input", str(fifo), "--output", "-", "--incidents", str(tmp_path / "i.csv")]) == 0
    writer.join(timeout=30)
    lines = [line for line in capsys.readouterr().out.splitlines() if line]
    assert lines[0].startswith("window,start_row,") and len(lines) == 1 + 60 // 25  # header + 2 whole windows
    assert not out.exists()


def test_training_data_config_and_data_folder_that_are_not_what_they_should_be(tmp_path: Path, capsys) -> None:
    config = str(REPO_ROOT / "configs" / "example_csv.json")
    (tmp_path / "data.csv").mkdir()
    common = ["--set", f"experiments_dir={tmp_path / 'exp'}", "--set", "trainer.epochs=1"]
    err = _error(capsys, main.main([config, *common, "--set", f"data.path={tmp_path / 'data.csv'}"]))
    assert f"data.path: the folder {tmp_path / 'data.csv'} holds no *.csv file" in err  # a folder of recordings
    err = _error(capsys, main.main([config, *common, "--set", f"data.path={_fifo(tmp_path / 'p.csv')}"]))
    assert "p.csv is not a regular file (a pipe, device or socket); give a CSV file" in err
    err = _error(capsys, main.main([str(tmp_path / "data.csv")]))
    assert "data.csv: config file is a folder, not a file; expected a JSON file" in err
    (tmp_path / "afile").write_text("")
    err = _error(capsys, main.main([str(REPO_ROOT / "configs" / "lstm_ecg5000.json"), *common, "--set",
                                    f"data.data_dir={tmp_path / 'afile'}", "--set", "data.download=false"]))
    assert f"data.data_dir: {tmp_path / 'afile'} is a file, not a folder; give the folder" in err
    assert not (tmp_path / "exp").exists()


def test_a_folder_in_place_of_a_checkpoint(run_copy: Path, tmp_path: Path, capsys) -> None:
    argv = [str(REPO_ROOT / "configs" / "vae_converter.json"), "--set", f"experiments_dir={run_copy.parent}",
            "--set", f"exp_name={run_copy.name}", *(x for item in TINY_VAE for x in ("--set", item))]
    src = tmp_path / "rows.npy"
    np.save(src, np.random.default_rng(0).normal(size=(60, 3)))
    best, last = run_copy / "checkpoints" / "best.pt", run_copy / "checkpoints" / "last.pt"
    best.unlink()
    best.mkdir()
    err = _error(capsys, main.main([*argv, "--mode", "score", "--input", str(src), "--output", str(tmp_path / "o")]))
    assert f"{best}: is a folder, not a file; expected a checkpoint file written by this project" in err
    shutil.rmtree(best)
    last.unlink()
    last.mkdir()
    err = _error(capsys, main.main([*argv, "--resume", "--set", "trainer.epochs=5"]))
    assert f"--resume: {last} is a folder, not a file; it should be the checkpoint this run wrote" in err
    assert last.is_dir() and not any(last.iterdir())
