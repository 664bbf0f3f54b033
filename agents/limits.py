"""What a config or a checkpoint asks for, checked before it is built: model size, score dimensions.

The model is first built on the meta device (no memory), its parameters counted and the
training memory they imply compared with what is available; the covariance-based scores
(``latent_mahalanobis``, ``error_gaussian``) fit a D x D covariance whose cost grows as D^3,
so their dimension is checked too, before training starts rather than at the evaluation.
"""
from __future__ import annotations

import logging
from typing import Any

import torch
from torch import nn

from agents.parts import build_component
from utils.core.errors import ConfigError, UserError
from utils.core.registry import MODELS, SCORES
from utils.runtime.memory import TRAINING_BYTES_PER_PARAMETER, check_fits, parameter_count

logger = logging.getLogger("anomaly")

#: The largest covariance a score fits: LedoitWolf plus a symmetric pseudo-inverse take 1.3 s at 1024
#: dimensions on one thread, 7 s at 2048 (error_gaussian fits six times: once and per cross-fitting fold),
#: and 5000 took minutes.
MAX_GAUSSIAN_DIM = 1024
GAUSSIAN_SCORES = ("latent_mahalanobis", "error_gaussian", "error_gaussian_train")


def build_checked_model(section: dict[str, Any], inputs: dict[str, int], source: str | None = None,
                        error: type[UserError] = ConfigError) -> nn.Module:
    """Build the model ``section`` names for ``inputs`` once its size is known to fit in memory.

    Args:
        section: the config's ``model`` section.
        inputs: ``time_steps`` and ``n_features`` (from the data, or a checkpoint's ``model_inputs``).
        source: the checkpoint the section and inputs come from (None: the config and the data).
        error: the error class to raise.

    Raises:
        UserError: of class ``error``, with the estimate, the limit and the keys.
    """
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
    _check_takes_windows(meta, section["name"], inputs, where, error)
    return build_component(MODELS, section, **inputs)


def _check_takes_windows(meta: nn.Module, name: str, inputs: dict[str, int], where: str,
                         error: type[UserError]) -> None:
    """Run the meta-device model on one window (nothing computed): a model that refuses the data's window
    shape (a recurrent model needs T >= 2) says so now, not after the run folder is made."""
    x = torch.empty(1, inputs["time_steps"], inputs["n_features"], device="meta")
    try:
        meta.train().training_outputs(x)
        meta.eval()(x)
    except ValueError as err:  # the models' own input checks
        keys = "data.time_steps / data.window_length" if not where else "model_inputs"
        raise error(f"{where}model {name!r} cannot take windows of {inputs['time_steps']} steps x "
                    f"{inputs['n_features']} features ({err}); change {keys} or the model") from None
    except (RuntimeError, NotImplementedError, TypeError):
        pass  # an operation the meta device lacks: the real run checks the shapes


def latent_size(section: dict[str, Any], inputs: dict[str, int]) -> int | None:
    """Values per window of the model's latent code (None without a latent space), found on the meta device."""
    if not getattr(MODELS.get(section["name"]), "has_latent", lambda: False)():
        return None
    try:
        with torch.device("meta"):
            model = build_component(MODELS, section, **inputs)
            return int(model.encode(torch.empty(1, inputs["time_steps"], inputs["n_features"])).shape[-1])
    except (RuntimeError, NotImplementedError, TypeError, ValueError):  # a model the meta device cannot run
        return None


def check_score_dimensions(scores: list[str], inputs: dict[str, int], config: Any, fit_sizes: dict[str, int]) -> None:
    """Refuse a covariance score whose dimension is beyond :data:`MAX_GAUSSIAN_DIM`; warn when it exceeds the
    windows it is fitted on (the covariance then rests on Ledoit-Wolf shrinkage).

    Args:
        scores: ``evaluation.scores``.
        inputs: ``time_steps`` and ``n_features``.
        config: the resolved config (its ``model`` section names the keys).
        fit_sizes: windows each split holds, ``{"train": N, "val": N}``.
    """
    for i, name in enumerate(scores):
        if name not in GAUSSIAN_SCORES:
            continue
        if name.startswith("error_gaussian"):
            dim, split = inputs["time_steps"] * inputs["n_features"], SCORES.get(name).fit_split
            source = (f"the window's {inputs['time_steps']} time steps x {inputs['n_features']} features; "
                      "shorten the windows (data.time_steps, data.window_length)")
        else:
            dim, split = latent_size(config.model, inputs), "train"
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
