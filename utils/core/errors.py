"""Errors raised for a user's mistake: ``main.py`` prints each as one message with exit code 2 (no traceback),
so it must say what is wrong, where, and what would be valid. Anything else that escapes is a bug."""


class UserError(Exception):
    """Base class of every error caused by the user's input (exit code 2)."""


class ConfigError(UserError):
    """The config file, a ``--set`` override or a registry name is invalid."""


class DataError(UserError):
    """A data file is missing, malformed, of the wrong shape or holds NaN/inf."""


class CheckpointError(UserError):
    """A checkpoint is missing, corrupt, unsafe or belongs to another model."""


class RunFolderError(UserError):
    """The run folder exists without ``--resume``, or there is nothing to resume."""


class TrainingDivergedError(UserError):
    """The loss turned NaN or infinite; the last good checkpoint is kept."""


class WriteError(RunFolderError):
    """A file of the run cannot be written (no space left, read-only...); ``main.py`` adds what to do next."""
