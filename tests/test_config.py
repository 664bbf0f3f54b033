"""Config loading: every user mistake gives one ConfigError naming file and key."""
from __future__ import annotations

import json
from pathlib import Path

import pytest

import agents  # noqa: F401  (fills the registries)
from utils.core.config import apply_override, load_config, validate_config
from utils.core.registry import MODELS, SCORES
from utils.core.errors import ConfigError

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))


def write(tmp_path: Path, obj) -> Path:
    path = tmp_path / "c.json"
    path.write_text(obj if isinstance(obj, str) else json.dumps(obj))
    return path


def base_config() -> dict:
    return json.loads((Path(__file__).resolve().parents[1] / "configs" / "vae_converter.json").read_text())


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_shipped_configs_are_valid(path):
    config = load_config(path)
    assert config.exp_name and config.trainer.epochs > 0


def test_defaults_are_filled_in(tmp_path):
    raw = base_config()
    del raw["trainer"]["batch_size"]
    config = load_config(write(tmp_path, raw))
    assert config.trainer.batch_size == 64
    assert config.data.time_steps == 100


def expect_error(tmp_path, raw, *fragments, overrides=None):
    with pytest.raises(ConfigError) as err:
        load_config(write(tmp_path, raw), overrides)
    message = str(err.value)
    for fragment in fragments:
        assert fragment in message, message
    return message


def test_malformed_json_names_line_and_column(tmp_path):
    text = '{\n  "exp_name": "x",\n  "agent": "vae"\n  "seed": 1\n}'
    expect_error(tmp_path, text, "c.json:4:3", "invalid JSON")


@pytest.mark.parametrize("edit, where, hint", [
    ('"seed": 1, // mine', "c.json:2:14", "(JSON has no comments: remove it, or write it as a \"description\" value)"),
    ('"seed": 1,\n  # mine', "c.json:3:3", "(JSON has no comments"),
    ('"seed": 1, /* mine */', "c.json:2:14", "(JSON has no comments"),
    ("'seed': 1,", "c.json:2:3", "(JSON takes double quotes: \"key\", not 'key')"),
    ('"seed": 1,,', "c.json:2:13", "(a comma too many: remove the one before this place)"),
    ('"seed": 1, "agent": "vae",}', "c.json:2:29", "(a comma too many"),
])
def test_json_mistakes_of_hand_edits_say_what_to_change(tmp_path, edit, where, hint):
    text = "{\n  " + edit + '\n  "exp_name": "x"\n}'
    if edit.endswith("}"):
        text = "{\n  " + edit
    expect_error(tmp_path, text, where, "invalid JSON", hint)


def test_empty_file(tmp_path):
    expect_error(tmp_path, "  \n", "c.json", "empty")


def test_top_level_not_an_object(tmp_path):
    expect_error(tmp_path, "[1, 2]", "expected a JSON object")


