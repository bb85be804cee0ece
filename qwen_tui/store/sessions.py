"""Sessions on disk: one JSON file per session, written atomically, bad files moved aside.

A file that cannot be read back as a session is renamed to `<id>.json.corrupt-<time>` and
reported in `SessionStore.problems`; it is never deleted or overwritten, so the user (or a
later release) can still recover it. One bad file never stops the others from loading.

Two running instances never silently lose each other's turns:
- whoever writes a session holds its lock (`SessionStore.open()`, see lock.py); another
  instance opens it read-only, and `save()` refuses while another process holds it;
- `save()` also refuses to replace a file that changed on disk since this store loaded or
  saved it (someone wrote it meanwhile), instead of overwriting their turns.

A file of an older schema version is upgraded in place when loaded, after a hard link (or
copy) of the original is kept as `<id>.json.v<N>.bak`.
"""

from __future__ import annotations

import builtins
import contextlib
import errno
import os
import re
import stat
import time
from dataclasses import dataclass, field, replace
from pathlib import Path

from qwen_tui.conversation import GenerationStats, Message, Session, StopReason
from qwen_tui.paths import ensure_private_dir
from qwen_tui.store import lock as locks
from qwen_tui.store import schema
from qwen_tui.store.atomic import TEMP_SUFFIX, describe_os_error, write_atomic
from qwen_tui.store.lock import LOCK_SUFFIX, LockHolder, SessionLock
from qwen_tui.store.schema import (
    SCHEMA_VERSION,
    SessionSummary,
    dumps,
    loads,
    session_from_dict,
    session_to_dict,
    summary_from_dict,
)

__all__ = [
    "SCHEMA_VERSION",
    "CorruptSessionError",
    "InvalidSessionIdError",
    "LockHolder",
    "OpenSession",
    "SessionChangedError",
    "SessionLock",
    "SessionLockedError",
    "SessionNotFoundError",
    "SessionStore",
    "SessionSummary",
    "StoreError",
    "StoreProblem",
    "check_session_id",
]

SUFFIX = ".json"
CORRUPT_MARK = ".corrupt-"
BACKUP_SUFFIX = ".bak"
# Letters, digits, '.', '_' and '-', not starting with a dot: a plain file name on every OS,
# with no way to reach outside the folder ("../x", "/etc/x", "a/b") or hide (".x").
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A crashed save leaves its temp file behind (a crashed new session, its lock file); one
# this old belongs to nobody.
_STALE_TEMP_SECONDS = 24 * 3600


class StoreError(Exception):
    """A session could not be read or written; the message is meant for the user."""


class SessionNotFoundError(StoreError):
    """No file for this session id."""


class CorruptSessionError(StoreError):
    """The file was not a valid session; it has been moved aside (the message says where)."""


class InvalidSessionIdError(StoreError, ValueError):
    """The id is not a safe file name (e.g. "../x")."""


class SessionLockedError(StoreError):
    """Another running qwen-tui (or this one, elsewhere) is writing the session."""

    def __init__(self, session_id: str, holder: LockHolder, doing: str = "") -> None:
        where = (
            "already open in this qwen-tui"
            if holder.is_this_process
            else f"open in another qwen-tui ({holder.describe()})"
        )
        if doing:
            super().__init__(f"could not {doing} session {session_id}: it is {where}")
        else:
            super().__init__(f"session {session_id} is {where}")
        self.session_id = session_id
        self.holder = holder


class SessionChangedError(StoreError):
    """The file changed on disk since this store read it: saving would overwrite someone."""


@dataclass(frozen=True)
class StoreProblem:
    """A file list()/load() found bad, for the UI or CLI to report."""

    path: Path
    reason: str
    moved_to: Path | None
    """Where the file now is; None if it could not be moved (still at `path`)."""

    def __str__(self) -> str:
        where = f"moved to {self.moved_to}" if self.moved_to else "left in place"
        return f"{self.path}: {self.reason} ({where})"


