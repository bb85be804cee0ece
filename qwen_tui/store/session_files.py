"""Session files as files: safe names, reading only plain files, renames that never overwrite.

The sessions folder may hold things qwen-tui did not put there (links, FIFOs, folders
named *.json, files a crash left behind). These functions decide what a session id may
be, read a file only if it is a plain one (checked on the open file), tell a file's
identity between reads, and move or back up a file without ever replacing another.
"""

from __future__ import annotations

import errno
import os
import re
import stat
import time
from pathlib import Path

from qwen_tui.store.atomic import write_atomic
from qwen_tui.store.errors import InvalidSessionIdError

SUFFIX = ".json"
CORRUPT_MARK = ".corrupt-"
BACKUP_SUFFIX = ".bak"
# Letters, digits, '.', '_' and '-', not starting with a dot: a plain file name on every OS,
# with no way to reach outside the folder ("../x", "/etc/x", "a/b") or hide (".x").
SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")


def check_session_id(session_id: str) -> str:
    """`session_id` if it is a session id (a plain, visible file name); InvalidSessionIdError
    otherwise: "" or "../x" or "a/b" must never name a file, nor quietly mean "new"."""
    if not isinstance(session_id, str) or not SAFE_ID.fullmatch(session_id):
        raise InvalidSessionIdError(
            f"invalid session id {session_id!r}: use letters, digits, '.', '_' and '-'"
        )
    return session_id


StatKey = tuple[int, int, int]


class NotAFileError(OSError):
    """A session path that is a link, folder, FIFO, socket or device, not a plain file."""


# Never follow a link (it may point out of the folder, or at another user's file) and
# never block on opening a FIFO (a writer may never come: the app would hang).
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def read_regular_file(path: Path) -> tuple[bytes, StatKey]:
    """The bytes of the plain file at `path` and its identity, checked on the open file
    itself (fstat), so a swap between a check and the open cannot fool it."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise NotAFileError(not_a_file(path, path.lstat())) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise NotAFileError(not_a_file(path, info))
        os.set_blocking(fd, True)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks), stat_key(info)
    finally:
        os.close(fd)


def refuse_odd_file(path: Path) -> None:
    """Raise NotAFileError if `path` exists and is not a plain file: an atomic save would
    silently replace a symbolic link (or a FIFO someone made) by a regular file."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise NotAFileError(not_a_file(path, info))


def not_a_file(path: Path, info: os.stat_result) -> str:
    mode = info.st_mode
    if stat.S_ISLNK(mode):
        try:
            target = os.readlink(path)
        except OSError:
            target = "?"
        return (
            f"is a symbolic link (to {target}), not a session file; qwen-tui does not follow "
            f"links in the sessions folder"
        )
    kinds = (
        (stat.S_ISDIR, "a folder"),
        (stat.S_ISFIFO, "a named pipe (FIFO)"),
        (stat.S_ISSOCK, "a socket"),
        (stat.S_ISCHR, "a device"),
        (stat.S_ISBLK, "a device"),
    )
    kind = next((words for test, words in kinds if test(mode)), "not a regular file")
    return f"is {kind}, not a session file"


def stat_key(info: os.stat_result) -> StatKey:
    # The inode changes with every atomic save; mtime and size catch in-place edits.
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def keep_backup(path: Path, backup: Path) -> Path:
    """A hard link of `path` named `backup` (or `backup-2`...), never over another file;
    a copy where hard links do not work."""
    for attempt in range(1, 1000):
        candidate = backup if attempt == 1 else backup.with_name(f"{backup.name}-{attempt}")
        try:
            os.link(path, candidate)
        except FileExistsError:
            continue
        except OSError:  # no hard links here (FAT, some network mounts)
            if candidate.exists():
                continue
            write_atomic(candidate, path.read_bytes())
            return candidate
        # Private like every file we write; the shared inode is about to leave `path` (the
        # upgrade replaces it), so this changes the backup alone.
        os.chmod(candidate, 0o600)
        return candidate
    raise FileExistsError(f"no free name next to {backup}")


def corrupt_name(path: Path) -> Path:
    return path.with_name(f"{path.name}{CORRUPT_MARK}{time.strftime('%Y%m%d-%H%M%S')}")


def rename_no_overwrite(source: Path, target: Path) -> Path:
    """Rename `source` to `target`, or `target-2`, `target-3`... whichever is free.

    os.link fails if the target exists, which makes "check then rename" race-free where
    hard links work; elsewhere fall back to checking first.
    """
    for attempt in range(1, 1000):
        candidate = target if attempt == 1 else target.with_name(f"{target.name}-{attempt}")
        try:
            os.link(source, candidate)
        except FileExistsError:
            continue
        except FileNotFoundError:
            raise
        except OSError:  # no hard links on this filesystem (FAT, some network mounts)
            if candidate.exists():
                continue
            os.rename(source, candidate)
            return candidate
        try:
            os.unlink(source)
        except OSError:
            os.unlink(candidate)  # leave one copy, in its original place
            raise
        return candidate
    raise FileExistsError(f"no free name next to {target}")
