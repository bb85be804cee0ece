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

This module is the store itself (load, save, delete, lock, open); beside it are
session_listing.py (list()), bad_files.py (moving bad files aside), errors.py (what can go
wrong), session_files.py (ids, reading only plain files, renames that never overwrite),
open_session.py (what open() returns), leftovers.py (what crashes leave behind), schema.py
(the JSON layout: versions, migrations), session_reading.py and session_writing.py (a
session from and to that layout) and lock.py.
"""

from __future__ import annotations

import builtins
import contextlib
import os
from pathlib import Path

from qwen_tui.conversation import Session
from qwen_tui.paths import ensure_private_dir
from qwen_tui.store import lock as locks
from qwen_tui.store import schema
from qwen_tui.store.atomic import describe_os_error, write_atomic
from qwen_tui.store.bad_files import BadFiles
from qwen_tui.store.errors import (
    CorruptSessionError,
    SessionChangedError,
    SessionLockedError,
    SessionNotFoundError,
    StoreError,
    StoreProblem,
    corrupt_message,
)
from qwen_tui.store.leftovers import remove_lock_file
from qwen_tui.store.lock import LOCK_SUFFIX, LockHolder, SessionLock
from qwen_tui.store.open_session import OpenSession
from qwen_tui.store.session_files import (
    BACKUP_SUFFIX,
    SUFFIX,
    NotAFileError,
    StatKey,
    check_session_id,
    keep_backup,
    read_regular_file,
    refuse_odd_file,
    stat_key,
)
from qwen_tui.store.session_listing import SessionListing
from qwen_tui.store.session_reading import SessionSummary, loads, session_from_dict
from qwen_tui.store.session_writing import dumps, session_to_dict


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
        self._bad_files = BadFiles()
        self._listing = SessionListing(sessions_dir, self._bad_files)
        # What each file looked like when this store last read or wrote it: save() refuses
        # to replace a file someone else changed since (see _check_unchanged).
        self._seen: dict[str, StatKey] = {}

    # ------------------------------------------------------------ public interface

    @property
    def problems(self) -> builtins.list[StoreProblem]:
        """Bad files seen so far; the UI may clear() it once it has told the user."""
        return self._bad_files.problems

    def path_for(self, session_id: str) -> Path:
        return self.dir / f"{check_session_id(session_id)}{SUFFIX}"

    def list(self) -> builtins.list[SessionSummary]:
        """Every readable session, newest `updated` first; bad files go to `problems`."""
        return self._listing.list()

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
        except schema.NewerSchemaError as error:
            # Not damage: the qwen-tui that wrote it opens it; moving it aside would hide it.
            self._bad_files.record(StoreProblem(path, str(error), None))
            raise StoreError(f"could not open session {session_id}: {error}") from error
        except ValueError as error:
            self._seen.pop(session_id, None)
            problem = self._move_aside(path, str(error))
            raise CorruptSessionError(corrupt_message(problem)) from error
        self._seen[session_id] = key
        if isinstance(version, int) and version < schema.written_version(session):
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
        self._listing.forget(path)
        try:
            ensure_private_dir(self.dir)  # recreated if the user removed it while we ran
            refuse_odd_file(path)
            self._check_unchanged(session.id, path)
            write_atomic(path, dumps(data))
        except NotAFileError as error:
            raise StoreError(
                f"could not save session {session.id}: {error}; not replacing it: move it "
                f"away, or save this conversation under another session"
            ) from None
        except OSError as error:
            raise StoreError(
                f"could not save session {session.id}: {describe_os_error(error)}"
            ) from error
        try:
            self._seen[session.id] = stat_key(os.stat(path))
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
        self._listing.forget(path)
        self._seen.pop(session_id, None)
        remove_lock_file(self.lock_path_for(session_id))

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
            messages = [*session.messages, *session.branches]  # other replies count too
            if any(needle in m.content.casefold() for m in messages):
                found.append(summary)
        return found

    # ------------------------------------------------------------ internals

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
            now = stat_key(os.stat(path))
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
            keep_backup(path, path.with_name(f"{path.name}.v{version}{BACKUP_SUFFIX}"))
            self.save(session)
        except (OSError, StoreError):
            return

    def _read(self, path: Path, session_id: str) -> tuple[bytes, StatKey]:
        """The file's bytes and the identity of the very file they were read from."""
        try:
            return read_regular_file(path)
        except FileNotFoundError:
            raise SessionNotFoundError(f"no session {session_id} ({path})") from None
        except NotAFileError as error:
            raise StoreError(f"could not read session {session_id}: {error}") from None
        except OSError as error:
            raise StoreError(
                f"could not read session {session_id}: {describe_os_error(error)}"
            ) from error

    def _move_aside(self, path: Path, reason: str) -> StoreProblem:
        self._listing.forget(path)
        return self._bad_files.move_aside(path, reason)


_LockAttempt = tuple[SessionLock | None, LockHolder | None, str | None]
