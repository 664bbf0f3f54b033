"""Fuzzing the config loader: whatever JSON or override comes in, only ConfigError comes out.

Random objects are built from the real schema's keys and registry names mixed
with random strings, so the fuzzer reaches the component validators and not
only the top-level "missing key" errors.
"""
from __future__ import annotations

import copy
import json
import os
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import agents  # noqa: F401  (fills the registries)
from utils.core.config import COMPONENTS, EvaluationConfig, RunConfig, TrainerConfig, apply_override, config_params, \
    load_config, validate_config
from utils.core.errors import ConfigError
from utils.core.registry import AGENTS

CONFIGS = sorted((Path(__file__).resolve().parents[1] / "configs").glob("*.json"))
BASES = [json.loads(path.read_text()) for path in CONFIGS]
SECTIONS = {"trainer": list(TrainerConfig.model_fields), "evaluation": list(EvaluationConfig.model_fields)}
for section, registry in COMPONENTS.items():
    SECTIONS[section] = sorted({"name", *(key for name in registry.names()
                                          for key in config_params(registry.get(name)))})
NAMES = sorted({*AGENTS.names(), *(name for registry in COMPONENTS.values() for name in registry.names())})
KEYS = sorted({*RunConfig.model_fields, *(key for keys in SECTIONS.values() for key in keys)})
DOTTED = [*RunConfig.model_fields, *(f"{section}.{key}" for section, keys in SECTIONS.items() for key in keys)]

# ~150 examples in all by default; FUZZ_EXAMPLES=2000 for a deeper search.
EXAMPLES = int(os.environ.get("FUZZ_EXAMPLES", "40"))
FUZZ = settings(max_examples=EXAMPLES, deadline=None, database=None, suppress_health_check=[HealthCheck.too_slow])

leaves = (st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=12)
          | st.sampled_from(NAMES) | st.sampled_from(["minmax", "plateau", "lstm", "auto", "official", "mse"]))
keys = st.sampled_from(KEYS) | st.text(max_size=10)
values = st.recursive(leaves, lambda inner: st.lists(inner, max_size=4) | st.dictionaries(keys, inner, max_size=5),
                      max_leaves=15)


def only_config_errors(call, *args) -> None:
    """Run ``call``; success or ConfigError are fine, any other exception fails the test."""
    try:
        call(*args)
    except ConfigError as err:
        assert str(err)


@FUZZ
@given(st.dictionaries(keys, values, max_size=8))
def test_random_objects(raw):
    only_config_errors(validate_config, raw)


@FUZZ
@given(st.sampled_from(BASES), st.lists(st.tuples(st.sampled_from(DOTTED) | st.text(max_size=12),
                                                  values | st.just("<delete>")), min_size=1, max_size=4))
def test_mutated_shipped_configs(base, mutations):
    raw = copy.deepcopy(base)
    for dotted, value in mutations:
        node, *path = [raw, *dotted.split(".")]
        for part in path[:-1]:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if isinstance(node, dict):
            node.pop(path[-1], None) if value == "<delete>" else node.__setitem__(path[-1], value)
    only_config_errors(validate_config, raw)


@FUZZ
@given(st.sampled_from(BASES), st.lists(
    st.text(max_size=30) | st.builds(lambda k, v: f"{k}={v}", st.sampled_from(DOTTED) | st.text(max_size=12),
                                     st.text(max_size=12) | values.map(json.dumps)),
    min_size=1, max_size=3))
def test_random_overrides(base, overrides):
    raw = copy.deepcopy(base)

    def apply_all():
        for item in overrides:
            apply_override(raw, item)
        validate_config(raw, source="--set")

    only_config_errors(apply_all)


@FUZZ
@given(st.binary(max_size=200) | (values.map(json.dumps) | st.text(max_size=200)).map(str.encode))
def test_random_files(content):
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "c.json"
        path.write_bytes(content)
        only_config_errors(load_config, path)
        only_config_errors(load_config, path, ["trainer.epochs=2"])


def test_deep_nesting_is_a_config_error(tmp_path):
    deep = "[" * 100_000 + "]" * 100_000
    path = tmp_path / "deep.json"
    path.write_text(f'{{"exp_name": "x", "description": {deep}}}')
    only_config_errors(load_config, path)
    only_config_errors(apply_override, {}, f"trainer.epochs={deep}")
    raw = copy.deepcopy(BASES[0])
    nested: list = []
    for _ in range(5000):
        nested = [nested]
    raw["description"] = nested
    only_config_errors(validate_config, raw)


def test_non_finite_numbers_are_refused():
    for value in ("Infinity", "-Infinity", "NaN", "1e999"):
        raw = copy.deepcopy(BASES[0])
        apply_override(raw, f"trainer.learning_rate={value}")
        try:
            validate_config(raw)
        except ConfigError as err:
            assert "trainer.learning_rate" in str(err)
        else:
            raise AssertionError(f"learning_rate={value} was accepted")
