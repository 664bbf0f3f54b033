"""Nothing lost: a full disk mid-training or mid-scoring, resume on edited data, two writers of one new output,
damaged checkpoint counters, impossible folder paths and --set messages (each exits 2 with one line)."""
from __future__ import annotations

import errno
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import main
from tests.helpers import REPO_ROOT, TINY_VAE
from utils.core.config import load_config
from utils.core.errors import ConfigError, WriteError
from utils.runs.checkpoints import load_checkpoint
from utils.runs.outputs import OutputError, WholeLines, atomic_output

CONFIG = str(REPO_ROOT / "configs" / "vae_converter.json")


def argv_of(root: Path, *overrides: str, resume: bool = False) -> list[str]:
    argv = [CONFIG, "--set", f"experiments_dir={root}"]
    for item in (*TINY_VAE, *overrides):
        argv += ["--set", item]
    return [*argv, *(["--resume"] if resume else [])]


def no_space(err_path: str | None = None) -> OSError:
    return OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), err_path)


# ---- 1. a full disk ---------------------------------------------------------------------------------------------
def test_torch_zip_writer_short_write_is_a_write_error_naming_the_file(tmp_path, monkeypatch):
    """A disk that fills inside torch.save's zip writer made it raise RuntimeError ("unexpected pos"), a traceback:
    the state is serialized in memory, so the file write fails with the OSError that names the cause."""
    import utils.runs.checkpoints as checkpoints
    import utils.runs.outputs as outputs

    class Full:
        def __init__(self, handle):
            self.handle = handle

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            self.handle.write(bytes(data)[:100])
            raise no_space()

        def __getattr__(self, name):
            return getattr(self.handle, name)

    monkeypatch.setattr(outputs, "open", lambda *args, **kwargs: Full(open(*args, **kwargs)), raising=False)
    with pytest.raises(WriteError) as err:
        checkpoints.save_checkpoint({"model": {}, "epoch": 1, "global_step": 1}, tmp_path / "best.pt")
    assert str(err.value).startswith(f"cannot write the checkpoint {tmp_path / 'best.pt'} (No space left on device)")
    assert err.value.errno == errno.ENOSPC and list(tmp_path.iterdir()) == []


def test_full_disk_for_tensorboard_mid_training_names_the_event_file_then_resume_works(tmp_path, capsys, monkeypatch):
    """TensorBoard writes on its own thread: its failure printed a thread traceback and an error naming no file."""
    from tensorboard.summary.writer import record_writer

    write = record_writer.RecordWriter.write
    calls = {"n": 0}

    def filling(self, data):
        calls["n"] += 1
        if calls["n"] > 40:  # epoch 2 or later: last.pt of epoch 1 is on disk
            raise no_space()
        return write(self, data)

    monkeypatch.setattr(record_writer.RecordWriter, "write", filling)
    code = main.main(argv_of(tmp_path, "trainer.epochs=4", "trainer.checkpoint_interval_s=0",
                             "trainer.log_every_n_steps=1", "data.n_samples=600"))
    err = capsys.readouterr().err
    monkeypatch.undo()
    run = tmp_path / "run"
    events = sorted((run / "summaries").glob("events.out.tfevents.*"))
    assert code == 2 and "Traceback" not in err and "Exception in thread" not in err, err
    assert f"error: cannot write {events[0]} (No space left on device); free some space or fix the permissions, " \
           "then resume with: python main.py " in err
    last = load_checkpoint(run / "checkpoints" / "last.pt")
    assert 1 <= last["epoch"] < 4 and not list((run / "checkpoints").glob(".*.tmp"))
    assert main.main(argv_of(tmp_path, "trainer.epochs=4", "trainer.checkpoint_interval_s=0",
                             "trainer.log_every_n_steps=1", "data.n_samples=600", resume=True)) == 0
    assert load_checkpoint(run / "checkpoints" / "last.pt")["epoch"] == 4


