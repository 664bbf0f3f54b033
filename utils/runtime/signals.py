"""Clean stops on SIGINT (Ctrl-C) and SIGTERM.

While training, the first signal only sets a flag: the loop finishes the
current batch, saves ``checkpoints/last.pt`` (mid-epoch state included) and
raises :class:`Interrupted`. A second signal raises at once, without saving;
checkpoint writes are atomic, so ``last.pt`` is never left half-written.
``main.py`` turns :class:`Interrupted` into exit code ``128 + signal``:
130 for SIGINT, 143 for SIGTERM.
"""
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
    """The run was stopped by a signal.

    Attributes:
        signum: the signal number.
        exit_code: ``128 + signum`` (130 for SIGINT, 143 for SIGTERM).
        saved: True when the current state was saved before stopping.
    """

    def __init__(self, signum: int, message: str, saved: bool = False) -> None:
        super().__init__(message)
        self.signum = signum
        self.exit_code = 128 + signum
        self.saved = saved


def signal_name(signum: int) -> str:
    """``"SIGINT"`` for 2 and so on."""
    return signal.Signals(signum).name


class StopSignals:
    """Context manager catching SIGINT and SIGTERM around a training loop.

    Check :attr:`requested` between batches. Handlers are only installed in the
    main thread (Python's rule); the previous handlers come back on exit.

    Args:
        checkpoint: the file a stop saves to, named in the messages.
    """

    def __init__(self, checkpoint: Path) -> None:
        self.checkpoint = checkpoint
        self.signum: int | None = None
        self._previous: dict[int, object] = {}

    @property
    def requested(self) -> bool:
        """True once a first signal arrived."""
        return self.signum is not None

    def __enter__(self) -> "StopSignals":
        if threading.current_thread() is threading.main_thread():
            for sig in STOP_SIGNALS:
                self._previous[sig] = signal.signal(sig, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous.clear()

    def _handle(self, signum: int, frame: FrameType | None) -> None:
        name = signal_name(signum)
        if self.signum is None:
            self.signum = signum
            # os.write, not print: a handler may run while the main code is inside a print.
            os.write(2, f"\n{name} received: saving a checkpoint after the current batch "
                        "(send it again to stop at once)\n".encode())
            return
        kept = (f"{self.checkpoint} holds the last checkpoint written in full (writes are atomic)"
                if self.checkpoint.is_file() else "no checkpoint had been written yet")
        raise Interrupted(signum, f"{name} received again: stopped at once; {kept}")


class TerminateAsInterrupt:
    """Context manager: SIGTERM raises :class:`Interrupted` (exit 143) instead of killing the process.

    Outside the training loop this lets ``finally`` blocks run (TensorBoard
    files are closed); SIGINT already raises KeyboardInterrupt by default.
    """

    def __enter__(self) -> "TerminateAsInterrupt":
        self._previous = None
        if threading.current_thread() is threading.main_thread():
            self._previous = signal.signal(signal.SIGTERM, self._handle)
        return self

    def __exit__(self, *exc: object) -> None:
        if self._previous is not None:
            signal.signal(signal.SIGTERM, self._previous)

    @staticmethod
    def _handle(signum: int, frame: FrameType | None) -> None:
        raise Interrupted(signum, f"{signal_name(signum)} received: {STOPPED_AT_ONCE}")


def call_interruptibly(func: Callable[..., T], *args: Any) -> T:
    """``func(*args)`` on a worker thread while the main thread waits in 0.1 s slices.

    A signal handler runs only when the main thread returns to the interpreter, which one
    long NumPy/SciPy call (a covariance fit) does not do for minutes; waiting here, the main
    thread runs the handlers (and raises :class:`Interrupted`) within 0.1 s. The worker is a
    daemon thread: a process that stops does not wait for it.
    """
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
    if threading.current_thread() is not threading.main_thread():
        return {}
    return {sig: signal.signal(sig, signal.SIG_IGN) for sig in STOP_SIGNALS}


def restore_handlers(previous: dict[int, object]) -> None:
    """Put back handlers returned by :func:`ignore_stop_signals`."""
    for sig, handler in previous.items():
        signal.signal(sig, handler)
