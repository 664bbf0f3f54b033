"""Defects found by benchmarks/bad_input_sweep.py (issue 12), each reproduced before its fix."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import main
from utils.core.config import MAX_CONFIG_BYTES, load_config
from utils.core.errors import ConfigError

SHIPPED = Path(__file__).resolve().parents[1] / "configs" / "vae_converter.json"


def _config_text(**model: object) -> str:
    raw = json.loads(SHIPPED.read_text())
    raw["model"].update(model)
    return json.dumps(raw)


def test_duplicate_key_in_a_config_file_is_refused(tmp_path):
    # json.loads keeps the last of two values silently: latent_dim 3 was trained although the file also says 2
    text = _config_text().replace('"latent_dim": 64', '"latent_dim": 2, "latent_dim": 3')
    assert '"latent_dim": 2, "latent_dim": 3' in text
    path = tmp_path / "dup.json"
    path.write_text(text)
    with pytest.raises(ConfigError, match=r'dup.json: invalid JSON: key "latent_dim" appears twice in one object'):
        load_config(path)


def test_duplicate_key_in_a_set_value_is_refused():
    with pytest.raises(ConfigError, match=r'--set model: key "latent_dim" appears twice'):
        load_config(SHIPPED, ['model={"name": "vae", "latent_dim": 2, "latent_dim": 3}'])


def test_number_of_5000_digits_is_a_config_error_not_a_traceback(tmp_path, capsys):
    path = tmp_path / "huge.json"
    path.write_text(_config_text().replace('"seed": 42', '"seed": ' + "9" * 5000))
    with pytest.raises(ConfigError, match=r"huge.json: invalid JSON: a number with more than 4300 digits"):
        load_config(path)
    assert main.main([str(path)]) == 2
    assert "Traceback" not in capsys.readouterr().err
    with pytest.raises(ConfigError, match=r"--set seed: a number with more than 4300 digits"):
        load_config(SHIPPED, ["seed=" + "9" * 5000])


def test_endless_or_huge_config_file_is_refused_before_it_fills_memory(tmp_path):
    # /dev/zero used to be read until MemoryError (a traceback after eating the machine's memory)
    with pytest.raises(ConfigError, match=r"/dev/zero: not a config file: more than 16 MiB"):
        load_config("/dev/zero")
    big = tmp_path / "big.json"
    big.write_bytes(b" " * (MAX_CONFIG_BYTES + 1))
    with pytest.raises(ConfigError, match=r"big.json: not a config file"):
        load_config(big)


def test_shipped_configs_still_load():
    for path in sorted(SHIPPED.parent.glob("*.json")):
        load_config(path)


def test_empty_experiments_dir_is_refused():
    # "" used to put the run folder into the current directory (a run folder "x" in the repository root)
    with pytest.raises(ConfigError, match=r"experiments_dir: String should have at least 1 character"):
        load_config(SHIPPED, ["experiments_dir="])