def test_full_disk_for_the_run_log_names_it(tmp_path, capsys, monkeypatch):
    import logging

    emit = logging.FileHandler.emit

    def failing(self, record):
        if "epoch 2/" in record.getMessage():
            self.stream.write = lambda text: (_ for _ in ()).throw(no_space())
        return emit(self, record)

    monkeypatch.setattr(logging.FileHandler, "emit", failing)
    code = main.main(argv_of(tmp_path, "trainer.epochs=3", "trainer.checkpoint_interval_s=0"))
    err = capsys.readouterr().err
    monkeypatch.undo()
    log = tmp_path / "run" / "logs" / "train.log"
    assert code == 2 and "Logging error" not in err and "Traceback" not in err, err
    assert f"error: cannot write {log} (No space left on device); free some space or fix the permissions, then " \
           "resume with: python main.py " in err
    assert load_checkpoint(tmp_path / "run" / "checkpoints" / "last.pt")["epoch"] == 1  # logged before its save


@pytest.mark.slow  # 20 s: two real runs on a tmpfs
@pytest.mark.skipif(shutil.which("unshare") is None or not Path("/proc/self/stat").exists(),
                    reason="needs unshare (a tmpfs of its own)")
def test_a_real_full_tmpfs_mid_training_then_resume(tmp_path):
    """A 1.2 MB tmpfs: training fits, the final best.pt (with the baselines) does not; once space is freed, the
    printed --resume finishes the run. Fails with a traceback (torch's RuntimeError) before the in-memory save."""
    mount = tmp_path / "mnt"
    mount.mkdir()
    args = " ".join(f"'{a}'" for a in argv_of(mount, "trainer.epochs=2", "trainer.checkpoint_interval_s=0"))
    script = (f"mount -t tmpfs -o size=1200k tmpfs {mount} || exit 77; cd {REPO_ROOT}; "
              f"{sys.executable} main.py {args}; echo rc=$?; ls {mount}/run/checkpoints; "
              f"mount -o remount,size=20m {mount}; {sys.executable} main.py {args} --resume; echo rc=$?")
    proc = subprocess.run(["unshare", "-rm", "sh", "-c", script], capture_output=True, text=True, timeout=120,
                          env={**os.environ, "OMP_NUM_THREADS": "1"})
    if proc.returncode == 77 or "unshare:" in proc.stderr:
        pytest.skip(f"no tmpfs here: {proc.stderr.strip()[:120]}")
    out = proc.stdout
    assert "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "rc=2" in out and out.rstrip().endswith("rc=0"), out[-500:] + proc.stderr[-1500:]
    assert "(No space left on device)" in proc.stderr and "then resume with: python main.py" in proc.stderr
    assert ".tmp" not in out.split("rc=2")[1].split("rc=0")[0], "a temporary checkpoint was left behind"


def test_live_lines_are_whole_after_a_failed_write(tmp_path, monkeypatch):
    path = tmp_path / "scores.csv"
    real_write = os.write
    with pytest.raises(WriteError, match=r"cannot write .*scores.csv \(No space left on device\)"):
        with WholeLines(path) as out:
            out.write("row,score\r\n")
            out.flush()
            out.write("1,0.5\r\n")
            out.write("2,0.7\r\n")

            def half(fd, data):  # the disk fills inside the batch: part of it lands, then ENOSPC
                monkeypatch.setattr(os, "write", lambda fd, data: (_ for _ in ()).throw(no_space()))
                return real_write(fd, bytes(data)[:9])

            monkeypatch.setattr(os, "write", half)
            out.flush()
    monkeypatch.undo()
    assert path.read_bytes() == b"row,score\r\n"


