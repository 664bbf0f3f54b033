"""Load, override and validate a JSON experiment config (docs/configuration.md): fixed sections are pydantic
models; ``data``, ``model`` and ``loss`` are checked against the typed keyword arguments of the class they name."""
from __future__ import annotations

import difflib
import inspect
import json
import reprlib
import sys
import types
import typing
from pathlib import Path
from typing import Annotated, Any, Literal

from easydict import EasyDict
from annotated_types import Ge, Le, Lt
from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from utils.core.errors import ConfigError
from utils.core.paths import unreadable_file
from utils.core.registry import AGENTS, DATASETS, LOSSES, MODELS, SCORES, Registry
from utils.core.types import (FalseAlarmRate, NonNegativeFloat, NonNegativeInt, Percentile, PositiveFloat,
                              PositiveInt, Seed, UnitInterval, UserPath)

#: VUS's cost grows with the square of its buffer (TSB-AD buffers by the series' period, a few hundred rows).
MAX_VUS_BUFFER = 2000
#: A larger file (or a device that never ends, e.g. /dev/zero) is refused before it is read into memory.
MAX_CONFIG_BYTES = 16 * 2**20
STRICT = ConfigDict(strict=True, extra="forbid", allow_inf_nan=False)
COMPONENTS: dict[str, Registry] = {"data": DATASETS, "model": MODELS, "loss": LOSSES}


class TrainerConfig(BaseModel):
    """Optimisation and loop settings owned by BaseAgent (keys: docs/configuration.md#trainer)."""

    model_config = STRICT
    epochs: PositiveInt = 30
    batch_size: PositiveInt = 64
    learning_rate: PositiveFloat = 1e-3
    weight_decay: NonNegativeFloat = 0.0
    grad_clip_norm: PositiveFloat | None = None
    scheduler: Literal["none", "plateau", "cosine"] = "none"
    early_stopping_patience: NonNegativeInt | None = 10
    min_delta: NonNegativeFloat = 0.0
    min_delta_rel: Annotated[float, Ge(0), Lt(1)] = 1e-3  # both defaults measured: docs/configuration.md#trainer
    min_learning_rate: NonNegativeFloat = 1e-6
    log_every_n_steps: PositiveInt = 50
    progress_bar: bool = True
    deterministic: bool = True
    flush_denormal: bool = True
    checkpoint_interval_s: NonNegativeFloat = 10.0
    threads: PositiveInt | None = 1


class EvaluationConfig(BaseModel):
    """Scaling, scoring and threshold settings (keys: docs/configuration.md#evaluation)."""

    model_config = STRICT
    # threshold_percentile p is the older spelling of false_alarm_rate = 1 - p / 100; both resolved on load.
    false_alarm_rate: FalseAlarmRate | None = None
    threshold_percentile: Percentile | None = None
    scaler: Literal["minmax", "standard", "none"] = "minmax"
    batch_size: PositiveInt = 4096
    make_plots: bool = True
    scores: list[str] | None = None
    baselines: list[Literal["knn", "pca", "isolation_forest"]] = ["knn", "pca", "isolation_forest"]
    point_aggregation: Literal["max", "mean", "min"] = "max"
    incident_merge_gap: NonNegativeInt | None = None
    vus_buffer: Annotated[int, Ge(0), Le(MAX_VUS_BUFFER)] | None = None
    # Adaptive conformal inference: agents.detector.thresholds.AdaptiveThreshold.
    threshold_adapt_rate: UnitInterval = 0.0


class RunConfig(BaseModel):
    """The whole experiment; component sections are validated separately."""

    model_config = STRICT
    exp_name: str = Field(pattern=r"^[A-Za-z0-9][A-Za-z0-9_.-]*$", max_length=120)
    agent: str
    description: str = ""
    seed: Seed = 0
    device: Literal["auto", "cpu", "cuda"] = "auto"
    experiments_dir: UserPath[str] = Field(default="experiments", min_length=1)
    data: dict[str, Any]
    model: dict[str, Any]
    loss: dict[str, Any]
    trainer: TrainerConfig = TrainerConfig()
    evaluation: EvaluationConfig = EvaluationConfig()


