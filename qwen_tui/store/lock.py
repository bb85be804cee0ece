"""Per-session locks: one running qwen-tui writes a session; any other opens it read-only.

Two SSH logins on one data folder must never silently lose each other's turns. Whoever
opens a session for writing takes an exclusive lock on `<sessions>/<id>.json.lock`
(`filelock`, which uses `flock` here) and holds it until the session is closed. Another
instance finds it taken and is told who holds it: the holder writes its pid, host and start
time into the file for exactly that notice.

The kernel drops an flock when the file is closed, and a dying process closes all of its
files, SIGKILL included: a crash never leaves a stale lock. The pid in the file is therefore
never used to decide anything; it only names the holder. flock is per open file, so a second
lock taken inside the same process conflicts too; `_HELD` remembers this process's own locks
so it can answer "held by me" without asking the kernel.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

LOCK_SUFFIX = ".lock"
# An exclusive attempt collides for a moment with `current_holder()` probes (shared locks) of
# another instance listing its sessions; a real holder keeps its lock for minutes, so waiting a
# little tells the two apart.
_ACQUIRE_TIMEOUT_S = 0.3
_CONTENTION = (errno.EAGAIN, errno.EWOULDBLOCK, errno.EACCES)


@dataclass(frozen=True)
class LockHolder:
    """Who holds a session's lock, as the holder recorded it (fields may be unknown)."""

    pid: int | None
    host: str = ""
    since: float | None = None

    @classmethod
    def this_process(cls) -> LockHolder:
        return cls(os.getpid(), socket.gethostname(), time.time())

    @property
    def is_this_process(self) -> bool:
        return self.pid == os.getpid() and self.host in ("", socket.gethostname())

    def describe(self) -> str:
        """'pid 1234', 'pid 1234 on other-host', or 'this qwen-tui' for our own process."""
        if self.is_this_process:
            return "this qwen-tui"
        if self.pid is None:
            return "pid unknown"
        elsewhere = self.host and self.host != socket.gethostname()
        return f"pid {self.pid} on {self.host}" if elsewhere else f"pid {self.pid}"


class LockTakenError(Exception):
    """Another holder (possibly this process) has the lock; `holder` says who."""

    def __init__(self, path: Path, holder: LockHolder) -> None:
        super().__init__(f"{path} is held by {holder.describe()}")
        self.path = path
        self.holder = holder


class SessionLock:
    """An exclusive hold on one session file, until `release()` or the end of the process.

    Create with `acquire()`. Not tied to a thread: a worker may take it, the UI release it.
    """

    def __init__(self, path: Path, native: Any, holder: LockHolder) -> None:
        self.path = path
        self.holder = holder
        self._native = native

    @property
    def held(self) -> bool:
        return self._native is not None

    def release(self) -> None:
        """Let others write the session. Idempotent.

        The lock file goes too when the session file it guards does not exist (never saved,
        or deleted): it is unlinked while still locked, so nobody holds the inode it names
        (filelock re-opens a lock file that was unlinked under it).
        """
        native, self._native = self._native, None
        if native is None:
            return
        with _HELD_GUARD:
            _HELD.pop(_key(self.path), None)
        try:
            if not guarded_file(self.path).exists():
                self.path.unlink(missing_ok=True)
        except OSError:
            pass  # a read-only folder: the file stays, harmless
        finally:
            native.release(force=True)

    def __enter__(self) -> SessionLock:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.release()

    def __repr__(self) -> str:
        return f"SessionLock({str(self.path)!r}, held={self.held})"


_HELD: dict[str, SessionLock] = {}
_ACQUIRING: set[str] = set()
_HELD_GUARD = threading.Lock()


def acquire(path: Path) -> SessionLock:
    """Lock `path` (created 0600 if missing) without waiting for a real holder.

    Raises LockTakenError when someone holds it, OSError when the lock file cannot be made
    (read-only folder, no inodes left): the caller decides whether to go on unlocked.
    """
    from filelock import FileLock, Timeout

    holder = LockHolder.this_process()
    key = _key(path)
    with _HELD_GUARD:
        mine = _HELD.get(key)
        if mine is not None:
            raise LockTakenError(path, mine.holder)
        if key in _ACQUIRING:
            raise LockTakenError(path, holder)
        _ACQUIRING.add(key)
    try:
        native = FileLock(
            path,
            mode=0o600,
            thread_local=False,  # taken in one thread, released in another
            on_acquired=lambda fd: _record_holder(fd, holder),
        )
        try:
            native.acquire(timeout=_ACQUIRE_TIMEOUT_S)
        except Timeout:
            raise LockTakenError(path, current_holder(path) or LockHolder(None)) from None
        lock = SessionLock(path, native, holder)
        with _HELD_GUARD:
            _HELD[key] = lock
        return lock
    finally:
        with _HELD_GUARD:
            _ACQUIRING.discard(key)


def guarded_file(path: Path) -> Path:
    """The file a lock file guards: `x.json` for `x.json.lock`."""
    return path.with_name(path.name.removesuffix(LOCK_SUFFIX))


def held_here(path: Path) -> bool:
    """True if this process holds the lock on `path` (through any SessionStore)."""
    with _HELD_GUARD:
        return _key(path) in _HELD


def current_holder(path: Path) -> LockHolder | None:
    """Who holds `path` now (this process included); None if nobody does.

    Probes with a shared lock, which needs no write access and never blocks other probes.
    """
    with _HELD_GUARD:
        mine = _HELD.get(_key(path))
    if mine is not None:
        return mine.holder
    try:
        import fcntl
    except ImportError:  # no flock on this platform: filelock fell back to its own scheme
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None  # no lock file: nobody ever locked it (or we cannot tell)
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_SH | fcntl.LOCK_NB)
        except OSError as error:
            if error.errno not in _CONTENTION:
                return None
            return _read_holder(fd)
        fcntl.flock(fd, fcntl.LOCK_UN)
        return None
    finally:
        os.close(fd)


def _record_holder(fd: int, holder: LockHolder) -> None:
    """Write who we are into the lock file; best effort, the lock itself is what counts."""
    data = json.dumps({"pid": holder.pid, "host": holder.host, "since": holder.since})
    with contextlib.suppress(OSError):  # e.g. a full disk must not cost us the lock
        os.ftruncate(fd, 0)
        os.pwrite(fd, data.encode(), 0)


def _read_holder(fd: int) -> LockHolder:
    try:
        data = json.loads(os.pread(fd, 4096, 0))
    except (OSError, ValueError):
        return LockHolder(None)  # still being written by the new holder, or foreign
    if not isinstance(data, dict):
        return LockHolder(None)
    pid, host, since = data.get("pid"), data.get("host"), data.get("since")
    return LockHolder(
        pid=pid if isinstance(pid, int) and not isinstance(pid, bool) else None,
        host=host if isinstance(host, str) else "",
        since=float(since) if _is_number(since) else None,
    )


def _is_number(value: object) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _key(path: Path) -> str:
    return os.path.realpath(path)
