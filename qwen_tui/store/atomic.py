"""Atomic file writes: a reader sees the old file or the new one, never half of either.

The new bytes go to a temp file in the same folder (same filesystem, so the rename is
atomic), are flushed and fsynced, then `os.replace`d over the target; fsyncing the folder
makes the rename itself survive a power cut.
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from pathlib import Path

TEMP_SUFFIX = ".tmp"

# Plain words for the errors a user can act on; the OS text follows in brackets.
_ERRNO_WORDS = {
    errno.ENOSPC: "disk full",
    errno.EDQUOT: "disk quota exceeded",
    errno.EROFS: "read-only file system",
    errno.EACCES: "permission denied",
    errno.EPERM: "permission denied",
    errno.ENOENT: "folder does not exist",
    errno.EIO: "input/output error",
}


def temp_path_for(path: Path) -> Path:
    """A hidden, unique sibling of `path`: hidden so folder scans for `*.json` skip it."""
    return path.with_name(f".{path.name}.{secrets.token_hex(4)}{TEMP_SUFFIX}")


def write_atomic(path: Path, data: bytes, mode: int = 0o600) -> None:
    """Replace `path` with `data` atomically; on failure the old file is untouched.

    Raises the OSError after removing the temp file, so callers can word it for the user.
    """
    temp = temp_path_for(path)
    # O_EXCL: never write through a file (or symlink) someone else put at our temp name.
    fd = os.open(temp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, mode)
    try:
        try:
            os.fchmod(fd, mode)  # the umask may have removed bits we want, e.g. 0o277
            _write_all(fd, data)
            os.fsync(fd)
        finally:
            os.close(fd)
        os.replace(temp, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp)
        raise
    _fsync_dir(path.parent)


def _write_all(fd: int, data: bytes) -> None:
    view = memoryview(data)
    while view:
        written = os.write(fd, view)
        view = view[written:]


def _fsync_dir(folder: Path) -> None:
    """Best effort: the replace already happened, so failing here would mislead the caller."""
    try:
        dir_fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        os.fsync(dir_fd)
    except OSError:
        pass  # some filesystems (and platforms) refuse fsync on folders
    finally:
        os.close(dir_fd)


def describe_os_error(error: OSError) -> str:
    """'disk full (No space left on device)': what happened, in words a user can act on."""
    detail = error.strerror or str(error)
    words = _ERRNO_WORDS.get(error.errno or 0)
    return f"{words} ({detail})" if words else detail