def test_live_scoring_onto_a_full_disk_exits_2_naming_the_output_with_whole_lines(finished, tmp_path, monkeypatch,
                                                                                 capsys):
    from utils.runs import outputs

    rows = "voltage,current,temperature\n" + "".join(f"{i % 7}.5,{i % 5}.25,{i % 3}.0\n" for i in range(600))
    scores = tmp_path / "s.csv"
    written = {"n": 0}
    flush = outputs.WholeLines.flush

    def filling(self):
        if self.path == scores and self._pending:
            written["n"] += 1
            if written["n"] == 3:  # the third batch of lines meets a full disk
                monkeypatch.setattr(outputs.os, "write", lambda fd, data: (_ for _ in ()).throw(no_space()))
        return flush(self)

    monkeypatch.setattr(outputs.WholeLines, "flush", filling)
    monkeypatch.setattr(sys, "stdin", type("In", (), {"buffer": __import__("io").BytesIO(rows.encode())})())
    code = main.main([CONFIG, "--set", f"experiments_dir={finished.parent}", *[a for s in TINY_VAE[:-1]
                      for a in ("--set", s)], "--set", f"exp_name={finished.name}", "--mode", "score", "--input", "-",
                      "--output", str(scores), "--per-step"])
    monkeypatch.undo()
    err = capsys.readouterr().err
    assert code == 2 and "Traceback" not in err
    assert f"error: cannot write {scores} (No space left on device); free some space or fix the permissions, then " \
           f"run the same command again with --overwrite ({scores} holds the whole lines" in err
    text = scores.read_bytes().decode()
    assert text.endswith("\r\n") and len({line.count(",") for line in text.splitlines()}) == 1


# ---- 2. resume on changed data ------------------------------------------------------------------------------------
def test_resume_refuses_an_edited_training_csv(tmp_path, capsys):
    data = tmp_path / "d.csv"
    shutil.copy(REPO_ROOT / "examples" / "converter_telemetry.csv", data)
    argv = [str(REPO_ROOT / "configs" / "example_csv.json"), "--set", f"experiments_dir={tmp_path}", "--set",
            "exp_name=r", "--set", f"data.path={data}", "--set", "trainer.epochs=1", "--set",
            "trainer.progress_bar=false", "--set", "evaluation.make_plots=false", "--set", "model.hidden_sizes=[8]",
            "--set", "model.latent_dim=2"]
    assert main.main(argv) == 0
    capsys.readouterr()
    lines = data.read_text().splitlines()
    fields = lines[5].split(",")
    fields[1] = str(float(fields[1]) + 0.5)
    lines[5] = ",".join(fields)
    data.write_text("\n".join(lines) + "\n")
    env = (tmp_path / "r" / "environment.json").read_bytes()
    assert main.main([*argv, "--set", "trainer.epochs=2", "--resume"]) == 2
    err = capsys.readouterr().err
    assert f'error: --resume: the data of data.path="{data}" changed since {tmp_path / "r"} started (the same ' \
           "number of windows, with other values; digest " in err
    assert "Restore the data the run started on, or train a new run on the new data (--set exp_name=NEW_NAME" in err
    assert (tmp_path / "r" / "environment.json").read_bytes() == env
    data.write_text("\n".join(lines[:-200]) + "\n")
    assert main.main([*argv, "--set", "trainer.epochs=2", "--resume"]) == 2
    assert "its windows (train, val, test) were 142, 30, 36, now " in capsys.readouterr().err


# ---- 3. two writers, one new output -------------------------------------------------------------------------------
def test_a_new_output_never_replaces_a_file_that_appeared_meanwhile(tmp_path):
    target = tmp_path / "scores.csv"
    with pytest.raises(OutputError, match="another process created this file while this command wrote it"):
        with atomic_output(target) as handle:
            handle.write("mine\n")
            target.write_text("the other writer's\n")  # the other scorer finished first
    assert target.read_text() == "the other writer's\n" and sorted(p.name for p in tmp_path.iterdir()) == [
        "scores.csv"]
    with atomic_output(target) as handle:  # an output that existed at the start (--overwrite) is replaced
        handle.write("replaced\n")
    assert target.read_text() == "replaced\n"