def load_config(path: str | Path, overrides: list[str] | None = None) -> EasyDict:
    """The resolved config (defaults filled in) of a JSON file and ``"section.key=value"`` overrides (values are
    JSON where they parse, else strings); ConfigError naming the file (or ``--set``) and the dotted key."""
    raw = read_json_config(path)
    set_by: dict[str, str] = {}  # dotted key -> the --set item that gave it its value
    for item in overrides or []:
        key = item.partition("=")[0].strip()
        hidden = [earlier for dotted, earlier in set_by.items() if "=" in item and dotted.startswith(key + ".")]
        if hidden:
            raise ConfigError(f"--set {item}: replaces the whole of {key}, so the earlier --set {hidden[0]} would be "
                              f"lost; put the value of --set {hidden[0]} inside this one, or give it after this one")
        apply_override(raw, item)
        set_by = {dotted: earlier for dotted, earlier in set_by.items() if dotted != key} | {key: item}
    evaluation = raw.get("evaluation")  # a --set false_alarm_rate replaces the file's older spelling, not the reverse
    if ("evaluation.false_alarm_rate" in set_by and "evaluation.threshold_percentile" not in set_by
            and isinstance(evaluation, dict) and evaluation.get("false_alarm_rate") is not None):
        evaluation.pop("threshold_percentile", None)
    for key, item in set_by.items():
        _check_set_value(raw, key, item)
    try:
        return validate_config(raw, source=str(path))
    except ConfigError as err:
        raise ConfigError(_blame_overrides(str(err), str(path), set_by)) from None


def _check_set_value(raw: dict[str, Any], key: str, item: str) -> None:
    """A ``--set`` value that reads as a number (``exp_name=2024``) is its text where the key takes only text; elsewhere
    a list or object that is not JSON (``[a.csv,b.csv]``) is refused saying why (as text it would be misread)."""
    text = item.partition("=")[2].strip()
    *sections, name = key.split(".")
    node = raw
    for part in sections:
        node = node.get(part) if isinstance(node, dict) else None
    value = node.get(name) if isinstance(node, dict) else None
    number = isinstance(value, (int, float)) and not isinstance(value, bool)
    if not (number or text[:1] + text[-1:] in ("[]", "{}")) or _takes_text_only(raw, sections, name):
        if number:
            node[name] = text
        return
    try:
        json.loads(text)
        return
    except json.JSONDecodeError as err:
        reason = f"at character {err.pos + 1}: {err.msg}{_json_hint(err)}"
    except (ValueError, RecursionError):  # refused as such by the validation
        return
    words = [word.strip() for word in text[1:-1].split(",")]
    fix = "write strings in double quotes and the whole item in single quotes for the shell"
    if text[0] == "[" and all(word and not any(mark in word for mark in ' []{}"') for word in words):
        fixed = ", ".join(word if _is_json(word) else json.dumps(word) for word in words)
        fix += f": --set '{key}=[{fixed}]'"
    raise ConfigError(f"--set {item}: not valid JSON {reason}; {fix}")


def _is_json(text: str) -> bool:
    try:
        json.loads(text)
    except ValueError:
        return False
    return True


def _takes_text_only(raw: dict[str, Any], sections: list[str], name: str) -> bool:
    """Whether the key ``sections + [name]`` of ``raw``'s schema takes a string (or null) and no number."""
    if len(sections) == 1 and sections[0] in COMPONENTS:  # its keys are the keyword arguments of the named class
        registry, chosen = COMPONENTS[sections[0]], raw[sections[0]].get("name")
        annotation = config_params(registry.get(chosen)).get(name, (None,))[0] if chosen in registry else None
    else:
        field = _model_at(RunConfig, sections).model_fields.get(name)
        annotation = field.annotation if field is not None else None
    annotation = _bare(annotation)
    union = typing.get_origin(annotation) in (typing.Union, types.UnionType)
    options = {_bare(option) for option in (typing.get_args(annotation) if union else (annotation,))}
    return str in options and options <= {str, type(None)}


def _bare(annotation: Any) -> Any:
    """``annotation`` without its ``Annotated`` constraints."""
    return typing.get_args(annotation)[0] if typing.get_origin(annotation) is Annotated else annotation


def _blame_overrides(message: str, source: str, set_by: dict[str, str]) -> str:
    """Each line ``<source>: <dotted key>: ...`` about a value a ``--set`` gave starts with that ``--set`` instead."""
    lines = []
    for line in message.splitlines():
        rest = line.removeprefix(f"{source}: ")
        parts = rest.split(": ", 1)[0].split(".") if rest != line else []
        # the --set that gave the dotted key, or the section holding it, its value
        owners = [set_by[key] for end in range(len(parts), 0, -1) if (key := ".".join(parts[:end])) in set_by]
        lines.append(f"--set {owners[0]}: {rest}" if owners else line)
    return "\n".join(lines)


