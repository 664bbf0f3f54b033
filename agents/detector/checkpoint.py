"""Every field of a checkpoint checked before it is used (a CheckpointError naming file and field; older ``best.pt``
layouts read in the current one), and a model's size before it is built."""
from __future__ import annotations

import logging
import math
from pathlib import Path
from typing import Any

import torch
from torch import nn

from agents.detector.scaler import SCALER_KINDS
from agents.parts import TrainState, build_component
from utils.core.config import validate_config
from utils.core.errors import CheckpointError, ConfigError, UserError
from utils.core.registry import MODELS, SCORES
from utils.core.types import MAX_INT
from utils.runs.checkpoints import plain_config
from utils.runtime.memory import TRAINING_BYTES_PER_PARAMETER, check_fits, parameter_count

DAMAGED = "the checkpoint is damaged or was not written by this project"
#: The largest covariance a score fits (Ledoit-Wolf and pinvh: 1.3 s at 1024 dimensions, 7 s at 2048, minutes at 5000).
MAX_GAUSSIAN_DIM = 1024

logger = logging.getLogger("anomaly")


def fail(source: Path, field: str, problem: str) -> CheckpointError:
    """The error for one bad field."""
    return CheckpointError(f"{source}: field {field!r} {problem}; {DAMAGED}")


def expect(ok: bool, value: Any, field: str, source: Path, expected: str, by_type: bool = False) -> None:
    """Unless ``ok``: the error ``field holds <value> (or, ``by_type``, its type's name), expected <expected>``."""
    if not ok:
        raise fail(source, field, f"holds {type(value).__name__ if by_type else _show(value)}, expected {expected}")


def check_training_checkpoint(ckpt: dict[str, Any], source: Path) -> None:
    """The fields ``--resume`` reads from ``last.pt`` (the optimizer's and RNG's are checked as they load)."""
    keys = ("model", *TrainState.required_keys(), "scaler", "rng", "optimizer")
    if missing := [key for key in keys if key not in ckpt]:
        raise CheckpointError(f"{source}: not a training checkpoint of this project (missing {', '.join(missing)})")
    check_tensors(ckpt["model"], "model", source)
    optimizer = ckpt["optimizer"]
    if not (isinstance(optimizer, dict) and isinstance(optimizer.get("state"), dict)
            and isinstance(optimizer.get("param_groups"), list)):
        raise fail(source, "optimizer", "is not an optimizer state (an object with state and param_groups)")
    for index, state in optimizer["state"].items():
        check_tensors(state, f"optimizer.state.{index}", source, numbers=True)
    scheduler = ckpt.get("scheduler")
    expect(scheduler is None or isinstance(scheduler, dict), scheduler, "scheduler", source, "null or an object", True)
    expect(isinstance(ckpt["rng"], dict), ckpt["rng"], "rng", source, "the RNG states (an object)", True)
    check_scaler(ckpt["scaler"], source)


def check_matches_data(ckpt: dict[str, Any], source: Path, model_inputs: dict[str, int],
                       feature_names: list[str]) -> None:
    """A ``last.pt``'s record of its data agrees with the data this config builds (fields it lacks are skipped)."""
    for key, ours in (("model_inputs", dict(model_inputs)), ("feature_names", list(feature_names)),
                      ("window_length", model_inputs["time_steps"])):
        if key in ckpt and not _same(ckpt[key], ours):
            raise fail(source, key, f"holds {_show(ckpt[key])} but this config's data gives {_show(ours)} (or the "
                       "run was trained on other data)")


def _same(theirs: Any, ours: Any) -> bool:
    """Equal and of the same type, without letting a tensor's element-wise ``==`` raise."""
    try:
        return type(theirs) is type(ours) and bool(theirs == ours)
    except (RuntimeError, TypeError, ValueError):
        return False


