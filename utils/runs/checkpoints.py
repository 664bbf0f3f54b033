"""Checkpoints: atomic writing, safe loading (``weights_only=True``), and the checks that ``--resume`` continues the
same run (the config and data the checkpoint was trained with)."""
from __future__ import annotations

import io
import json
import pickle
import re
import warnings
import zipfile
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import Any

import torch
from torch import nn

from utils.core.errors import CheckpointError, ConfigError, DataError
from utils.core.paths import unreadable_file
from utils.core.types import expand_home
from utils.runs.outputs import atomic_output
from utils.runtime.memory import check_fits

CHECKPOINT_KEYS = ("model", "epoch", "global_step")
_NUMBERS = {int, float, bool}
_TEXT_PROBE = 4096
#: Trainer keys a resume may change: how long, how often to log and save, when to stop early.
#: Every other key (data, model, loss, seed, agent, the scaler, the optimisation settings) is the run's.
RESUMABLE_TRAINER_KEYS = ("epochs", "early_stopping_patience", "min_delta", "min_delta_rel", "min_learning_rate",
                          "log_every_n_steps", "progress_bar", "checkpoint_interval_s", "flush_denormal")
#: evaluation.batch_size batches the validation loss of every epoch (its float sums), so it is the run's too.
FIXED = ("agent", "seed", "data", "model", "loss", "trainer", "evaluation.scaler", "evaluation.batch_size")
#: Keys of a data section that name where its data come from (files, folders, globs).
SOURCE_KEYS = ("path", "paths", "data_dir", "files", "url")
_MISSING = "<missing>"


def save_checkpoint(state: dict[str, Any], path: Path) -> None:
    """Write ``state`` to ``path`` atomically (:func:`utils.runs.outputs.atomic_output`); WriteError naming it, and
    keeping the previous file whole, if it cannot."""
    with atomic_output(path, "wb", "the checkpoint ", f"; the previous {path.name}, if any, is kept whole") as handle:
        buffer = io.BytesIO()  # in memory first: torch's zip writer turns a full disk into a RuntimeError
        torch.save(state, buffer)
        handle.write(buffer.getbuffer())


def clone_state(obj: Any) -> Any:
    """A copy of nested dicts, lists and tuples with every tensor cloned (leaves shared otherwise): a snapshot."""
    if isinstance(obj, torch.Tensor):
        return obj.detach().clone()
    if isinstance(obj, dict):
        return {key: clone_state(value) for key, value in obj.items()}
    if isinstance(obj, (list, tuple)):  # numbers alone (loss histories, RNG states) are copied as they are
        return type(obj)(obj if set(map(type, obj)) <= _NUMBERS else (clone_state(value) for value in obj))
    return obj


class CheckpointWriter:
    """Writes checkpoints on one background thread (one batch in flight at most); a failed write raises from the
    next :meth:`save` or :meth:`wait` (call it where the files must be on disk)."""

    def __init__(self) -> None:
        self._executor: ThreadPoolExecutor | None = None
        self._pending: Future | None = None

    def save(self, files: list[tuple[Path, dict[str, Any]]]) -> None:
        """Queue atomic writes of each state to its path, in order."""
        self.wait()
        jobs = [(path, clone_state(state)) for path, state in files]
        if self._executor is None:
            self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="checkpoint-writer")

        def write_all() -> None:
            for path, state in jobs:
                save_checkpoint(state, path)
        self._pending = self._executor.submit(write_all)

    def wait(self) -> None:
        """Block until the queued writes are on disk; re-raise their error, if any."""
        pending, self._pending = self._pending, None
        if pending is not None:
            pending.result()

    def close(self) -> None:
        """Wait for the queued writes and stop the thread."""
        try:
            self.wait()
        finally:
            if self._executor is not None:
                self._executor.shutdown()
                self._executor = None


