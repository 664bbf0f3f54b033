"""Why a path the user gave cannot be read as a file, in words (not found, a folder, a pipe...)."""
from __future__ import annotations

import os
import stat
from pathlib import Path


def unreadable_file(path: str | Path, allow_stream: bool = False) -> str | None:
    """What keeps ``path`` from being read as a data file (e.g. ``"not found"``), or None when it can be;
    ``allow_stream``: a pipe (FIFO) or character device is fine too (it is read as it arrives)."""
    try:
        mode = os.stat(path).st_mode
    except FileNotFoundError:
        return "not found"
    except NotADirectoryError:
        return "not found (a part of its path is a file, not a folder)"
    except OSError as err:  # permissions on a folder of the path, a name too long, a loop of symlinks
        return f"cannot be read ({err.strerror or err})"
    if stat.S_ISDIR(mode):
        return "is a folder, not a file"
    if not (stat.S_ISREG(mode) or (allow_stream and (stat.S_ISFIFO(mode) or stat.S_ISCHR(mode)))):
        return "is not a regular file (a pipe, device or socket)"
    if not os.access(path, os.R_OK):
        return "cannot be read (Permission denied)"
    return None


def user_path(text: str) -> Path:
    """A command-line option's path, a leading ``~`` the home folder (``--out=~/r.json``: no shell expands it)."""
    return Path(text).expanduser()
