"""Console and file logging that plays well with tqdm progress bars."""
from __future__ import annotations

import logging
import os
import sys
import warnings
from collections.abc import Callable
from logging.handlers import MemoryHandler
from pathlib import Path
from typing import Any, TextIO

from tqdm import tqdm

from utils.core.errors import WriteError
from utils.runtime.signals import other_rank

LOGGER_NAME = "anomaly"


class _RunLogHandler(logging.FileHandler):
    """The run's log file; a failed write (a full disk) stops the run with a WriteError naming the file
    instead of logging's traceback on standard error (later records are dropped: the first one says it)."""

    failed = False

    def handleError(self, record: logging.LogRecord) -> None:  # noqa: N802 (logging's name)
        err = sys.exc_info()[1]
        if not isinstance(err, OSError) or self.failed:
            return super().handleError(record) if not isinstance(err, OSError) else None
        self.failed = True
        failure = WriteError(f"cannot write {self.baseFilename} ({err.strerror or err})")
        failure.errno, failure.filename = err.errno, self.baseFilename
        raise failure from None


class _TqdmHandler(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        try:
            tqdm.write(self.format(record))
        except BrokenPipeError:  # python main.py CONFIG | head: the run goes on, logs/train.log keeps every line
            detach_console(sys.stdout)


def detach_console(stream: TextIO) -> None:
    """Point a console stream whose reader has gone (a closed pipe) at os.devnull: later writes are dropped."""
    devnull = os.open(os.devnull, os.O_WRONLY)
    try:
        os.dup2(devnull, stream.fileno())
    finally:
        os.close(devnull)


def setup_logging(log_file: Path | None = None, hold: bool = False) -> logging.Logger:
    """The project logger writing to the console (not in a torchrun process of rank > 0: rank 0 says it once) and,
    if given, ``log_file``, which begins with the records an earlier call with ``hold`` kept (those logged before the
    run folder existed: the data's warnings, a resume's thread note)."""
    logger = logging.getLogger(LOGGER_NAME)
    logger.setLevel(logging.INFO)
    logger.propagate = False
    held = [record for handler in logger.handlers if isinstance(handler, MemoryHandler) for record in handler.buffer]
    for handler in list(logger.handlers):
        logger.removeHandler(handler)
        handler.close()
    console = _TqdmHandler()
    console.setLevel(logging.CRITICAL + 1 if other_rank() else logging.INFO)
    console.setFormatter(logging.Formatter("%(message)s"))
    logger.addHandler(console)
    if log_file is not None:
        file_handler = _RunLogHandler(log_file, encoding="utf-8")
        file_handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(file_handler)
        for record in held:
            file_handler.handle(record)
    elif hold:  # never full, never flushed: it has no target
        logger.addHandler(MemoryHandler(sys.maxsize, flushLevel=logging.CRITICAL + 1))
    return logger


def log_to_file(text: str, level: int) -> None:
    """``text``, line by line, to the project logger's run log (or the records held for it), not to the console."""
    logger = logging.getLogger(LOGGER_NAME)
    for line in text.strip().splitlines():
        record = logger.makeRecord(LOGGER_NAME, level, __file__, 0, line, None, None)
        for handler in [h for h in logger.handlers if isinstance(h, (logging.FileHandler, MemoryHandler))]:
            handler.handle(record)


def log_warnings() -> Callable[..., None]:
    """Python's warnings shown as before and also written by :func:`log_to_file` (until ``warnings.showwarning`` is
    set back to what this returns)."""
    shown = warnings.showwarning

    def show(message: Any, category: Any, filename: str, lineno: int, file: Any = None, line: Any = None) -> None:
        shown(message, category, filename, lineno, file, line)
        log_to_file(warnings.formatwarning(message, category, filename, lineno, line), logging.WARNING)
    warnings.showwarning = show
    return shown