def test_missing_file(tmp_path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.json")


@pytest.mark.parametrize("section,name,kind", [
    ("agent", "vea", "agent"), ("model", "vaee", "model"), ("loss", "mae2", "loss"), ("data", "conv", "dataset"),
])
def test_unknown_registry_name_lists_valid_names(tmp_path, section, name, kind):
    raw = base_config()
    if section == "agent":
        raw["agent"] = name
    else:
        raw[section]["name"] = name
    plural = "losses" if kind == "loss" else f"{kind}s"
    message = expect_error(tmp_path, raw, f"unknown {kind}", json.dumps(name), f"valid {plural}:")
    assert "vae" in message or "converter" in message or "mse" in message


def test_unknown_key_suggests_closest(tmp_path):
    raw = base_config()
    raw["trainer"]["epoch"] = 3
    expect_error(tmp_path, raw, "trainer.epoch: unknown key", 'did you mean "epochs"')


def test_unknown_component_key_suggests_closest(tmp_path):
    raw = base_config()
    raw["model"]["latentdim"] = 3
    expect_error(tmp_path, raw, "model.latentdim: unknown key", 'did you mean "latent_dim"')


def test_unknown_top_level_key(tmp_path):
    raw = base_config()
    raw["sed"] = 1
    expect_error(tmp_path, raw, "sed: unknown key", 'did you mean "seed"')


@pytest.mark.parametrize("section,key,value,fragment,shown", [
    ("model", "latent_dim", "8", "model.latent_dim", 'got "8"'),
    ("trainer", "epochs", 2.5, "trainer.epochs", "got 2.5"),
    ("trainer", "learning_rate", "fast", "trainer.learning_rate", 'got "fast"'),
    ("trainer", "progress_bar", "yes", "trainer.progress_bar", 'got "yes"'),
    ("model", "hidden_sizes", [64, "32"], "model.hidden_sizes.1", 'got "32"'),
])
def test_wrong_type(tmp_path, section, key, value, fragment, shown):
    raw = base_config()
    raw[section][key] = value
    expect_error(tmp_path, raw, fragment, shown)


@pytest.mark.parametrize("section,key,value", [
    ("model", "latent_dim", -3), ("model", "hidden_sizes", [0]), ("trainer", "epochs", 0),
    ("trainer", "batch_size", -1), ("evaluation", "threshold_percentile", 101),
    ("evaluation", "threshold_percentile", 0), ("loss", "beta", -1.0), ("trainer", "scheduler", "cyclic"),
])
def test_value_out_of_range(tmp_path, section, key, value):
    raw = base_config()
    raw[section][key] = value
    expect_error(tmp_path, raw, f"{section}.{key}")


def test_missing_required_key(tmp_path):
    raw = base_config()
    del raw["agent"]
    expect_error(tmp_path, raw, "agent: required key is missing")


def test_a_loss_needing_outputs_the_model_lacks_is_refused(tmp_path):
    raw = base_config()
    raw["model"] = {"name": "recurrent_ae"}
    expect_error(tmp_path, raw, "loss.name", "loss 'vae' needs the model outputs logvar, mu",
                 "model 'recurrent_ae' does not give", "losses for this model: mae, mse")


def test_any_loss_that_fits_and_any_agent_alias_work(tmp_path):
    raw = base_config()
    raw["loss"], raw["agent"] = {"name": "mse"}, "rnn_autoencoder"  # a VAE trained as a plain autoencoder
    assert validate_config(raw).loss.name == "mse"


def test_scores_default_to_the_model_s_and_are_checked(tmp_path, monkeypatch):
    raw = base_config()
    assert validate_config(raw).evaluation.scores == list(MODELS.get("vae").default_scores)
    raw["evaluation"]["scores"] = ["error_gaussian", "latent_mahalanobis"]
    assert validate_config(raw).evaluation.scores == ["error_gaussian", "latent_mahalanobis"]
    raw["evaluation"]["scores"] = ["latent_mahalanobis", "reconstructon"]
    expect_error(tmp_path, raw, 'evaluation.scores.1: unknown score "reconstructon" (did you mean "reconstruction"?)')
    raw["evaluation"]["scores"] = ["reconstruction", "reconstruction"]
    expect_error(tmp_path, raw, "evaluation.scores", "names a score twice")
    raw["evaluation"]["scores"] = ["reconstruction", "latent_mahalanobis_recording"]  # converter data: no recordings
    expect_error(tmp_path, raw, "evaluation.scores.1: score 'latent_mahalanobis_recording' is fitted on each",
                 'set data.normalize to "per_recording"')
    monkeypatch.setattr(MODELS.get("vae"), "has_latent", classmethod(lambda cls: False))
    raw["evaluation"]["scores"] = ["reconstruction", "latent_mahalanobis"]
    expect_error(tmp_path, raw, "evaluation.scores.1: score 'latent_mahalanobis' needs a latent space",
                 "scores for this model: " + ", ".join(n for n in SCORES.names() if not SCORES.get(n).needs_latent))


def test_overrides_are_parsed_as_json_and_validated(tmp_path):
    path = write(tmp_path, base_config())
    config = load_config(path, ["trainer.epochs=3", "model.hidden_sizes=[32,16]", "exp_name=other",
                                "data.anomaly_position=null"])
    assert config.trainer.epochs == 3 and config.model.hidden_sizes == [32, 16]
    assert config.exp_name == "other" and config.data.anomaly_position is None
    with pytest.raises(ConfigError, match="trainer.epochs"):
        load_config(path, ["trainer.epochs=0"])
    with pytest.raises(ConfigError, match='did you mean "epochs"'):
        load_config(path, ["trainer.epoch=3"])


@pytest.mark.parametrize("item", ["trainer.epochs", "=3", "trainer..epochs=3", "seed.x=1"])
def test_malformed_override(item):
    with pytest.raises(ConfigError, match="--set"):
        apply_override({"seed": 1}, item)


def test_all_errors_reported_at_once(tmp_path):
    raw = base_config()
    raw["trainer"]["epochs"] = 0
    raw["trainer"]["batch_size"] = "x"
    message = expect_error(tmp_path, raw, "trainer.epochs", "trainer.batch_size")
    assert len(message.splitlines()) == 2