@dataclass
class OpenSession:
    """A session opened by `SessionStore.open()`/`open_new()`; `close()` when done with it.

    Writable while `lock` is held. Read-only (`writer` set, `notice` says so) when another
    qwen-tui was writing it: do not save it then; to take it over later, close and open it
    again, which re-reads what the other instance wrote.
    """

    session: Session
    lock: SessionLock | None
    """Held until close(); None when read-only or when the folder could not be locked."""
    writer: LockHolder | None = None
    """The other process writing this session, when it was opened read-only."""
    notice: str | None = None
    """A sentence for the user: opened read-only, or could not be locked (saves may fail)."""
    interrupted: list[Message] = field(default_factory=list)
    """Replies left incomplete by a qwen-tui that is gone (crashed, killed, lost power):
    show them as interrupted, with their text, and offer to regenerate them."""

    @property
    def read_only(self) -> bool:
        return self.writer is not None

    def settle_interrupted(self) -> list[Message]:
        """Mark interrupted replies as stopped, so that a turn added after them does not
        leave them looking in progress forever. Their text is kept, and so is the token
        count a partial save recorded: a reply cut short is stopped, not failed."""
        settled, self.interrupted = self.interrupted, []
        for message in settled:
            message.incomplete = False
            message.stats = replace(
                message.stats or GenerationStats(), stop_reason=StopReason.STOPPED, error=None
            )
        return settled

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> OpenSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


@dataclass(frozen=True)
class _CachedSummary:
    stat_key: tuple[int, int, int]
    summary: SessionSummary


def check_session_id(session_id: str) -> str:
    """`session_id` if it is a session id (a plain, visible file name); InvalidSessionIdError
    otherwise: "" or "../x" or "a/b" must never name a file, nor quietly mean "new"."""
    if not isinstance(session_id, str) or not _SAFE_ID.fullmatch(session_id):
        raise InvalidSessionIdError(
            f"invalid session id {session_id!r}: use letters, digits, '.', '_' and '-'"
        )
    return session_id


