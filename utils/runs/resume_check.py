"""``--resume`` continues the same run: the config must match the one its checkpoint was trained with."""
from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from utils.core.errors import CheckpointError, ConfigError, DataError

#: Trainer keys a resume may change: how long, how often to log and save, when to stop early.
#: Every other key (data, model, loss, seed, agent, the scaler, the optimisation settings) is the run's.
RESUMABLE_TRAINER_KEYS = ("epochs", "early_stopping_patience", "min_delta", "min_delta_rel", "min_learning_rate",
                          "log_every_n_steps", "progress_bar", "checkpoint_interval_s", "flush_denormal")
FIXED = ("agent", "seed", "data", "model", "loss", "trainer", "evaluation.scaler")
#: Keys of a data section that name where its data come from (files, folders, globs).
SOURCE_KEYS = ("path", "paths", "data_dir", "files", "url")
_MISSING = "<missing>"


def check_same_run(saved: Any, config: Any, source: Path, epochs_done: int) -> None:
    """Refuse to resume with a config whose data, model, loss, seed or optimisation differ from the checkpoint's.

    Args:
        saved: the checkpoint's ``config`` field.
        config: the resolved config of this invocation.
        source: the checkpoint, for the messages.
        epochs_done: the checkpoint's ``epoch``: ``trainer.epochs`` may grow, not fall below it.

    Raises:
        CheckpointError: the checkpoint holds no config.
        ConfigError: naming every key that differs, with both values.
    """
    saved = plain_config(saved, source, "the file is damaged or not a checkpoint of this project")
    now = json.loads(json.dumps(config))
    differ = [f"{key} ({_show(old)} in the checkpoint, {_show(new)} now)"
              for key, old, new in _differences(saved, now) if _fixed(key)]
    if differ:
        raise ConfigError(f"--resume: this config differs from the one {source} was trained with in "
                          f"{', '.join(differ)}; a resume keeps the data, model, loss, seed, agent, "
                          f"evaluation.scaler and trainer settings, except trainer."
                          f"{', trainer.'.join(RESUMABLE_TRAINER_KEYS)}, which may change. Start a new run "
                          "instead (--set exp_name=NEW_NAME)")
    if now["trainer"]["epochs"] < epochs_done:
        raise ConfigError(f"--resume: trainer.epochs={now['trainer']['epochs']} is below the {epochs_done} epochs "
                          f"{source} has already trained; set trainer.epochs to at least {epochs_done}")


def plain_config(saved: Any, source: Path, damaged: str) -> dict[str, Any]:
    """A checkpoint's ``config`` field as plain JSON values.

    Raises:
        CheckpointError: not an object, or holding values a JSON config cannot (NaN, tensors); ``damaged`` ends it.
    """
    if not isinstance(saved, dict):
        raise CheckpointError(f"{source}: field 'config' holds {type(saved).__name__}, expected the run's config "
                              f"(an object); {damaged}")
    try:
        return json.loads(json.dumps(saved, allow_nan=False))
    except (TypeError, ValueError, RecursionError) as err:
        raise CheckpointError(f"{source}: field 'config' holds values a config cannot ({str(err)[:80]}); "
                              f"{damaged}") from None


def _fixed(key: str) -> bool:
    if key.startswith("trainer."):
        return key.split(".")[1] not in RESUMABLE_TRAINER_KEYS
    return any(key == part or key.startswith(part + ".") for part in FIXED)


def _differences(old: Any, new: Any, prefix: str = "") -> list[tuple[str, Any, Any]]:
    """``(dotted key, old, new)`` of every leaf that differs (a missing key reads as ``<missing>``)."""
    if isinstance(old, dict) and isinstance(new, dict):
        return [found for key in [*old, *(k for k in new if k not in old)]
                for found in _differences(old.get(key, _MISSING), new.get(key, _MISSING), f"{prefix}{key}.")]
    if old is _MISSING:  # a key newer than the checkpoint: it ran with that key's default
        return []
    return [] if old == new else [(prefix.rstrip("."), old, new)]


def _show(value: Any) -> str:
    text = value if value is _MISSING else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_same_data(recorded: dict[str, Any] | None, digest: str, windows: dict[str, int], data: Any,
                    run_dir: Path) -> None:
    """Refuse to resume on data that differ from those the run started on (DataError naming the source).

    Args:
        recorded: what ``environment.json`` recorded at the run's start (``data_sha1``, ``data_windows``);
            None (a run of an older version): nothing to compare.
        digest: this invocation's :func:`utils.runtime.reproducibility.array_digest` of the same windows.
        windows: this invocation's window counts per split.
        data: the config's ``data`` section, to name the source.
        run_dir: the run folder, for the message.

    Raises:
        DataError: naming the data source, what changed and how to proceed.
    """
    if recorded is None or recorded.get("data_sha1") == digest:
        return
    source = ", ".join(f"data.{key}={json.dumps(data[key])}" for key in SOURCE_KEYS if data.get(key)) or \
        f"data.name={json.dumps(data.get('name'))}"
    then = recorded.get("data_windows")
    changed = ("its windows (train, val, test) were " + ", ".join(str(then.get(k)) for k in windows) + ", now " +
               ", ".join(str(v) for v in windows.values())) if isinstance(then, dict) and then != windows else \
        "the same number of windows, with other values"
    raise DataError(f"--resume: the data of {source} changed since {run_dir} started ({changed}; digest "
                    f"{recorded.get('data_sha1')} recorded in {run_dir / 'environment.json'}, {digest} now): the "
                    "run's scaler and weights were fitted to the old data. Restore the data the run started on, or "
                    "train a new run on the new data (--set exp_name=NEW_NAME, without --resume)")