def load_checkpoint(path: Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    """Load a checkpoint without executing code from it; CheckpointError if missing, unreadable, corrupt, carrying
    code, or lacking a training checkpoint's keys."""
    problem = unreadable_file(path)
    if problem == "not found":
        raise CheckpointError(f"{path}: checkpoint not found")
    if problem is not None:
        raise CheckpointError(f"{path}: {problem}; expected a checkpoint file written by this project")
    try:
        path.open("rb").close()
    except OSError as err:
        raise CheckpointError(f"{path}: cannot read the checkpoint ({err.strerror or err})") from None
    check_fits(path.stat().st_size, "loading the checkpoint", str(path), CheckpointError)
    check_file(path)
    try:
        with warnings.catch_warnings():  # torch warns about pickle protocols before refusing a foreign file
            warnings.simplefilter("ignore", UserWarning)
            state = torch.load(path, map_location=map_location, weights_only=True)
    except MemoryError:
        raise
    except pickle.UnpicklingError as err:
        # the weights-only unpickler's reason (e.g. "Unsupported global: GLOBAL io.open"), without torch's advice
        match = re.search(r"WeightsUnpickler error:\s*(.+?)(?: was not an allowed global|\n\n|$)", str(err), re.S)
        reason = match.group(1).strip() if match else "rejected by the weights-only unpickler"
        raise CheckpointError(f"{path}: refused to load: the file is not a plain checkpoint (it may carry code, which "
                              f"is never run): {reason}") from None
    except Exception as err:  # noqa: BLE001  (a damaged file makes torch.load fail in many ways)
        detail = f": {str(err).strip().splitlines()[0][:120]}" if str(err).strip() else ""
        raise CheckpointError(f"{path}: checkpoint is truncated or corrupt ({type(err).__name__}{detail})") from None
    if not isinstance(state, dict) or any(key not in state for key in CHECKPOINT_KEYS):
        raise CheckpointError(f"{path}: not a checkpoint of this project (expected keys {', '.join(CHECKPOINT_KEYS)})")
    return state


def check_file(path: Path) -> None:
    """CheckpointError naming what a file given as a checkpoint is instead (an export, text), or the zip member that
    fails its CRC-32 (torch.load does not check them); a file that is not a zip, or a damaged one, is left to it."""
    with open(path, "rb") as handle:
        head = handle.read(_TEXT_PROBE)
    if not head.startswith(b"PK"):
        if path.suffix.lower() == ".onnx" or (head[:1] == b"\x08" and b"onnx" in head.lower()):
            raise CheckpointError(f"{path}: an exported model (ONNX), not a run's best.pt; load it with onnxruntime, "
                                  "or give the run's checkpoints/best.pt")
        if head and b"\x00" not in head:
            try:
                text = head.decode("utf-8")
            except UnicodeDecodeError as err:
                text = head[:err.start].decode("utf-8") if err.start > len(head) - 4 else None
            if text is not None and text.strip():
                kind = "JSON" if text.lstrip().startswith(("{", "[")) else "CSV or other text"
                raise CheckpointError(f"{path}: a text file ({kind}), not a checkpoint written by this project (a .pt "
                                      "file torch.save wrote)")
    try:
        archive = zipfile.ZipFile(path)
    except (zipfile.BadZipFile, OSError, ValueError):
        return
    with archive:
        if head.startswith(b"PK") and any("/code/" in n or n.endswith("/constants.pkl") for n in archive.namelist()):
            raise CheckpointError(f"{path}: an exported model (TorchScript), not a run's best.pt; load it with "
                                  "torch.jit.load, or give the run's checkpoints/best.pt")
        try:
            bad = archive.testzip()
        except Exception as err:  # noqa: BLE001  (a damaged local header makes zipfile fail in several ways)
            raise CheckpointError(f"{path}: checkpoint is truncated or corrupt ({type(err).__name__}: "
                                  f"{str(err).strip()[:120]})") from None
    if bad is not None:
        raise CheckpointError(f"{path}: checkpoint is corrupt: its part {bad!r} fails its CRC-32 check (bytes changed "
                              f"after it was written, e.g. a disk or copy error); use another checkpoint or train "
                              f"again")


def load_model_state(model: nn.Module, state_dict: dict[str, torch.Tensor], source: Path) -> None:
    """Load weights; CheckpointError naming the first missing, unexpected or mismatched tensor."""
    own = model.state_dict()
    missing = [k for k in own if k not in state_dict]
    unexpected = [k for k in state_dict if k not in own]
    if missing or unexpected:
        raise CheckpointError(f"{source}: checkpoint is for another model: missing tensors {missing[:5]}, "
                              f"unexpected tensors {unexpected[:5]}")
    for key, tensor in own.items():
        saved = state_dict[key]
        if tuple(saved.shape) != tuple(tensor.shape):
            raise CheckpointError(f"{source}: tensor {key!r} has shape {tuple(saved.shape)} in the checkpoint "
                                  f"but {tuple(tensor.shape)} in the model built from this config; the checkpoint was "
                                  "made with another model config")
        if tensor.is_floating_point() and not saved.is_floating_point():  # load_state_dict would cast silently
            raise CheckpointError(f"{source}: tensor {key!r} holds {str(saved.dtype).removeprefix('torch.')} values in "
                                  f"the checkpoint, but the model's are {str(tensor.dtype).removeprefix('torch.')}; the "
                                  "checkpoint is damaged or was not written by this project")
    model.load_state_dict(state_dict)


def check_same_run(saved: Any, config: Any, source: Path, epochs_done: int) -> None:
    """ConfigError (naming every key that differs) for a resume whose data, model, loss, seed or optimisation
    differ from ``saved``, the ``config`` of checkpoint ``source``, or whose ``trainer.epochs`` falls below its
    ``epochs_done`` (or changes under the cosine schedule); CheckpointError when ``saved`` is no config."""
    saved = plain_config(saved, source, "the file is damaged or not a checkpoint of this project")
    now = json.loads(json.dumps(config))
    differ = [f"{key} ({_show(old)} in the checkpoint, {_show(new)} now)"
              for key, old, new in _differences(saved, now) if _fixed(key)]
    if differ:
        raise ConfigError(f"--resume: this config differs from the one {source} was trained with in "
                          f"{', '.join(differ)}; a resume keeps the data, model, loss, seed, agent, "
                          f"evaluation.scaler, evaluation.batch_size and trainer settings, except trainer."
                          f"{', trainer.'.join(RESUMABLE_TRAINER_KEYS)}, which may change. Start a new run "
                          "instead (--set exp_name=NEW_NAME)")
    if now["trainer"]["epochs"] < epochs_done:
        raise ConfigError(f"--resume: trainer.epochs={now['trainer']['epochs']} is below the {epochs_done} epochs "
                          f"{source} has already trained; set trainer.epochs to at least {epochs_done}")
    then = saved.get("trainer", {}).get("epochs")
    if now["trainer"]["scheduler"] == "cosine" and isinstance(then, int) and now["trainer"]["epochs"] != then:
        raise ConfigError(f"--resume: trainer.epochs={now['trainer']['epochs']}, but {source} was trained with "
                          f'trainer.scheduler="cosine" over trainer.epochs={then}, which takes the learning rate '
                          "to 0 at that epoch (past it, the schedule would climb back to the full rate); resume with "
                          f"trainer.epochs={then}, or start a new run with more epochs (--set exp_name=NEW_NAME)")


def plain_config(saved: Any, source: Path, damaged: str) -> dict[str, Any]:
    """A checkpoint's ``config`` field as plain JSON values; CheckpointError (ending in ``damaged``) otherwise."""
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
    # a key newer than the checkpoint (old is _MISSING): the run had that key's default; a path saved with "~" by
    # code older than UserPath is the home folder's
    return [] if old is _MISSING or old == new or expand_home(old) == new else [(prefix.rstrip("."), old, new)]


def _show(value: Any) -> str:
    text = value if value is _MISSING else json.dumps(value)
    return text if len(text) <= 40 else text[:37] + "..."


def check_same_data(recorded: dict[str, Any] | None, digest: str, windows: dict[str, int], data: Any,
                    run_dir: Path, recordings: dict[str, str] | None = None) -> None:
    """DataError naming the source (from ``data``, the config's section) when this invocation's ``digest`` of the
    windows differs from ``recorded`` (``data_sha1``, ``data_windows``, ``data_recordings`` of ``environment.json``;
    None: nothing to compare); ``windows``: the counts per split now; ``recordings``: the digest of each recording
    now (the files added, removed or changed are named)."""
    if recorded is None or recorded.get("data_sha1") == digest:
        return
    source = ", ".join(f"data.{key}={json.dumps(data[key])}" for key in SOURCE_KEYS if data.get(key)) or \
        f"data.name={json.dumps(data.get('name'))}"
    then = recorded.get("data_windows")
    changed = ("its windows (train, val, test) were " + ", ".join(str(then.get(k)) for k in windows) + ", now " +
               ", ".join(str(v) for v in windows.values())) if isinstance(then, dict) and then != windows else \
        "the same number of windows, with other values"
    then = recorded.get("data_recordings")
    if isinstance(then, dict) and recordings and len({*then, *recordings}) > 1:  # one file: data.path names it
        named = [f"{name} {how}" for name, how in
                 [(n, "added") for n in recordings if n not in then] + [(n, "removed") for n in then if n not in
                  recordings] + [(n, "changed") for n in recordings if n in then and then[n] != recordings[n]]]
        changed = f"{'; '.join(named[:5])}{f' and {len(named) - 5} more' if len(named) > 5 else ''}; {changed}"
    raise DataError(f"--resume: the data of {source} changed since {run_dir} started ({changed}; digest "
                    f"{recorded.get('data_sha1')} recorded in {run_dir / 'environment.json'}, {digest} now): the "
                    "run's scaler and weights were fitted to the old data. Restore the data the run started on, or "
                    "train a new run on the new data (--set exp_name=NEW_NAME, without --resume)")