@pytest.mark.slow  # 11 s: two scoring processes (test_a_new_output_never_replaces_... is the fast check)
def test_two_scorers_of_one_new_output_one_wins_the_other_exits_2(finished, tmp_path):
    inp = tmp_path / "in.csv"
    inp.write_text("voltage,current,temperature\n" + "".join(f"{i % 7}.5,{i % 5}.25,{i % 3}.0\n"
                                                             for i in range(600)))
    out = tmp_path / "s.csv"
    cmd = [sys.executable, str(REPO_ROOT / "main.py"), CONFIG, "--set", f"experiments_dir={finished.parent}",
           *[a for s in TINY_VAE[:-1] for a in ("--set", s)], "--set", f"exp_name={finished.name}", "--mode",
           "score", "--input", str(inp), "--output", str(out), "--per-step"]
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)
             for _ in range(2)]
    results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
    assert sorted(code for code, _ in results) == [0, 2], results  # before: both 0, the later output replaced
    loser = next(err for code, err in results if code == 2)
    # the loser either finished last (its first rename, of the incidents file or the scores, refused: the pair is
    # discarded whole) or started after the winner had finished
    assert any(f"error: {name}: another process created this file" in loser
               for name in (out, tmp_path / "s.incidents.csv")) or \
        f"error: --output {out}: exists; add --overwrite" in loser, loser
    winner = out.read_text().splitlines()
    assert winner[0].startswith("row,") and len(winner) == 601
    assert not list(tmp_path.glob(".s.csv.*"))


# ---- 4. tracebacks ------------------------------------------------------------------------------------------------
def test_last_pt_with_batch_in_epoch_past_the_epoch_is_refused(run_copy, capsys):
    import torch

    last = run_copy / "checkpoints" / "last.pt"
    ckpt = torch.load(last, weights_only=True)
    ckpt["batch_in_epoch"] = 10**6
    torch.save(ckpt, last)
    (run_copy / "out" / "metrics.json").unlink()
    assert main.main(argv_of(run_copy.parent, "trainer.epochs=2", resume=True)) == 2
    err = capsys.readouterr().err
    assert f"error: {last}: field 'batch_in_epoch' holds 1000000, but an epoch of this run has " in err
    assert "(valid: 0 to " in err and "Traceback" not in err


@pytest.mark.parametrize("value,said", [
    ('"a\\u0000b"', "experiments_dir: 'a\\x00b' holds a NUL character (at 1), which no file path may; give a folder "
                    "path such as experiments"),
    ("d" * 300, "experiments_dir: the folder name 'dddddddddddddddddddddddddddddd'... is 300 bytes long; file "
                "systems take at most 255; give a shorter path"),
], ids=["NUL", "300 characters"])
def test_experiments_dir_no_file_system_takes_is_refused_naming_the_key(tmp_path, capsys, value, said):
    assert main.main(argv_of(tmp_path, f"experiments_dir={value}")) == 2
    assert capsys.readouterr().err == f"error: {said}\n"


# ---- 5. messages --------------------------------------------------------------------------------------------------
def test_a_set_value_error_names_the_set_not_the_file(tmp_path):
    with pytest.raises(ConfigError) as err:
        load_config(CONFIG, ["trainer.epochs=-1"])
    assert str(err.value) == "--set trainer.epochs=-1: trainer.epochs: Input should be greater than 0, got -1"
    with pytest.raises(ConfigError) as err:
        load_config(CONFIG, ['data={"name": "converter", "n_samples": -5}'])
    assert str(err.value).startswith('--set data={"name": "converter", "n_samples": -5}: data.n_samples: ')
    file = tmp_path / "x.json"
    file.write_text((REPO_ROOT / "configs" / "vae_converter.json").read_text().replace('"epochs": ', '"epochs": -'))
    with pytest.raises(ConfigError, match=f"^{file}: trainer.epochs: "):  # the file's own value: the file named
        load_config(file, ["trainer.batch_size=8"])


def test_a_whole_section_set_after_one_of_its_keys_is_refused_naming_both():
    with pytest.raises(ConfigError) as err:
        load_config(CONFIG, ["data.n_samples=400", 'data={"name": "converter"}'])
    assert str(err.value) == ('--set data={"name": "converter"}: replaces the whole of data, so the earlier --set '
                              "data.n_samples=400 would be lost; put the value of --set data.n_samples=400 inside "
                              "this one, or give it after this one")
    config = load_config(CONFIG, ['data={"name": "converter"}', "data.n_samples=400"])  # in order: as written
    assert config.data.n_samples == 400