class SessionStore:
    """The sessions folder. Methods are blocking file I/O: call them from a worker thread.

    Safe to share between threads and between running instances: every write is one
    atomic rename, list() notices files changed behind its back, and a session is written
    by whoever holds its lock (open()/open_new()/lock(); see the module docstring).
    """

    def __init__(self, sessions_dir: Path) -> None:
        self.dir = sessions_dir
        # A read-only or full data folder must not stop anyone from reading what is there:
        # save() tries again and reports it, in words, when it fails.
        with contextlib.suppress(OSError):
            ensure_private_dir(sessions_dir)
        # Bad files seen so far; the UI may clear() it once it has told the user.
        self.problems: list[StoreProblem] = []
        # list() is called after every save; re-reading only changed files keeps it cheap.
        self._summaries: dict[Path, _CachedSummary] = {}
        # What each file looked like when this store last read or wrote it: save() refuses
        # to replace a file someone else changed since (see _check_unchanged).
        self._seen: dict[str, _StatKey] = {}

    # ------------------------------------------------------------ public interface

    def path_for(self, session_id: str) -> Path:
        return self.dir / f"{check_session_id(session_id)}{SUFFIX}"

    def list(self) -> builtins.list[SessionSummary]:
        """Every readable session, newest `updated` first; bad files go to `problems`."""
        summaries = []
        seen = set()
        for path in self._session_files():
            seen.add(path)
            summary = self._summary(path)
            if summary is not None:
                summaries.append(summary)
        for gone in self._summaries.keys() - seen:
            self._summaries.pop(gone, None)  # pop: a save in another worker may race us
        self._remove_stale_temp_files()
        self._remove_orphan_lock_files()
        return _newest_first(summaries)

    def load(self, session_id: str) -> Session:
        """Read a session (upgrading an old schema version in place, keeping a backup).

        Prefer open() when the session will be written: it locks first, then loads.
        """
        path = self.path_for(session_id)
        raw, key = self._read(path, session_id)
        try:
            data = loads(raw)
            version = data.get("schema_version")
            session = session_from_dict(data, session_id)
        except ValueError as error:
            self._seen.pop(session_id, None)
            problem = self._move_aside(path, str(error))
            raise CorruptSessionError(_corrupt_message(problem)) from error
        self._seen[session_id] = key
        if isinstance(version, int) and version < schema.SCHEMA_VERSION:
            self._upgrade_in_place(session, path, version)
        return session

    def save(self, session: Session) -> None:
        """Write the whole session atomically; the previous file survives any failure.

        Raises SessionLockedError while another process holds the session's lock and
        SessionChangedError when the file changed since this store read or wrote it: in
        both cases the caller's copy is the one to keep (in memory), not the file's.
        """
        path = self.path_for(session.id)
        data = session_to_dict(session)
        try:
            # Check with the reader's rules so we never write a file load() would move aside.
            session_from_dict(data)
        except ValueError as error:
            raise StoreError(f"could not save session {session.id}: {error}") from error
        holder = self.holder(session.id)
        if holder is not None and not holder.is_this_process:
            raise SessionLockedError(session.id, holder, doing="save")
        self._summaries.pop(path, None)
        try:
            ensure_private_dir(self.dir)  # recreated if the user removed it while we ran
            _refuse_odd_file(path)
            self._check_unchanged(session.id, path)
            write_atomic(path, dumps(data))
        except _NotAFileError as error:
            raise StoreError(
                f"could not save session {session.id}: {error}; not replacing it: move it "
                f"away, or save this conversation under another session"
            ) from None
        except OSError as error:
            raise StoreError(
                f"could not save session {session.id}: {describe_os_error(error)}"
            ) from error
        try:
            self._seen[session.id] = _stat_key(os.stat(path))
        except OSError:
            self._seen.pop(session.id, None)

    def delete(self, session_id: str) -> None:
        path = self.path_for(session_id)
        holder = self.holder(session_id)
        if holder is not None and not holder.is_this_process:
            raise SessionLockedError(session_id, holder, doing="delete")
        try:
            path.unlink()
        except FileNotFoundError:
            raise SessionNotFoundError(f"no session {session_id} ({path})") from None
        except OSError as error:
            raise StoreError(
                f"could not delete session {session_id}: {describe_os_error(error)}"
            ) from error
        self._summaries.pop(path, None)
        self._seen.pop(session_id, None)
        self._remove_lock_file(session_id)

    # ------------------------------------------------------------ writers and locks

    def lock_path_for(self, session_id: str) -> Path:
        return self.path_for(session_id).with_name(f"{session_id}{SUFFIX}{LOCK_SUFFIX}")

    def lock(self, session_id: str) -> SessionLock:
        """The right to write `session_id` until the lock is released (or the process ends).

        Raises SessionLockedError when another qwen-tui (or this one) has it, StoreError
        when the lock file cannot be made (e.g. a read-only folder).
        """
        path = self.lock_path_for(session_id)
        try:
            ensure_private_dir(self.dir)
            return locks.acquire(path)
        except locks.LockTakenError as error:
            raise SessionLockedError(session_id, error.holder) from None
        except OSError as error:
            raise StoreError(
                f"could not lock session {session_id}: {describe_os_error(error)}"
            ) from error

    def holder(self, session_id: str) -> LockHolder | None:
        """The process writing `session_id` now (this one included); None if nobody is."""
        return locks.current_holder(self.lock_path_for(session_id))

    def open(self, session_id: str) -> OpenSession:
        """Lock, then load, so what is loaded is the latest; read-only if someone else writes.

        Raises what load() raises (the lock is released then).
        """
        lock, writer, notice = self._try_lock(session_id)
        try:
            session = self.load(session_id)
        except BaseException:
            if lock is not None:
                lock.release()
            raise
        messages = session.messages
        # The writer's reply in progress is the last message; anything else incomplete is
        # from an earlier process that is gone.
        live = messages[-1] if writer is not None and messages else None
        interrupted = [m for m in messages if m.incomplete and m is not live]
        return OpenSession(session, lock, writer, notice, interrupted)

    def open_new(self, session: Session) -> OpenSession:
        """Lock a new session (not saved yet) for writing; never read-only."""
        lock, writer, notice = self._try_lock(session.id)
        if writer is not None:  # only if someone picked the same new id: not ours to use
            raise SessionLockedError(session.id, writer)
        return OpenSession(session, lock, None, notice)

    def search(self, text: str) -> builtins.list[SessionSummary]:
        """Sessions whose title or any message contains `text` (ignoring case), newest first."""
        needle = text.casefold()
        found = []
        for summary in self.list():
            if needle in summary.title.casefold():
                found.append(summary)
                continue
            try:
                session = self.load(summary.id)
            except StoreError:
                continue  # deleted meanwhile, or corrupt: load() recorded it in problems
            if any(needle in m.content.casefold() for m in session.messages):
                found.append(summary)
        return found

    # ------------------------------------------------------------ internals

    def _session_files(self) -> builtins.list[Path]:
        try:
            with os.scandir(self.dir) as scan:
                entries = builtins.list(scan)
        except FileNotFoundError:
            return []
        except OSError as error:
            raise StoreError(
                f"could not read the sessions folder {self.dir}: {describe_os_error(error)}"
            ) from error
        return [
            Path(entry.path)
            for entry in entries
            if entry.name.endswith(SUFFIX) and not entry.name.startswith(".")
        ]

    def _summary(self, path: Path) -> SessionSummary | None:
        """The summary of one file, from cache if unchanged; None (and a problem) if bad."""
        session_id = path.name.removesuffix(SUFFIX)
        if not _SAFE_ID.fullmatch(session_id):
            self._record(StoreProblem(path, "file name is not a session id", None))
            return None
        try:
            info = path.lstat()
            key = _stat_key(info)
            cached = self._summaries.get(path)
            if cached is not None and cached.stat_key == key:
                return cached.summary
            if not stat.S_ISREG(info.st_mode):
                # A link, folder, FIFO or device named *.json: not ours to move or judge,
                # but the user should know why it is not listed.
                self._record(StoreProblem(path, _not_a_file(path, info), None))
                return None
            raw, key = _read_regular_file(path)
        except FileNotFoundError:
            return None  # deleted (or moved aside) by another instance since the scan
        except _NotAFileError as error:
            self._record(StoreProblem(path, str(error), None))
            return None
        except OSError as error:
            self._record(StoreProblem(path, f"unreadable: {describe_os_error(error)}", None))
            return None
        try:
            summary = summary_from_dict(loads(raw), path)
        except ValueError as error:
            self._move_aside(path, str(error))
            return None
        self._summaries[path] = _CachedSummary(key, summary)
        return summary

    def _try_lock(self, session_id: str) -> _LockAttempt:
        """(lock, None, None) normally; (None, writer, notice) when another process writes
        it; (None, None, notice) when locking failed (saves will say whether they work)."""
        try:
            return self.lock(session_id), None, None
        except SessionLockedError as error:
            return None, error.holder, f"{error}: opened read-only"
        except StoreError as error:
            return None, None, f"{error}; continuing without a lock"

    def _check_unchanged(self, session_id: str, path: Path) -> None:
        """Refuse to overwrite a file changed since we last read or wrote it.

        Locks keep two qwen-tuis from writing one session at once; this also catches a
        writer that took over after we opened the session read-only, or one that ignores
        locks. A file we never read (a new session) or that is gone is fine to write.
        """
        seen = self._seen.get(session_id)
        if seen is None:
            return
        try:
            now = _stat_key(os.stat(path))
        except FileNotFoundError:
            return
        if now != seen:
            raise SessionChangedError(
                f"could not save session {session_id}: it was changed on disk (by another "
                "qwen-tui?) since it was opened here; open it again to see those changes"
            )

    def _upgrade_in_place(self, session: Session, path: Path, version: int) -> None:
        """Rewrite an old-version file in the current layout after keeping the original.

        Best effort: the session is already upgraded in memory, so a read-only folder or
        another instance holding the session only means the file stays old for now.
        """
        holder = self.holder(session.id)
        if holder is not None and not holder.is_this_process:
            return
        try:
            _keep_backup(path, path.with_name(f"{path.name}.v{version}{BACKUP_SUFFIX}"))
            self.save(session)
        except (OSError, StoreError):
            return

    def _remove_lock_file(self, session_id: str) -> None:
        """Remove the lock file of a session that has no file (deleted, or never saved by a
        process that died), taking the lock first so that nobody is holding it."""
        path = self.lock_path_for(session_id)
        if locks.held_here(path):
            return  # released later by its holder here, which removes the file then
        try:
            locks.acquire(path).release()  # release() removes a lock file guarding nothing
        except (locks.LockTakenError, OSError):
            return

    def _remove_orphan_lock_files(self) -> None:
        cutoff = time.time() - _STALE_TEMP_SECONDS
        for path in self.dir.glob(f"*{SUFFIX}{LOCK_SUFFIX}"):
            session_id = path.name.removesuffix(SUFFIX + LOCK_SUFFIX)
            with contextlib.suppress(OSError):
                if (
                    _SAFE_ID.fullmatch(session_id)
                    and path.stat().st_mtime < cutoff
                    and not locks.guarded_file(path).exists()
                ):
                    self._remove_lock_file(session_id)

    def _read(self, path: Path, session_id: str) -> tuple[bytes, _StatKey]:
        """The file's bytes and the identity of the very file they were read from."""
        try:
            return _read_regular_file(path)
        except FileNotFoundError:
            raise SessionNotFoundError(f"no session {session_id} ({path})") from None
        except _NotAFileError as error:
            raise StoreError(f"could not read session {session_id}: {error}") from None
        except OSError as error:
            raise StoreError(
                f"could not read session {session_id}: {describe_os_error(error)}"
            ) from error

    def _move_aside(self, path: Path, reason: str) -> StoreProblem:
        """Rename a bad file out of the way, never over another file; record the problem."""
        self._summaries.pop(path, None)
        try:
            moved_to = _rename_no_overwrite(path, _corrupt_name(path))
        except OSError as error:
            failed = f"{reason}; moving it aside failed: {describe_os_error(error)}"
            problem = StoreProblem(path, failed, None)
        else:
            problem = StoreProblem(path, reason, moved_to)
        self._record(problem)
        return problem

    def _record(self, problem: StoreProblem) -> None:
        # A file left in place is seen again by every list(): report it once.
        if problem.moved_to is None and any(
            p.path == problem.path and p.moved_to is None for p in self.problems
        ):
            return
        self.problems.append(problem)

    def _remove_stale_temp_files(self) -> None:
        cutoff = time.time() - _STALE_TEMP_SECONDS
        for temp in self.dir.glob(f".*{SUFFIX}.*{TEMP_SUFFIX}"):
            with contextlib.suppress(OSError):
                if temp.stat().st_mtime < cutoff:
                    temp.unlink()


