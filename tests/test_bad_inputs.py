"""Every bad input through the command line: exit code 2, one clear message, nothing lost.

Config mistakes are tested at the loader in tests/test_config.py (malformed or
empty JSON, unknown agent/model/loss/dataset/key, wrong types, out-of-range
values); here a few of them go through ``main`` to check the exit code and that
no run folder appears. Each case asserts the message names what is wrong,
where, and what would be valid, and that nothing was written or overwritten.
"""
from __future__ import annotations

import hashlib
import os
import pickle
import shutil
from pathlib import Path

import pytest
import torch

from tests.helpers import run_main

VAE = ["data.n_samples=300", "trainer.epochs=1", "trainer.progress_bar=false", "model.hidden_sizes=[8]",
       "model.latent_dim=2", "evaluation.make_plots=false"]
ECG = ["data.protocol=merged", "data.download=false", "trainer.progress_bar=false"]


def snapshot(folder: Path) -> dict[str, str]:
    """sha256 of every file under ``folder`` (empty when it does not exist)."""
    return {str(p.relative_to(folder)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(folder.rglob("*")) if p.is_file()}


def fails(capsys, config: str, root: Path, *overrides: str, resume: bool = False) -> str:
    """Run main; assert exit code 2 and no traceback; return the message."""
    code = run_main(config, root, *overrides, resume=resume)
    err = capsys.readouterr().err
    assert code == 2, err
    assert err.startswith("error: ") and "Traceback" not in err
    return err


def main_with_file(capsys, path: Path, *args: str) -> str:
    import main

    code = main.main([str(path), *args])
    err = capsys.readouterr().err
    assert code == 2, err
    return err


# ----- config (the loader's own tests: tests/test_config.py) ---------------------------------

def test_empty_and_malformed_config_files(tmp_path, capsys):
    empty = tmp_path / "empty.json"
    empty.write_text("")
    assert "empty.json: config file is empty; expected a JSON object" in main_with_file(capsys, empty)
    broken = tmp_path / "broken.json"
    broken.write_text('{"exp_name": "x",\n "agent": "vae",,}')
    assert "broken.json:2:17: invalid JSON: Expecting property name enclosed in double quotes" in main_with_file(
        capsys, broken)
    assert "nope.json: config file not found" in main_with_file(capsys, tmp_path / "nope.json")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["broken.json", "empty.json"]


@pytest.mark.parametrize("override,fragments", [
    ("agent=vea", ['agent: unknown agent "vea" (did you mean "vae"?)', "valid agents: "]),
    ("model.name=vea", ['model.name: unknown model "vea"', "valid models: "]),
    ("loss.name=kl", ['loss.name: unknown loss "kl"; valid losses: mae, mse, vae']),
    ("loss.name=mse", ["loss: 2 unknown keys: reconstruction, beta (written for another loss.name than this one?); "
                       "valid keys here: none besides name"]),
    ("data.name=csv", ["data: 6 unknown keys: n_samples, time_steps, anomaly_fraction, anomaly_magnitude, "
                       "anomaly_position, anomaly_length (written for another data.name than this one?); valid keys "
                       "here: path, window_length"]),
    ("trainer.batchsize=3", ['trainer.batchsize: unknown key (did you mean "batch_size"?)']),
    ("data.name=ecg", ['data.name: unknown dataset "ecg"', "valid datasets: "]),
    ("trainer.epoch=3", ['trainer.epoch: unknown key (did you mean "epochs"?); valid keys here: epochs']),
    ("model.latent_dim=eight", ['model.latent_dim: Input should be a valid integer, got "eight"']),
    ("trainer.epochs=0", ["trainer.epochs: Input should be greater than 0, got 0"]),
    ("model.hidden_sizes=[-4]", ["model.hidden_sizes.0: Input should be greater than 0, got -4"]),
    ("evaluation.threshold_percentile=101", ["evaluation.threshold_percentile: Input should be less than or equal "
                                             "to 100, got 101"]),
    ("evaluation.false_alarm_rate=1", ["evaluation.false_alarm_rate: Input should be less than 1, got 1"]),
    ("evaluation.threshold_percentile=90", ["evaluation.threshold_percentile: 90 means a false-alarm rate of 0.1, "
                                            "but evaluation.false_alarm_rate is 0.01; set only one"]),
    ('evaluation.baselines=["lof"]', ["evaluation.baselines.0: Input should be 'knn', 'pca' or 'isolation_forest', "
                                      'got "lof"']),
    ("trainer.learning_rate=Infinity", ["trainer.learning_rate: Input should be a finite number"]),
    ("trainer", ["--set 'trainer': expected section.key=value"]),
])
def test_config_mistakes_on_the_command_line(tmp_path, capsys, override, fragments):
    err = fails(capsys, "vae_converter.json", tmp_path, *VAE, override)
    for fragment in fragments:
        assert fragment in err
    assert not any(tmp_path.iterdir())


def test_two_typos_in_one_section_give_one_line_with_both_fixes(tmp_path, capsys):
    err = fails(capsys, "vae_converter.json", tmp_path, *VAE, "trainer.epoch=3", "trainer.batchsize=8")
    assert err.count("\n") == 1, err
    assert ('trainer: 2 unknown keys: epoch (did you mean "epochs"?), batchsize (did you mean "batch_size"?); '
            "valid keys here: epochs, batch_size") in err


# ----- data files ----------------------------------------------------------------------------

def ecg_copy(shared_ecg_dir: Path, folder: Path, edit=None) -> Path:
    """A copy of ECG5000_TRAIN.txt in ``folder``, lines passed through ``edit``."""
    folder.mkdir()
    lines = (shared_ecg_dir / "ECG5000_TRAIN.txt").read_text().splitlines()
    (folder / "ECG5000_TRAIN.txt").write_text("\n".join(edit(lines) if edit else lines) + "\n")
    return folder


def replace_token(line_no: int, index: int, token: str):
    def edit(lines):
        fields = lines[line_no - 1].split()
        fields[index] = token
        lines[line_no - 1] = "  ".join(fields)
        return lines
    return edit


def drop_token(line_no: int):
    def edit(lines):
        lines[line_no - 1] = "  ".join(lines[line_no - 1].split()[:-1])
        return lines
    return edit


def test_missing_data_file(tmp_path, capsys):
    data = tmp_path / "data"
    data.mkdir()
    err = fails(capsys, "lstm_ecg5000.json", tmp_path / "exp", *ECG, f"data.data_dir={data}")
    assert f"ECG5000 data not found in {data}" in err and "ECG5000_TRAIN.txt or ECG5000_TRAIN.ts" in err
    assert "Set `data.download: true`" in err
    assert not (tmp_path / "exp").exists()


@pytest.mark.parametrize("edit,fragment", [
    (drop_token(7), "ECG5000_TRAIN.txt: line 7 has 140 fields, expected 141 like line 1 (rows of different lengths)"),
    (replace_token(12, 5, "nan"), "ECG5000_TRAIN.txt: line 12, field 6 holds nan, not a finite number (1 bad rows "
                                  "in all); clean or drop these rows"),
    (replace_token(3, 9, "-inf"), "ECG5000_TRAIN.txt: line 3, field 10 holds -inf, not a finite number (1 bad rows"),
    (replace_token(3, 9, "-1e400"), "ECG5000_TRAIN.txt: line 3, field 10: '-1e400' is beyond the largest float "
                                    "(+-1.8e+308; it reads as -inf); rescale it"),
    (replace_token(4, 2, "1.2.3"), "ECG5000_TRAIN.txt: line 4, field 3: cannot read '1.2.3' as a number"),
], ids=["wrong-shape", "nan", "inf", "beyond-float64", "not-a-number"])
def test_bad_data_file(tmp_path, capsys, shared_ecg_dir, edit, fragment):
    data = ecg_copy(shared_ecg_dir, tmp_path / "data", edit)
    err = fails(capsys, "lstm_ecg5000.json", tmp_path / "exp", *ECG, f"data.data_dir={data}")
    assert fragment in err
    assert not (tmp_path / "exp").exists()


def test_test_file_of_another_series_length(tmp_path, capsys, shared_ecg_dir):
    data = ecg_copy(shared_ecg_dir, tmp_path / "data")
    short = [" ".join(line.split()[:100]) for line in (data / "ECG5000_TRAIN.txt").read_text().splitlines()]
    (data / "ECG5000_TEST.txt").write_text("\n".join(short) + "\n")
    err = fails(capsys, "lstm_ecg5000.json", tmp_path / "exp", *ECG, f"data.data_dir={data}")
    assert "ECG5000_TEST.txt: series have 99 values but those in" in err and "both splits must match" in err


# ----- checkpoints ---------------------------------------------------------------------------

@pytest.fixture(scope="module")
def finished(tmp_path_factory) -> Path:
    """A finished one-epoch run to copy and damage."""
    root = tmp_path_factory.mktemp("done")
    assert run_main("vae_converter.json", root, *VAE, "exp_name=run") == 0
    return root / "run"


@pytest.fixture
def run_copy(finished, tmp_path) -> Path:
    shutil.copytree(finished, tmp_path / "run")
    return tmp_path / "run"


def resume_fails(capsys, run: Path, *overrides: str) -> str:
    before = snapshot(run)
    err = fails(capsys, "vae_converter.json", run.parent, *VAE, "exp_name=run", *overrides, resume=True)
    assert snapshot(run) == before, "a failed resume must not write anything"
    return err


def test_truncated_checkpoint(run_copy, capsys):
    last = run_copy / "checkpoints" / "last.pt"
    last.write_bytes(last.read_bytes()[: last.stat().st_size // 2])
    err = resume_fails(capsys, run_copy)
    assert f"{last}: checkpoint is truncated or corrupt (" in err


def test_corrupt_checkpoint(run_copy, capsys):
    last = run_copy / "checkpoints" / "last.pt"
    for garbage in (b"", b"hello, world\n", b"PK\x03\x04 not a zip", os.urandom(4096)):
        last.write_bytes(garbage)
        err = resume_fails(capsys, run_copy)
        assert (f"{last}: checkpoint is truncated or corrupt (" in err or f"{last}: refused to load: " in err
                or f"{last}: a text file (CSV or other text), not a checkpoint" in err), err


def test_checkpoint_of_another_model_names_the_tensor(run_copy, capsys):
    last = run_copy / "checkpoints" / "last.pt"
    ckpt = torch.load(last, weights_only=True)
    ckpt["config"]["model"]["latent_dim"] = 3  # its config says 3, its weights are of latent_dim 2
    torch.save(ckpt, last)
    err = resume_fails(capsys, run_copy, "model.latent_dim=3")
    assert "tensor 'to_mu.weight' has shape (2, 8) in the checkpoint but (3, 8) in the model built from this " \
           "config; the checkpoint was made with another model config" in err


def test_checkpoint_that_is_not_a_training_checkpoint(run_copy, capsys):
    last = run_copy / "checkpoints" / "last.pt"
    torch.save({"weights": torch.zeros(3)}, last)
    err = resume_fails(capsys, run_copy)
    assert f"{last}: not a checkpoint of this project (expected keys model, epoch, global_step)" in err
    torch.save({"model": {}, "optimizer": {}, "epoch": 1, "global_step": 3}, last)
    err = resume_fails(capsys, run_copy)
    assert f"{last}: not a training checkpoint of this project (missing best_val" in err


class Payload:
    """Unpickling this creates the marker file: what an attacker's code would do."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (open, (str(self.marker), "w"))


@pytest.mark.parametrize("writer", ["torch.save", "pickle.dump"])
def test_pickle_carrying_code_is_refused_not_run(run_copy, tmp_path, capsys, writer):
    marker = tmp_path / "code_ran"
    last = run_copy / "checkpoints" / "last.pt"
    state = {"model": Payload(marker), "optimizer": {}, "epoch": 1, "global_step": 1}
    with open(last, "wb") as handle:
        torch.save(state, handle) if writer == "torch.save" else pickle.dump(state, handle)
    assert not marker.exists()
    err = resume_fails(capsys, run_copy)
    assert f"{last}: refused to load: the file is not a plain checkpoint (it may carry code, which is never run): " \
           + ("Unsupported global: GLOBAL io.open" if writer == "torch.save" else "Unsupported operand") in err
    assert not marker.exists()


# ----- run folders ---------------------------------------------------------------------------
# An existing run without --resume, and --resume with no run folder: tests/test_vae_run.py.

def test_resume_of_a_run_that_never_saved(tmp_path, capsys):
    run = tmp_path / "run"
    (run / "logs").mkdir(parents=True)
    (run / "config.json").write_text("{}")
    err = fails(capsys, "vae_converter.json", tmp_path, *VAE, "exp_name=run", resume=True)
    assert f"--resume: nothing to resume in {run}: it has no checkpoints/last.pt" in err
    err = fails(capsys, "vae_converter.json", tmp_path, *VAE, "exp_name=run")
    assert f"{run} already holds a run; add --resume" in err
    assert (run / "config.json").read_text() == "{}"


def test_experiments_dir_under_a_file(tmp_path, capsys):
    blocker = tmp_path / "a_file"
    blocker.write_text("not a folder")
    err = fails(capsys, "vae_converter.json", blocker / "experiments", *VAE, "exp_name=x")
    assert f"cannot write the run folder {blocker / 'experiments' / 'x'} (Not a directory); set experiments_dir " \
           "to a writable folder (--set experiments_dir=PATH); to --resume, free space on the folder's disk or make " \
           "it writable instead" in err  # a resume continues only its own folder
    assert blocker.read_text() == "not a folder"


def test_experiments_dir_in_proc(capsys):
    err = fails(capsys, "vae_converter.json", Path("/proc/no_such_dir"), *VAE, "exp_name=x")
    assert "cannot write the run folder /proc/no_such_dir/x" in err


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_read_only_experiments_dir(tmp_path, capsys):
    read_only = tmp_path / "ro"
    read_only.mkdir()
    read_only.chmod(0o500)
    try:
        err = fails(capsys, "vae_converter.json", read_only, *VAE, "exp_name=x")
    finally:
        read_only.chmod(0o700)
    assert f"cannot write the run folder {read_only / 'x'} (Permission denied)" in err


def test_exp_name_that_is_a_file(tmp_path, capsys):
    (tmp_path / "x").write_text("keep me")
    err = fails(capsys, "vae_converter.json", tmp_path, *VAE, "exp_name=x")
    assert f"{tmp_path / 'x'} is a file, not a run folder" in err
    assert (tmp_path / "x").read_text() == "keep me"