def read_json_config(path: str | Path) -> dict[str, Any]:
    """Parse a JSON object from ``path``; errors give file, line and column."""
    path = Path(path)
    problem = unreadable_file(path, allow_stream=True)  # python main.py <(...) reads a pipe
    if problem not in (None, "not found"):
        run = f"; the run's config is {path / 'config.json'}" if (path / "config.json").is_file() else ""
        raise ConfigError(f"{path}: config file {problem}; expected a JSON file such as configs/vae_converter.json{run}")
    try:
        with open(path, "rb") as file:
            data = file.read(MAX_CONFIG_BYTES + 1)
        if len(data) > MAX_CONFIG_BYTES:
            raise ConfigError(f"{path}: not a config file: more than {MAX_CONFIG_BYTES // 2**20} MiB; expected a small "
                              f"JSON object such as configs/vae_converter.json")
        text = data.decode("utf-8-sig")  # the byte order mark Windows editors write is no part of the JSON
    except FileNotFoundError:
        raise ConfigError(f"{path}: config file not found") from None
    except (OSError, UnicodeDecodeError) as err:
        raise ConfigError(f"{path}: cannot read config file ({err})") from None
    if not text.strip():
        raise ConfigError(f"{path}: config file is empty; expected a JSON object such as configs/vae_converter.json")
    try:
        raw = _parse(text, f"{path}: invalid JSON", twice=" (only one value can count)")
    except json.JSONDecodeError as err:
        raise ConfigError(f"{path}:{err.lineno}:{err.colno}: invalid JSON: {err.msg}{_json_hint(err)}") from None
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a JSON object at the top level, got {type(raw).__name__}")
    return raw


def apply_override(raw: dict[str, Any], item: str) -> None:
    """Apply one ``dotted.key=value`` override to ``raw`` in place."""
    key, sep, text = item.partition("=")
    parts = key.strip().split(".")
    if not sep or not all(parts):
        raise ConfigError(f"--set {item!r}: expected section.key=value, e.g. --set trainer.epochs=5")
    try:
        value = _parse(text, f"--set {key}", nested="value ")
    except json.JSONDecodeError:
        value = text
    node = raw
    for depth, part in enumerate(parts[:-1]):
        node = node.setdefault(part, {})
        if not isinstance(node, dict):
            raise ConfigError(f"--set {item!r}: {'.'.join(parts[: depth + 1])} is not a section")
    node[parts[-1]] = value


def _parse(text: str, where: str, twice: str = "", nested: str = "") -> Any:
    """``json.loads`` refusing a key given twice; all but a JSONDecodeError as a ConfigError after ``where``."""
    def unique_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:  # json.loads would keep the last value silently
        out: dict[str, Any] = {}
        for key, value in pairs:
            if key in out:
                raise ConfigError(f"{where}: key {json.dumps(key)} appears twice in one object{twice}; keep one")
            out[key] = value
        return out

    try:
        return json.loads(text, object_pairs_hook=unique_keys)
    except json.JSONDecodeError:
        raise
    except ValueError as err:  # an integer of more digits than Python converts (4300)
        reason = (f"a number with more than {sys.get_int_max_str_digits()} digits; no config value is that large "
                  "(integers are at most 2**31 - 1)" if "digits" in str(err) else str(err))
        raise ConfigError(f"{where}: {reason}") from None
    except RecursionError:
        raise ConfigError(f"{where}: {nested}nested too deeply") from None


def validate_config(raw: dict[str, Any], source: str = "config") -> EasyDict:
    """Validate a parsed config dict; see :func:`load_config`."""
    try:
        run = RunConfig.model_validate(raw)
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source, RunConfig)) from None
    resolved = run.model_dump()
    _check_name(AGENTS, run.agent, "agent", source)
    for section, registry in COMPONENTS.items():
        resolved[section] = _validate_component(section, registry, raw[section], source)
    _check_loss_fits_model(resolved, source)
    resolved["evaluation"]["scores"] = _resolve_scores(resolved, source)
    _resolve_false_alarm_rate(resolved["evaluation"], source)
    return EasyDict(resolved)


def config_params(target: Any) -> dict[str, tuple[Any, Any]]:
    """``{name: (type, default)}`` of the keyword arguments of ``target`` a config may set (those with a default)."""
    func = target.__init__ if inspect.isclass(target) else target
    hints = typing.get_type_hints(func, include_extras=True)
    return {name: (hints.get(name, Any), param.default) for name, param in inspect.signature(func).parameters.items()
            if param.default is not inspect.Parameter.empty and name != "self"}


