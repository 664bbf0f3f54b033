"""The first minutes with the project: early stopping that ends a run whose gains are negligible and resumes
exactly; score/export refusing a --set the trained run cannot honour; exported files' modes; the CSV hint."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

import main
from agents.detector.checkpoint import build_checked_model
from agents.parts import build_component
from utils.core.errors import ConfigError
from utils.core.registry import MODELS
from utils.runs.checkpoints import load_checkpoint
from tests.helpers import REPO_ROOT, TINY_VAE

EXAMPLE_CSV = REPO_ROOT / "examples" / "converter_telemetry.csv"
#: No later epoch beats the first by 90 %: with patience 2, training stops after epoch 3.
STOPS_AFTER_3 = ["trainer.min_delta_rel=0.9", "trainer.early_stopping_patience=2", "trainer.checkpoint_interval_s=0"]


def _main(root: Path, name: str, *overrides: str, extra: tuple[str, ...] = ()) -> int:
    argv = [str(REPO_ROOT / "configs" / "vae_converter.json"), "--set", f"experiments_dir={root}"]
    for item in (*TINY_VAE, *overrides, f"exp_name={name}"):
        argv += ["--set", item]
    return main.main([*argv, *extra])


def test_an_early_stop_resumed_midway_stops_where_the_whole_run_did(tmp_path, capsys):
    assert _main(tmp_path, "whole", "trainer.epochs=8", *STOPS_AFTER_3) == 0
    assert _main(tmp_path, "split", "trainer.epochs=2", *STOPS_AFTER_3) == 0
    assert _main(tmp_path, "split", "trainer.epochs=8", *STOPS_AFTER_3, extra=("--resume",)) == 0
    whole, split = (load_checkpoint(tmp_path / name / "checkpoints" / "last.pt") for name in ("whole", "split"))
    assert whole["epoch"] == split["epoch"] == 3 and whole["stopped_early"] and split["stopped_early"]
    assert whole["history"] == split["history"] and whole["best_epoch"] == split["best_epoch"] == 1
    for key, value in whole["model"].items():
        assert torch.equal(value, split["model"][key]), key
    capsys.readouterr()
    # Resumed unchanged, the early-stopped run is finished; a larger patience trains on.
    assert _main(tmp_path, "whole", "trainer.epochs=8", *STOPS_AFTER_3, extra=("--resume",)) == 0
    said = capsys.readouterr()
    assert "early stopping ended it after epoch 3: no improvement for 2 epochs" in said.out + said.err
    assert "trainer.early_stopping_patience=P (P above 2" in said.out + said.err
    assert _main(tmp_path, "whole", "trainer.epochs=4", *STOPS_AFTER_3[:1], "trainer.early_stopping_patience=null",
                 extra=("--resume",)) == 0
    assert load_checkpoint(tmp_path / "whole" / "checkpoints" / "last.pt")["epoch"] == 4


@pytest.mark.parametrize("mode", [("score", "--input", str(EXAMPLE_CSV), "--output", "s.csv"),
                                  ("export", "--format", "torchscript", "--output", "m.pt")])
def test_score_and_export_refuse_a_set_that_changes_the_trained_windows(finished, tmp_path, capsys, mode):
    argv = [str(finished / "config.json"), "--mode", *mode[:-1], str(tmp_path / mode[-1])]
    assert main.main([*argv, "--set", "data.time_steps=60"]) == 2
    err = capsys.readouterr().err
    assert f"--set data.time_steps=60: the run {finished} was trained with data.time_steps=100" in err
    assert "drop this --set, or train a new run" in err
    assert not (tmp_path / mode[-1]).exists()


def test_a_set_equal_to_the_trained_value_is_accepted(finished, tmp_path):
    out = tmp_path / "m.pt"
    argv = [str(finished / "config.json"), "--mode", "export", "--format", "torchscript", "--output", str(out)]
    assert main.main([*argv, "--set", "data.time_steps=100", "--set", "trainer.epochs=7"]) == 0


@pytest.mark.parametrize("umask", [0o022, 0o027])
def test_an_exported_model_has_the_mode_of_its_json_under_the_umask(finished, tmp_path, umask):
    out = tmp_path / "m.pt"
    previous = os.umask(umask)
    try:
        code = main.main([str(finished / "config.json"), "--mode", "export", "--format", "torchscript", "--output",
                          str(out)])
    finally:
        os.umask(previous)
    assert code == 0
    modes = {oct(path.stat().st_mode & 0o777) for path in (out, tmp_path / "m.pt.json")}
    assert modes == {oct(0o666 & ~umask)}


def test_a_csv_of_other_columns_names_the_run_loaded_and_the_config_that_trains_on_it(finished, tmp_path, capsys,
                                                                                       monkeypatch):
    monkeypatch.chdir(REPO_ROOT)  # the shipped configs are found in ./configs, as the commands are run
    argv = [str(finished / "config.json"), "--mode", "score", "--input", str(EXAMPLE_CSV), "--output",
            str(tmp_path / "s.csv")]
    assert main.main(argv) == 2
    err = capsys.readouterr().err
    assert "unexpected column(s) ['timestamp', 'label']" in err
    assert 'the run loaded (run, trained on data.name="converter")' in err
    assert "configs/example_csv.json trains on this file: train it and score with it" in err


def test_a_run_records_its_evaluation_time_beside_its_training_time(finished):
    seconds = json.loads((finished / "out" / "metrics.json").read_text())["seconds"]
    assert seconds["evaluation"] > 0 and seconds["training_this_process"] > 0


def test_seeding_and_building_the_models_do_not_import_the_compiler():
    """torch's compiler stack (torch._inductor, torch._dynamo) costs about 1 s of start-up: neither the
    deterministic-kernels switch nor the model's shape check may import it."""
    code = ("import sys, torch, agents; from utils.runtime.reproducibility import seed_everything; seed_everything(0); "
            "from agents.detector.checkpoint import build_checked_model; from utils.core.registry import MODELS; "
            "[build_checked_model({'name': n}, {'time_steps': 12, 'n_features': 3}) for n in MODELS.names()]; "
            "print(torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled(),"
            " 'torch._inductor' in sys.modules, 'torch._dynamo' in sys.modules)")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=REPO_ROOT)
    assert out.stdout.split() == ["True", "True", "False", "False"]


@pytest.mark.parametrize("name", MODELS.names())
def test_the_shape_probe_leaves_the_model_and_the_random_state_as_they_were(name):
    """build_checked_model runs the model on one window (not on the meta device, whose first forward imports
    torch's compiler): the weights, the train/eval mode and the random generator are as the constructor left them."""
    inputs = {"time_steps": 12, "n_features": 3}
    torch.manual_seed(0)
    expected = build_component(MODELS, {"name": name}, **inputs)
    after_build = torch.random.get_rng_state()
    torch.manual_seed(0)
    model = build_checked_model({"name": name}, inputs)
    assert torch.equal(torch.random.get_rng_state(), after_build)
    assert model.training
    for (key, value), (_, reference) in zip(model.state_dict().items(), expected.state_dict().items()):
        assert torch.equal(value, reference), key


def test_a_recurrent_model_refuses_windows_of_one_step_before_the_run_starts():
    with pytest.raises(ConfigError, match="cannot take windows of 1 steps"):
        build_checked_model({"name": "recurrent_ae"}, {"time_steps": 1, "n_features": 3})