def check_scoring_checkpoint(ckpt: dict[str, Any], source: Path) -> dict[str, Any]:
    """The fields a detector is rebuilt from (``best.pt``); returns the checkpoint's config, validated."""
    if missing := next((key for key in ("model", "config", "scaler", "model_inputs") if key not in ckpt), None):
        raise CheckpointError(f"{source}: not a best.pt of this project (missing {missing})")
    try:  # validated as a config file is
        config = validate_config(plain_config(ckpt["config"], source, DAMAGED), source=f"{source}: field 'config'")
    except ConfigError as err:
        raise CheckpointError(str(err)) from None
    check_tensors(ckpt["model"], "model", source)
    inputs = ckpt["model_inputs"]
    expect(isinstance(inputs, dict) and not set(inputs) - {"time_steps", "n_features"} and "n_features" in inputs,
           inputs, "model_inputs", source, "{time_steps, n_features}")
    for key, value in inputs.items():
        expect(_count(value), value, f"model_inputs.{key}", source, _COUNT)
    if ckpt.get("window_length") is not None:
        expect(_count(ckpt["window_length"]), ckpt["window_length"], "window_length", source, _COUNT)
        if inputs.get("time_steps", ckpt["window_length"]) != ckpt["window_length"]:
            raise fail(source, "window_length", f"is {ckpt['window_length']} but model_inputs.time_steps is "
                       f"{inputs['time_steps']}")
    n_features = check_scaler(ckpt["scaler"], source)
    if n_features != inputs["n_features"]:
        raise fail(source, "scaler", f"scales {n_features} features but model_inputs.n_features is "
                   f"{inputs['n_features']}")
    names = ckpt.get("feature_names")
    expect(names is None or (_names(names) and len(names) == n_features), names, "feature_names", source,
           f"{n_features} names (strings)")
    scoring = ckpt.get("scoring")
    expect(scoring is None or isinstance(scoring, dict), scoring, "scoring", source, "an object", True)
    return config


def check_scoring_state(scoring: dict[str, Any], source: Path, model: nn.Module,
                        inputs: dict[str, int]) -> dict[str, Any]:
    """``scoring`` in the current layout (:func:`current_scoring`), checked: score names, statistics (each mean of its
    score's feature dimension, where known), thresholds, ``false_alarm_rate``, calibration scores and ``recording``."""
    scoring = current_scoring(scoring)
    scores = scoring.get("scores", [])
    expect(isinstance(scores, list) and all(isinstance(n, str) and n in SCORES for n in scores), scores,
           "scoring.scores", source, f"a list of: {', '.join(SCORES.names())}")
    statistics = scoring.get("statistics", {})
    expect(isinstance(statistics, dict), statistics, "scoring.statistics", source, "an object", True)
    for name in scores:
        if missing := [key for key in SCORES.get(name).statistics if key not in statistics.get(name, {})]:
            raise fail(source, f"scoring.statistics.{name}", f"lacks {', '.join(missing)}, which score {name!r} needs")
    for name, stats in statistics.items():
        check_tensors(stats, f"scoring.statistics.{name}", source, numbers=True)
        for key, ndim in (("mean", 1), ("precision", 2)):
            expect(key not in stats or (isinstance(stats[key], torch.Tensor) and stats[key].ndim == ndim),
                   stats.get(key), f"scoring.statistics.{name}.{key}", source, f"a {ndim}-D tensor")
        if "shrinkage" in stats:  # a Ledoit-Wolf coefficient: one number
            value = stats["shrinkage"]
            number = value.item() if isinstance(value, torch.Tensor) and value.numel() == 1 else value
            expect(_finite_number(number) and 0 <= number <= 1, value, f"scoring.statistics.{name}.shrinkage", source,
                   "a number in [0, 1]")
        mean, precision = stats.get("mean"), stats.get("precision")
        if precision is not None and (mean is None or precision.shape != (len(mean), len(mean))):  # both checked above
            raise fail(source, f"scoring.statistics.{name}.precision", "is not a D x D matrix for its mean of "
                       f"D={len(mean) if mean is not None else '?'} values")
    thresholds = scoring.get("thresholds", {})
    expect(isinstance(thresholds, dict) and all(isinstance(k, str) and k in SCORES and _finite_number(v)
                                                for k, v in thresholds.items()),
           thresholds, "scoring.thresholds", source, "finite numbers by score name")
    if thresholds and set(scores) - set(thresholds):
        lacking = ", ".join(sorted(set(scores) - set(thresholds)))
        raise fail(source, "scoring.thresholds", f"has no threshold for {lacking}")
    alpha = scoring.get("false_alarm_rate")
    expect(alpha is None or (_finite_number(alpha) and 0 <= alpha < 1), alpha, "scoring.false_alarm_rate", source,
           "a number in [0, 1)")
    calibration = scoring.get("calibration", {})
    expect(isinstance(calibration, dict), calibration, "scoring.calibration", source, "an object", True)
    for name, values in calibration.items():
        expect(isinstance(name, str) and name in SCORES and _finite_tensor(values), values,
               f"scoring.calibration.{name}", source, "a non-empty 1-D tensor of finite scores")
    if calibration and alpha is None:
        raise fail(source, "scoring.false_alarm_rate", "is missing, but the calibration scores need it")
    recording = scoring.get("recording")
    expect(recording is None or isinstance(recording, dict), recording, "scoring.recording", source, "an object", True)
    for key, (ok, expected) in _RECORDING.items():
        if key in (recording or {}):
            expect(ok(recording[key]), recording[key], f"scoring.recording.{key}", source, expected)
    space = {"latent": latent_size(model, inputs), "errors": inputs["time_steps"] * inputs["n_features"], None: None}
    for name, stats in statistics.items():
        expected, mean = (space[SCORES.get(name).feature_space] if name in SCORES else None), stats.get("mean")
        if expected is not None and mean is not None and torch.as_tensor(mean).shape != (expected,):
            raise fail(source, f"scoring.statistics.{name}.mean", f"has shape {tuple(torch.as_tensor(mean).shape)}, "
                       f"but the model's {name} features have {expected} values")
    return scoring