def _validate_component(section: str, registry: Registry, raw: Any, source: str) -> dict[str, Any]:
    if not isinstance(raw, dict) or "name" not in raw:
        raise ConfigError(f"{source}: {section}: expected an object with a \"name\"; valid names: "
                          f"{', '.join(registry.names())}")
    name = raw["name"]
    target = _check_name(registry, name, f"{section}.name", source)
    schema = create_model(f"{section}:{name}", __config__=STRICT, **config_params(target))
    try:
        checked = schema.model_validate({k: v for k, v in raw.items() if k != "name"})
    except ValidationError as err:
        raise ConfigError(_format_errors(err, source, schema, prefix=(section,))) from None
    return {"name": name, **checked.model_dump()}


def _check_name(registry: Registry, name: Any, key: str, source: str) -> Any:
    if not isinstance(name, str) or name not in registry:
        hint = _closest(str(name), registry.names())
        raise ConfigError(f"{source}: {key}: unknown {registry.kind} {json.dumps(name)}{hint}; valid "
                          f"{'losses' if registry.kind == 'loss' else registry.kind + 's'}: {', '.join(registry.names())}")
    return registry.get(name)


def _check_loss_fits_model(resolved: dict[str, Any], source: str) -> None:
    """The loss takes only what the model gives (its ``outputs``, e.g. a VAE's mu and logvar, plus ``x``)."""
    model_name, loss_name = resolved["model"]["name"], resolved["loss"]["name"]
    given = set(getattr(MODELS.get(model_name), "outputs", ("x_hat",))) | {"x"}
    needed = required_arguments(LOSSES.get(loss_name).forward) - given
    if needed:
        fitting = [name for name in LOSSES.names() if required_arguments(LOSSES.get(name).forward) <= given]
        raise ConfigError(f"{source}: loss.name: loss {loss_name!r} needs the model outputs "
                          f"{', '.join(sorted(needed))}, which model {model_name!r} does not give; losses for this "
                          f"model: {', '.join(fitting)}")


def required_arguments(func: Any) -> set[str]:
    """Names of the arguments ``func`` cannot be called without (no default, not ``*args``/``**kwargs``)."""
    kinds = (inspect.Parameter.POSITIONAL_OR_KEYWORD, inspect.Parameter.KEYWORD_ONLY)
    return {name for name, p in inspect.signature(func).parameters.items()
            if name != "self" and p.kind in kinds and p.default is inspect.Parameter.empty}


def _resolve_scores(resolved: dict[str, Any], source: str) -> list[str]:
    """``evaluation.scores`` or the model's ``default_scores``; latent ones only for a model with a latent space."""
    model_name, names = resolved["model"]["name"], resolved["evaluation"]["scores"]
    model_cls = MODELS.get(model_name)
    if names is None:
        names = list(getattr(model_cls, "default_scores", ()))
    if not names:
        raise ConfigError(f"{source}: evaluation.scores: no score given; valid scores: {', '.join(SCORES.names())}")
    has_latent = getattr(model_cls, "has_latent", lambda: False)()
    for i, name in enumerate(names):
        score = _check_name(SCORES, name, f"evaluation.scores.{i}", source)
        if getattr(score, "needs_latent", False) and not has_latent:
            usable = [n for n in SCORES.names() if not getattr(SCORES.get(n), "needs_latent", False)]
            raise ConfigError(f"{source}: evaluation.scores.{i}: score {name!r} needs a latent space, which model "
                              f"{model_name!r} has not (no encode); scores for this model: {', '.join(usable)}")
        if getattr(score, "per_recording", False) and resolved["data"].get("normalize", "none") == "none":
            raise ConfigError(f"{source}: evaluation.scores.{i}: score {name!r} is fitted on each recording's own "
                              "training windows, which needs recordings normalised by their training part: set "
                              "data.normalize to \"per_recording\" (the csv and skab datasets), or drop the score")
    if len(set(names)) != len(names):
        raise ConfigError(f"{source}: evaluation.scores: {names} names a score twice")
    return list(names)


