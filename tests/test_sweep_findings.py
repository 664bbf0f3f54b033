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


def _flip_tensor_bytes(path: Path) -> None:
    import zipfile

    with zipfile.ZipFile(path) as archive:
        info = next(i for i in archive.infolist() if "/data/" in i.filename and i.file_size >= 64)
    data = bytearray(path.read_bytes())
    local = info.header_offset  # the data follows the local header: 30 bytes, the name, the (padded) extra field
    start = local + 30 + int.from_bytes(data[local + 26:local + 28], "little") + \
        int.from_bytes(data[local + 28:local + 30], "little")
    for i in range(start + 8, start + 16):
        data[i] ^= 0xFF
    path.write_bytes(bytes(data))


def test_flipped_bytes_in_a_checkpoint_tensor_are_refused(tmp_path):
    # torch.load does not check the zip's CRC-32: the flipped bytes loaded silently as other, finite weights
    import torch

    from utils.core.errors import CheckpointError
    from utils.runs.checkpoints import load_checkpoint

    path = tmp_path / "last.pt"
    torch.save({"model": {"w": torch.arange(64, dtype=torch.float32)}, "epoch": 1, "global_step": 1}, path)
    load_checkpoint(path)
    _flip_tensor_bytes(path)
    torch.load(path, weights_only=True)  # what used to happen: it loads
    with pytest.raises(CheckpointError, match=r"last.pt: checkpoint is corrupt: its part '.*' fails its CRC-32"):
        load_checkpoint(path)


def test_integer_weights_are_refused_not_cast():
    # load_state_dict casts int64 weights to float silently (a model of truncated weights)
    from torch import nn

    from utils.core.errors import CheckpointError
    from utils.runs.checkpoints import load_model_state

    model = nn.Linear(3, 2)
    state = {k: v.clone() for k, v in model.state_dict().items()}
    state["weight"] = state["weight"].long()
    with pytest.raises(CheckpointError, match=r"x.pt: tensor 'weight' holds int64 values in the checkpoint, but "
                                              r"the model's are float32"):
        load_model_state(model, state, Path("x.pt"))
    state["weight"] = state["weight"].double()  # float64 converts without loss of meaning: still loads
    load_model_state(model, state, Path("x.pt"))


def test_output_through_a_missing_folder_and_dotdot_is_the_input(tmp_path):
    # 'new/../in.csv' did not exist while 'new' was missing; the writer made 'new' and replaced the input
    from utils.runs.outputs import OutputError, check_output

    inp = tmp_path / "in.csv"
    inp.write_text("voltage\n1\n")
    tricky = tmp_path / "new" / ".." / "in.csv"
    with pytest.raises(OutputError, match=r"is the input file"):
        check_output(tricky, overwrite=True, inputs=(inp,))
    other = tmp_path / "other.csv"
    other.write_text("mine\n")
    with pytest.raises(OutputError, match=r"exists; add --overwrite"):
        check_output(tmp_path / "new2" / ".." / "other.csv", inputs=(inp,))
    assert inp.read_text() == "voltage\n1\n" and other.read_text() == "mine\n"


def test_output_name_too_long_is_an_output_error(tmp_path):
    from utils.runs.outputs import OutputError, check_output

    with pytest.raises(OutputError, match=r"cannot be used as a file name \(File name too long\)"):
        check_output(tmp_path / ("a" * 300 + ".csv"))


def test_csv_in_utf32_or_utf16_without_bom_is_named(tmp_path):
    from datasets.csv_reading import read_header
    from utils.core.errors import DataError

    text = "voltage,current\n1,2\n"
    path = tmp_path / "u32.csv"
    path.write_bytes(text.encode("utf-32"))
    with pytest.raises(DataError, match=r"u32.csv: the file is UTF-32 text"):
        read_header(path)
    path.write_bytes(text.encode("utf-16-be"))
    with pytest.raises(DataError, match=r"u32.csv: line 1 holds NUL bytes \(every other byte is NUL: UTF-16"):
        read_header(path)


def test_output_that_is_a_device_or_a_dangling_symlink_is_not_replaced(tmp_path):
    # run as root, --output /dev/full --overwrite replaced the device node with the scores CSV; a dangling symlink
    # was replaced without --overwrite
    import os

    from utils.runs.outputs import OutputError, check_output

    with pytest.raises(OutputError, match=r"/dev/full: is not a regular file"):
        check_output("/dev/full", overwrite=True)
    fifo = tmp_path / "pipe"
    os.mkfifo(fifo)
    with pytest.raises(OutputError, match=r"pipe: is not a regular file"):
        check_output(fifo, overwrite=True)
    link = tmp_path / "dangling.csv"
    os.symlink(tmp_path / "nowhere" / "x.csv", link)
    with pytest.raises(OutputError, match=r"dangling.csv: exists; add --overwrite"):
        check_output(link)
    check_output(link, overwrite=True)
