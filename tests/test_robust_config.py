"""One validation path: every config-settable argument is typed and bounded, so a bad value exits 2 with its key."""
from __future__ import annotations

import typing

import pytest
from annotated_types import Le, Lt

import agents  # noqa: F401  (fills the registries)
from tests.helpers import REPO_ROOT, run_main
from utils.core.config import COMPONENTS, config_params

UNTYPED = (int, float, typing.Any)


def _bounded(hint: typing.Any) -> bool:
    """An int hint carries an upper bound (in an Annotated, or in each member of a union)."""
    if typing.get_origin(hint) is typing.Annotated:
        base, *meta = typing.get_args(hint)
        return base is not int or any(isinstance(m, (Le, Lt)) for m in meta)
    if typing.get_origin(hint) in (typing.Union, __import__("types").UnionType, list, tuple):
        return all(_bounded(arg) for arg in typing.get_args(hint) if arg is not Ellipsis)
    return hint not in UNTYPED


@pytest.mark.parametrize("section", sorted(COMPONENTS))
def test_every_component_argument_is_typed_and_bounded(section):
    registry = COMPONENTS[section]
    loose = [f"{section}.{key} of {name} ({hint})" for name in registry.names()
             for key, (hint, _) in config_params(registry.get(name)).items() if not _bounded(hint)]
    assert not loose, "annotate with utils.core.types: " + ", ".join(loose)


@pytest.mark.parametrize("override, fragment", [
    ("seed=4294967296", "seed: Input should be less than 4294967296, got 4294967296"),
    ("trainer.batch_size=100000000000000000000", "trainer.batch_size: Input should be less than or equal to "
                                                 "2147483647, got 100000000000000000000"),
    ("data.time_steps=1e8", "data.time_steps: Input should be a valid integer, got 100000000.0"),
    ('data.anomaly_types=["spike"]', "data.anomaly_types.0: Input should be 'voltage_spike', "
                                     "'current_oscillation' or 'temperature_drift', got \"spike\""),
    ("data.val_fraction=1", "data.val_fraction: Input should be less than 1, got 1"),
    ("model.hidden_sizes=5", "model.hidden_sizes: Input should be a valid list, got 5"),
    ("model.hidden_sizes.0=5", "--set 'model.hidden_sizes.0=5': model.hidden_sizes is not a section"),
])
def test_out_of_range_values_exit_2_naming_the_key(tmp_path, capsys, override, fragment):
    code = run_main("vae_converter.json", tmp_path, "exp_name=x", override)
    err = capsys.readouterr().err
    assert code == 2 and fragment in err and "Traceback" not in err, err
    assert not any(tmp_path.iterdir())


def test_a_model_that_cannot_take_the_data_windows_is_refused_before_the_run_folder(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(REPO_ROOT)
    code = run_main("example_csv.json", tmp_path, "exp_name=x", 'model={"name": "recurrent_ae", "hidden_size": 4}',
                    'loss={"name": "mse"}', "evaluation.scores=null", "data.window_length=1")
    err = capsys.readouterr().err
    assert code == 2 and "model 'recurrent_ae' cannot take windows of 1 steps x 3 features (expected input of " \
                         "shape (batch, time >= 2, 3), got (1, 1, 3)); change data.time_steps / data.window_length " \
                         "or the model" in err, err
    assert not any(tmp_path.iterdir())