def _resolve_false_alarm_rate(evaluation: dict[str, Any], source: str) -> None:
    """Fill ``false_alarm_rate`` and ``threshold_percentile`` from whichever is given (they must agree)."""
    alpha, percentile = evaluation["false_alarm_rate"], evaluation["threshold_percentile"]
    if alpha is None:
        alpha = 0.01 if percentile is None else round(1.0 - percentile / 100.0, 12)
    elif percentile is not None and abs((1.0 - percentile / 100.0) - alpha) > 1e-9:
        raise ConfigError(f"{source}: evaluation.threshold_percentile: {percentile:g} means a false-alarm rate of "
                          f"{1 - percentile / 100:g}, but evaluation.false_alarm_rate is {alpha:g}; set only one")
    evaluation["false_alarm_rate"], evaluation["threshold_percentile"] = alpha, round(100.0 * (1.0 - alpha), 10)
    if alpha == 0 and evaluation["threshold_adapt_rate"] > 0:
        raise ConfigError(f"{source}: evaluation.threshold_adapt_rate: {evaluation['threshold_adapt_rate']:g} adapts "
                          "the thresholds toward evaluation.false_alarm_rate, and at 0 the first alarm raises them "
                          "beyond every later score; give a false_alarm_rate above 0, or threshold_adapt_rate 0")
    if len(set(evaluation["baselines"])) != len(evaluation["baselines"]):
        raise ConfigError(f"{source}: evaluation.baselines: {evaluation['baselines']} names a baseline twice")


def _format_errors(err: ValidationError, source: str, schema: type[BaseModel], prefix: tuple = ()) -> str:
    lines: list[str | tuple[str, ...]] = []  # a section (tuple) stands for the line of its unknown keys
    unknown: dict[tuple[str, ...], list[str]] = {}
    for e in err.errors():
        dotted = ".".join(prefix + tuple(str(p) for p in e["loc"]))
        if e["type"] == "extra_forbidden":
            section = tuple(str(p) for p in e["loc"][:-1])
            if section not in unknown:
                lines.append(section)
            unknown.setdefault(section, []).append(str(e["loc"][-1]))
        elif e["type"] == "missing":
            lines.append(f"{source}: {dotted}: required key is missing")
        else:
            message = e["msg"].removeprefix("Value error, ")  # a type's own validator words it already
            lines.append(f"{source}: {dotted}: {message}, got {_show(e.get('input'))}")
    return "\n".join(line if isinstance(line, str) else _unknown_keys_line(source, schema, prefix, line, unknown[line])
                     for line in lines)


def _unknown_keys_line(source: str, schema: type[BaseModel], prefix: tuple, section: tuple[str, ...],
                       names: list[str]) -> str:
    """One message for every unknown key of one section (a dataset switched by ``--set data.name`` leaves many)."""
    known = list(_model_at(schema, section).model_fields)
    valid = f"valid keys here: {', '.join(known) or 'none besides name'}"
    if len(names) == 1:
        return f"{source}: {'.'.join(prefix + section + (names[0],))}: unknown key{_closest(names[0], known)}; {valid}"
    where = ".".join(prefix + section) or "top level"
    if prefix + section in (("data",), ("model",), ("loss",)):  # their keys depend on their name
        return (f"{source}: {where}: {len(names)} unknown keys: {', '.join(names)} (written for another "
                f"{where}.name than this one?); {valid}")
    keys = ", ".join(n + _closest(n, known) for n in names) if len(names) <= 3 else ", ".join(names)
    return f"{source}: {where}: {len(names)} unknown keys: {keys}; {valid}"


def _model_at(schema: type[BaseModel], loc: Any) -> type[BaseModel]:
    """The section model at ``loc`` inside ``schema``; an empty model where ``loc`` names no section."""
    for part in loc:
        field = schema.model_fields.get(part)
        if field is None or not (inspect.isclass(field.annotation) and issubclass(field.annotation, BaseModel)):
            return BaseModel
        schema = field.annotation
    return schema


def _closest(name: str, candidates: list[str]) -> str:
    match = difflib.get_close_matches(name, candidates, n=1, cutoff=0.5)
    return f" (did you mean {json.dumps(match[0])}?)" if match else ""


def _show(value: Any) -> str:
    try:
        text = json.dumps(value)
    except (TypeError, ValueError, RecursionError):
        text = reprlib.repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _json_hint(err: json.JSONDecodeError) -> str:
    """The usual hand edit behind a JSON error, for the message: a comment, single quotes, a trailing comma."""
    rest, before = err.doc[err.pos:].lstrip(), err.doc[:err.pos].rstrip()
    if rest.startswith(("//", "/*", "#")):
        return " (JSON has no comments: remove it, or write it as a \"description\" value)"
    if rest.startswith("'"):
        return " (JSON takes double quotes: \"key\", not 'key')"
    if before.endswith(",") and rest.startswith(("}", "]", ",")):
        return " (a comma too many: remove the one before this place)"
    return ""