def check_scaler(scaler: Any, source: Path) -> int:
    """A fitted scaler's state: its kind and finite 1-D offset and positive scale; returns the feature count."""
    expect(isinstance(scaler, dict) and scaler.get("kind") in SCALER_KINDS, scaler, "scaler", source,
           f"a fitted scaler ({', '.join(SCALER_KINDS)})")
    for key in ("offset", "scale"):
        expect(_finite_tensor(scaler.get(key)), scaler.get(key), f"scaler.{key}", source,
               "a 1-D tensor of finite numbers")
    if len(scaler["offset"]) != len(scaler["scale"]) or not bool((scaler["scale"] > 0).all()):
        raise fail(source, "scaler.scale", "does not match the offset or is not positive")
    return len(scaler["offset"])


def check_tensors(value: Any, field: str, source: Path, numbers: bool = False) -> None:
    """A dict of tensors (and, with ``numbers``, plain numbers) by string or int key, every value finite."""
    expect(isinstance(value, dict), value, field, source, "an object of tensors", True)
    for key, item in value.items():
        if not isinstance(item, torch.Tensor):
            expect(numbers and _finite_number(item), item, f"{field}.{key}", source,
                   f"a tensor{' or a finite number' if numbers else ''}")
        elif item.is_floating_point() and not bool(torch.isfinite(item).all()):
            raise fail(source, f"{field}.{key}", "holds NaN or infinite values")


def _count(value: Any) -> bool:
    """A positive integer within :data:`MAX_INT`."""
    return isinstance(value, int) and not isinstance(value, bool) and 0 < value <= MAX_INT


def _finite_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _finite_tensor(value: Any) -> bool:
    """A non-empty 1-D floating-point tensor of finite values."""
    return (isinstance(value, torch.Tensor) and value.ndim == 1 and value.is_floating_point() and len(value) > 0
            and bool(torch.isfinite(value).all()))


def _names(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(n, str) for n in value)


def _show(value: Any) -> str:
    return text if len(text := repr(value)) <= 60 else text[:57] + "..."


_COUNT = f"a positive integer up to {MAX_INT}"
#: ``scoring.recording``'s fields (each null where unknown): whether a value is valid, and what is expected.
_RECORDING = {
    "timestamp_column": (lambda v: v is None or isinstance(v, str), "a column name or null"),
    "label_columns": (_names, "a list of column names"),
    "ignore_columns": (_names, "a list of column names"),
    "reference_rows": (lambda v: v is None or _count(v), _COUNT),
    "training_rows": (lambda v: v is None or _count(v), _COUNT),
    "sample_period_s": (lambda v: v is None or (_finite_number(v) and v > 0), "a positive number of seconds or null"),
}


def check_baselines_state(state: Any, source: Path) -> None:
    """``baselines``: the fitted state of each baseline by name (tensors, finite numbers and the window shape)."""
    from agents.detector.baselines import BASELINE_NAMES

    expect(isinstance(state, dict), state, "baselines", source, "an object by baseline name", True)
    for name, fields in state.items():
        if name not in BASELINE_NAMES:
            raise fail(source, f"baselines.{name}", f"is not a baseline; expected one of {', '.join(BASELINE_NAMES)}")
        shape = fields.get("window_shape") if isinstance(fields, dict) else None
        expect(isinstance(shape, list) and len(shape) == 2 and all(isinstance(v, int) for v in shape), shape,
               f"baselines.{name}.window_shape", source, "[T, F]")
        check_tensors({k: v for k, v in fields.items() if k != "window_shape"}, f"baselines.{name}", source,
                      numbers=True)


