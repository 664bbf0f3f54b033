"""Outputs are atomic, stale temporary files are cleaned, and nothing the user owns is overwritten unasked."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from utils.core.errors import WriteError
from utils.runs.outputs import (
    OutputError,
    atomic_output,
    atomic_write_text,
    check_output,
    remove_stale_temps,
    run_folder_of,
)

REPO_ROOT = Path(__file__).resolve().parents[1]


def test_a_failed_write_leaves_the_previous_file_whole_and_no_temp(tmp_path):
    target = tmp_path / "scores.csv"
    target.write_text("old\n")
    with pytest.raises(RuntimeError):
        with atomic_output(target) as handle:
            handle.write("new, half")
            raise RuntimeError("killed")
    assert target.read_text() == "old\n"
    assert list(tmp_path.iterdir()) == [target]
    atomic_write_text(target, "new\n")
    assert target.read_text() == "new\n" and list(tmp_path.iterdir()) == [target]


def test_a_killed_writer_leaves_the_previous_file_and_its_temp_is_removed_next_time(tmp_path):
    target = tmp_path / "big.csv"
    target.write_text("previous\n")
    code = ("import sys, time; sys.path.insert(0, sys.argv[2]); from utils.runs.outputs import atomic_output\n"
            "with atomic_output(sys.argv[1]) as h:\n"
            "    h.write('x' * 100000); h.flush(); print('writing', flush=True); time.sleep(60)\n")
    proc = subprocess.Popen([sys.executable, "-c", code, str(target), str(REPO_ROOT)], stdout=subprocess.PIPE,
                            text=True)
    assert proc.stdout.readline().strip() == "writing"
    proc.send_signal(signal.SIGKILL)
    proc.wait()
    temps = [p for p in tmp_path.iterdir() if p != target]
    assert target.read_text() == "previous\n" and len(temps) == 1 and temps[0].stat().st_size == 100000
    assert remove_stale_temps(target) == temps and not temps[0].exists()


def test_a_live_writers_temp_is_left_alone(tmp_path):
    target = tmp_path / "f.csv"
    live = tmp_path / f".f.csv.{os.getpid()}.abc.tmp"
    live.write_text("mine")
    assert remove_stale_temps(target) == [] and live.exists()


def test_an_existing_file_needs_overwrite(tmp_path):
    out = tmp_path / "out.csv"
    assert check_output(out) == out
    out.write_text("mine")
    with pytest.raises(OutputError, match=r"out.csv: exists; add --overwrite to replace it"):
        check_output(out)
    assert check_output(out, overwrite=True) == out


def test_the_input_is_never_the_output_even_with_overwrite(tmp_path):
    src = tmp_path / "new.csv"
    src.write_text("a\n")
    with pytest.raises(OutputError, match="is the input file"):
        check_output(tmp_path / "." / "new.csv", overwrite=True, inputs=(src,))


def test_files_of_a_run_folder_are_never_outputs(tmp_path):
    run = tmp_path / "experiments" / "vae"
    (run / "checkpoints").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    (run / "checkpoints" / "best.pt").write_bytes(b"model")
    for target in (run / "checkpoints" / "best.pt", run / "config", run / "out" / "new.csv"):
        with pytest.raises(OutputError, match="lies in the run folder"):
            check_output(target, overwrite=True)
    assert run_folder_of(run / "out" / "x.csv") == run.resolve() and run_folder_of(tmp_path / "x") is None


def test_a_folder_is_not_an_output(tmp_path):
    with pytest.raises(OutputError, match="is a folder; give a file name"):
        check_output(tmp_path)


def test_an_unwritable_place_is_named(tmp_path):
    with pytest.raises(WriteError, match=r"cannot write /proc/nope/x.csv \(No such file or directory\)"):
        atomic_write_text("/proc/nope/x.csv", "x")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(WriteError, match=r"x.csv \(.*file is a file, not a folder\)"):
        atomic_write_text(blocker / "x.csv", "x")


def test_a_full_disk_while_writing_names_the_target_and_leaves_the_previous_file(tmp_path):
    import errno

    target = tmp_path / "scores.csv"
    target.write_text("old\n")
    with pytest.raises(WriteError, match=r"cannot write .*scores.csv \(No space left on device\)") as err:
        with atomic_output(target):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
    assert err.value.errno == errno.ENOSPC and err.value.filename == str(target)
    assert target.read_text() == "old\n" and list(tmp_path.iterdir()) == [target]


def test_score_and_export_refuse_to_overwrite_on_the_command_line(tiny_runs, tmp_path, capsys):
    import hashlib
    import json

    import numpy as np

    import main

    run = tiny_runs.of_model("vae")
    config = str(run / "config.json")
    src = tmp_path / "rows.npy"
    np.save(src, np.random.default_rng(0).normal(size=(60, 3)))
    score = [config, "--mode", "score", "--input", str(src), "--output"]
    assert main.main([*score, str(src)]) == 2 and "is the input file" in capsys.readouterr().err
    assert np.load(src).shape == (60, 3)
    out = tmp_path / "s.csv"
    assert main.main([*score, str(out)]) == 0
    first = out.read_text()
    assert main.main([*score, str(out)]) == 2 and "exists; add --overwrite" in capsys.readouterr().err
    assert main.main([*score, str(out), "--overwrite"]) == 0 and out.read_text() == first
    best = run / "checkpoints" / "best.pt"
    before = best.read_bytes()
    assert main.main([*score, str(best), "--overwrite"]) == 2 and "lies in the run folder" in capsys.readouterr().err
    assert best.read_bytes() == before
    export = [config, "--mode", "export", "--format", "torchscript", "--output"]
    assert main.main([*export, str(run / "config")]) == 2 and "lies in the run folder" in capsys.readouterr().err
    model = tmp_path / "m.pt"
    assert main.main([*export, str(model)]) == 0
    meta = json.loads((tmp_path / "m.pt.json").read_text())
    assert meta["sha256"] == hashlib.sha256(model.read_bytes()).hexdigest()
    assert main.main([*export, str(model)]) == 2 and "m.pt: exists" in capsys.readouterr().err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["m.pt", "m.pt.json", "rows.npy", "s.csv",
                                                          "s.incidents.csv"]


def test_no_output_replaces_the_config_the_command_reads_even_with_overwrite(tiny_runs, tmp_path, capsys):
    import io
    import shutil

    import numpy as np

    import main
    from agents.detector.detector import Detector
    from agents.score_files import live_score
    from utils.runs.outputs import OutputError

    run = tiny_runs.of_model("vae")
    config = tmp_path / "my.json"
    shutil.copy(run / "config.json", config)  # the run's resolved config: it names the run folder
    (tmp_path / "link.json").symlink_to(config)
    before = config.read_bytes()
    src = tmp_path / "rows.npy"
    np.save(src, np.random.default_rng(0).normal(size=(60, 3)))
    score = [str(config), "--mode", "score", "--input", str(src), "--overwrite"]
    for extra in (["--output", str(config)], ["--output", str(tmp_path / "link.json")],
                  ["--output", str(tmp_path / "s.csv"), "--incidents", str(config)]):
        assert main.main([*score, *extra]) == 2
        assert "is the config file this command reads; write the output to another file" in capsys.readouterr().err
    export = [str(config), "--mode", "export", "--format", "torchscript", "--overwrite", "--output"]
    assert main.main([*export, str(tmp_path / "my")]) == 2  # its metadata, my.json, is the config
    assert "--output (its metadata) " in capsys.readouterr().err
    with pytest.raises(OutputError, match="is the config file this command reads"):
        live_score(Detector.load(run), "-", str(config), overwrite=True, config_path=str(config),
                   stdin=io.BytesIO(b"voltage,current,temperature\n"))
    assert config.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["link.json", "my.json", "rows.npy"]