_StatKey = tuple[int, int, int]


class _NotAFileError(OSError):
    """A session path that is a link, folder, FIFO, socket or device, not a plain file."""


# Never follow a link (it may point out of the folder, or at another user's file) and
# never block on opening a FIFO (a writer may never come: the app would hang).
_OPEN_FLAGS = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)


def _read_regular_file(path: Path) -> tuple[bytes, _StatKey]:
    """The bytes of the plain file at `path` and its identity, checked on the open file
    itself (fstat), so a swap between a check and the open cannot fool it."""
    try:
        fd = os.open(path, _OPEN_FLAGS)
    except OSError as error:
        if error.errno == errno.ELOOP:  # O_NOFOLLOW met a symbolic link
            raise _NotAFileError(_not_a_file(path, path.lstat())) from None
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise _NotAFileError(_not_a_file(path, info))
        os.set_blocking(fd, True)
        chunks = []
        while chunk := os.read(fd, 1 << 20):
            chunks.append(chunk)
        return b"".join(chunks), _stat_key(info)
    finally:
        os.close(fd)


def _refuse_odd_file(path: Path) -> None:
    """Raise _NotAFileError if `path` exists and is not a plain file: an atomic save would
    silently replace a symbolic link (or a FIFO someone made) by a regular file."""
    try:
        info = path.lstat()
    except FileNotFoundError:
        return
    if not stat.S_ISREG(info.st_mode):
        raise _NotAFileError(_not_a_file(path, info))


def _not_a_file(path: Path, info: os.stat_result) -> str:
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


_LockAttempt = tuple[SessionLock | None, LockHolder | None, str | None]


def _stat_key(info: os.stat_result) -> _StatKey:
    # The inode changes with every atomic save; mtime and size catch in-place edits.
    return (info.st_mtime_ns, info.st_size, info.st_ino)


def _keep_backup(path: Path, backup: Path) -> Path:
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


def _newest_first(summaries: builtins.list[SessionSummary]) -> builtins.list[SessionSummary]:
    # id breaks ties so the order is stable between calls
    return sorted(summaries, key=lambda s: (s.updated, s.id), reverse=True)


def _corrupt_name(path: Path) -> Path:
    return path.with_name(f"{path.name}{CORRUPT_MARK}{time.strftime('%Y%m%d-%H%M%S')}")


def _rename_no_overwrite(source: Path, target: Path) -> Path:
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


def _corrupt_message(problem: StoreProblem) -> str:
    if problem.moved_to:
        return (
            f"session file {problem.path} is damaged ({problem.reason}); "
            f"it was moved to {problem.moved_to}"
        )
    return f"session file {problem.path} is damaged ({problem.reason})"