def build_checked_model(section: dict[str, Any], inputs: dict[str, int], source: str | None = None,
                        error: type[UserError] = ConfigError) -> nn.Module:
    """Build the model ``section`` names for ``inputs`` (from the checkpoint ``source``; None: config and data) once
    its size (counted on the meta device) fits in memory and it takes one window; else raise ``error``."""
    with torch.device("meta"):
        meta = build_component(MODELS, section, **inputs)
    count = parameter_count(lambda: meta)
    keys = [f"model.{k}={v}" for k, v in section.items() if k != "name" and not isinstance(v, str)]
    if source is not None:
        keys = [f"config.{key}" for key in keys] + [f"model_inputs.{k}={v}" for k, v in inputs.items()]
    shape = ", ".join(f"{k}={v}" for k, v in inputs.items())
    where = f"{source}: " if source is not None else ""
    check_fits(count * TRAINING_BYTES_PER_PARAMETER, f"the {count:,} parameters of model {section['name']!r} "
               f"({shape})", where + (", ".join(keys) or "model"), error)
    model = build_component(MODELS, section, **inputs)
    try:
        probe_one_window(model, inputs, "forward")
    except ValueError as err:  # the models' own input checks
        keys = "data.time_steps / data.window_length" if not where else "model_inputs"
        raise error(f"{where}model {section['name']!r} cannot take windows of {inputs['time_steps']} steps x "
                    f"{inputs['n_features']} features ({err}); change {keys} or the model") from None
    return model


def probe_one_window(model: nn.Module, inputs: dict[str, int], method: str) -> torch.Tensor:
    """``model.<method>`` on one window of zeros (1, T, F) in eval mode, leaving its mode and the RNGs as they were."""
    was_training = model.training
    try:
        with torch.random.fork_rng(devices=[]), torch.inference_mode():
            device = next(model.parameters(), torch.empty(0)).device
            return getattr(model.eval(), method)(torch.zeros(1, inputs["time_steps"], inputs["n_features"],
                                                             device=device))
    finally:
        model.train(was_training)


def latent_size(model: nn.Module, inputs: dict[str, int]) -> int | None:
    """Values per window of the model's latent code (None without a latent space)."""
    has_latent = getattr(model, "has_latent", lambda: False)()
    return int(probe_one_window(model, inputs, "encode").shape[-1]) if has_latent else None


def check_score_dimensions(scores: list[str], model: nn.Module, inputs: dict[str, int], config: Any,
                           fit_sizes: dict[str, int]) -> None:
    """Refuse a covariance score of more than :data:`MAX_GAUSSIAN_DIM` dimensions; warn at more than the windows it
    is fitted on (``fit_sizes``: ``{"train": N, "val": N}``)."""
    for i, name in enumerate(scores):
        score = SCORES.get(name)
        if "precision" not in score.statistics:  # no covariance: its cost does not grow as D^3
            continue
        if score.feature_space == "errors":
            dim, split = inputs["time_steps"] * inputs["n_features"], score.fit_split
            source = (f"the window's {inputs['time_steps']} time steps x {inputs['n_features']} features; "
                      "shorten the windows (data.time_steps, data.window_length)")
        else:
            dim, split = latent_size(model, inputs), "train"
            set_by = [f"model.{k}={config.model[k]}" for k in ("latent_dim", "hidden_size", "num_layers")
                      if config.model.get(k) is not None]
            source = f"the model's latent code; set by {', '.join(set_by) or 'the model config'}"
        if dim is None:
            continue
        if dim > MAX_GAUSSIAN_DIM:
            raise ConfigError(f"evaluation.scores.{i}: score {name!r} would fit a {dim} x {dim} covariance ({source}), "
                              f"beyond the {MAX_GAUSSIAN_DIM} dimensions it fits in reasonable time (the cost grows "
                              f"as D^3); lower it, or drop {name!r} from evaluation.scores")
        if dim > fit_sizes[split]:
            logger.warning("evaluation.scores.%d: score %r fits a %d-dimensional covariance on %d %s windows; with "
                           "fewer windows than dimensions it rests mostly on shrinkage", i, name, dim,
                           fit_sizes[split], split)


#: best.pt written before the detector kept flat keys per agent: ``<prefix>_<statistic>`` by score.
_LEGACY_PREFIXES = {"latent_mahalanobis": "latent", "error_gaussian": "error", "latent_euclidean": "latent"}


def current_scoring(scoring: dict[str, Any]) -> dict[str, Any]:
    """``scoring`` of a best.pt in the current layout (older files kept flat per-agent keys)."""
    if "statistics" in scoring or not scoring:
        return scoring
    stats = {name: {key: scoring[f"{prefix}_{key}"] for key in SCORES.get(name).statistics}
             for name, prefix in _LEGACY_PREFIXES.items() if f"{prefix}_mean" in scoring}
    return {"scores": list(scoring.get("thresholds", {})), "statistics": stats,
            "thresholds": scoring.get("thresholds", {})}
