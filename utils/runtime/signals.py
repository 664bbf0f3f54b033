"""Clean stops on SIGINT (Ctrl-C) and SIGTERM (docs/stopping-resuming.md): while training, the first signal sets a
flag (``last.pt`` is saved after the batch, then :class:`Interrupted` raised), a second raises it at once."""
from __future__ import annotations

import os
import signal
import threading
from collections.abc import Callable
from pathlib import Path
from types import FrameType
from typing import Any, TypeVar

T = TypeVar("T")

STOP_SIGNALS = (signal.SIGINT, signal.SIGTERM)
STOPPED_AT_ONCE = "stopped at once; the run folder's checkpoints/last.pt, if any, holds the last checkpoint written in full"


class Interrupted(KeyboardInterrupt):
    """The run was stopped by signal ``signum``; ``main.py`` exits with ``exit_code`` (128 + signum); ``saved``:
    the current state was saved before stopping."""

    def __init__(self, signum: int, message: str, saved: bool = False) -> None:
        super().__init__(message)
        self.signum, self.exit_code, self.saved = signum, 128 + signum, saved


def torchrun_place() -> tuple[int, int, int]:
    """This process's rank, world size and local rank from torchrun's RANK, WORLD_SIZE and LOCAL_RANK (``(0, 1, 0)``
    for one process); readable before the process group exists, and what ``distributed.init_from_env`` joins by."""
    world_size = int(os.environ.get("WORLD_SIZE", "1"))
    if world_size <= 1:
        return 0, 1, 0
    return int(os.environ.get("RANK", "0")), world_size, int(os.environ.get("LOCAL_RANK", "0"))


def other_rank() -> bool:
    """A torchrun process of rank > 0: it prints no message for the user (log line, warning, error, stop line), so
    that rank 0 prints each once."""
    return torchrun_place()[0] > 0


def signal_name(signum: int) -> str:
    """``"SIGINT"`` for 2 and so on."""
    return signal.Signals(signum).name


class StopSignals:
    """Context manager catching SIGINT and SIGTERM around a training loop (check :attr:`requested` between batches);
    handlers are installed in the main thread only (Python's rule). ``checkpoint``: the file a stop saves to."""

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """True once a first signal arrived."""
        return self.signum is not None

    def __enter__(self) -> "StopSignals":
        self._previous = _install(self._handle, STOP_SIGNALS)
        return self

    def __exit__(self, *exc: object) -> None:
        restore_handlers(self._previous)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal_name(signum)
        if self.signum is None:
            self.signum = signum
            if not other_rank():  # os.write, not print: a handler may run while the main code is inside a print.
                os.write(2, f"\n{name} received: saving a checkpoint after the current batch "
                            "(send it again to stop at once)\n".encode())
            return
        kept = (f"{self.checkpoint} holds the last checkpoint written in full (writes are atomic)"
                if self.checkpoint.is_file() else "no checkpoint had been written yet")
        raise Interrupted(signum, f"{name} received again: stopped at once; {kept}")


class TerminateAsInterrupt:
    """Context manager: SIGTERM raises :class:`Interrupted` (exit 143) instead of killing the process, so
    ``finally`` blocks run (as SIGINT's KeyboardInterrupt lets them)."""

    def __enter__(self) -> "TerminateAsInterrupt":
        self._previous = _install(self._handle, (signal.SIGTERM,))
        return self

    def __exit__(self, *exc: object) -> None:
        restore_handlers(self._previous)

    @staticmethod
    def _handle(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum, f"{signal_name(signum)} received: {STOPPED_AT_ONCE}")


def call_interruptibly(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` on a daemon thread while the main thread waits in 0.1 s slices, so signal handlers run
    within 0.1 s even during one long NumPy/SciPy call."""
    if threading.current_thread() is not threading.main_thread():
        return func(*args)
    outcome: dict[str, Any] = {}

    def target() -> None:
        try:
            outcome["value"] = func(*args)
        except BaseException as err:  # noqa: BLE001  (re-raised in the caller's thread)
            outcome["error"] = err

    worker = threading.Thread(target=target, name="interruptible", daemon=True)
    worker.start()
    while worker.is_alive():
        worker.join(0.1)
    if "error" in outcome:
        raise outcome["error"]
    return outcome["value"]


def ignore_stop_signals() -> dict[int, object]:
    """Ignore SIGINT/SIGTERM (while a stop is reported and the process exits); returns the previous handlers."""
    return _install(signal.SIG_IGN, STOP_SIGNALS)


def _install(handler: Any, signals: tuple[int, ...]) -> dict[int, object]:
    """Set ``handler`` for ``signals`` in the main thread (elsewhere nothing is set); the previous handlers."""
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, handler) for sig in signals}


def restore_handlers(previous: dict[int, object]) -> None:
    """Put back handlers returned by :func:`ignore_stop_signals` (None, one not set from Python, cannot be)."""
    for sig, handler in previous.items():
        if handler is not None:
            signal.signal(sig, handler)
