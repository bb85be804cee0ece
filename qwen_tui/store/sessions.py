"""Sessions on disk: one JSON file per session, written atomically, bad files moved aside.

A file that cannot be read back as a session is renamed to `<id>.json.corrupt-<time>` and
reported in `SessionStore.problems`; it is never deleted or overwritten, so the user (or a
later release) can still recover it. One bad file never stops the others from loading.
"""

from __future__ import annotations

import builtins
import contextlib
import os
import re
import stat
import time
from dataclasses import dataclass
from pathlib import Path

from qwen_tui.conversation import Session
from qwen_tui.paths import ensure_private_dir
from qwen_tui.store.atomic import TEMP_SUFFIX, describe_os_error, write_atomic
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
    "SessionNotFoundError",
    "SessionStore",
    "SessionSummary",
    "StoreError",
    "StoreProblem",
]

SUFFIX = ".json"
CORRUPT_MARK = ".corrupt-"
# Letters, digits, '.', '_' and '-', not starting with a dot: a plain file name on every OS,
# with no way to reach outside the folder ("../x", "/etc/x", "a/b") or hide (".x").
_SAFE_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,127}")
# A crashed save leaves its temp file behind; one this old belongs to nobody.
_STALE_TEMP_SECONDS = 24 * 3600


class StoreError(Exception):
    """A session could not be read or written; the message is meant for the user."""


class SessionNotFoundError(StoreError):
    """No file for this session id."""


class CorruptSessionError(StoreError):
    """The file was not a valid session; it has been moved aside (the message says where)."""


class InvalidSessionIdError(StoreError, ValueError):
    """The id is not a safe file name (e.g. "../x")."""


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


@dataclass(frozen=True)
class _CachedSummary:
    stat_key: tuple[int, int, int]
    summary: SessionSummary


class SessionStore:
    """The sessions folder. Methods are blocking file I/O: call them from a worker thread.

    Safe to share between threads and between running instances: every write is one
    atomic rename, and list() notices files changed behind its back.
    """

    def __init__(self, sessions_dir: Path) -> None:
        self.dir = sessions_dir
        try:
            ensure_private_dir(sessions_dir)
        except OSError as error:
            raise StoreError(
                f"could not create the sessions folder {sessions_dir}: {describe_os_error(error)}"
            ) from error
        # Bad files seen so far; the UI may clear() it once it has told the user.
        self.problems: list[StoreProblem] = []
        # list() is called after every save; re-reading only changed files keeps it cheap.
        self._summaries: dict[Path, _CachedSummary] = {}

    # ------------------------------------------------------------ public interface

    def path_for(self, session_id: str) -> Path:
        if not isinstance(session_id, str) or not _SAFE_ID.fullmatch(session_id):
            raise InvalidSessionIdError(
                f"invalid session id {session_id!r}: use letters, digits, '.', '_' and '-'"
            )
        return self.dir / f"{session_id}{SUFFIX}"

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
        return _newest_first(summaries)

    def load(self, session_id: str) -> Session:
        path = self.path_for(session_id)
        raw = self._read(path, session_id)
        try:
            return session_from_dict(loads(raw), session_id)
        except ValueError as error:
            problem = self._move_aside(path, str(error))
            raise CorruptSessionError(_corrupt_message(problem)) from error

    def save(self, session: Session) -> None:
        """Write the whole session atomically; the previous file survives any failure."""
        path = self.path_for(session.id)
        data = session_to_dict(session)
        try:
            # Check with the reader's rules so we never write a file load() would move aside.
            session_from_dict(data)
        except ValueError as error:
            raise StoreError(f"could not save session {session.id}: {error}") from error
        self._summaries.pop(path, None)
        try:
            ensure_private_dir(self.dir)  # recreated if the user removed it while we ran
            write_atomic(path, dumps(data))
        except OSError as error:
            raise StoreError(
                f"could not save session {session.id}: {describe_os_error(error)}"
            ) from error

    def delete(self, session_id: str) -> None:
        path = self.path_for(session_id)
        try:
            path.unlink()
        except FileNotFoundError:
            raise SessionNotFoundError(f"no session {session_id} ({path})") from None
        except OSError as error:
            raise StoreError(
                f"could not delete session {session_id}: {describe_os_error(error)}"
            ) from error
        self._summaries.pop(path, None)

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
            info = path.stat()
            key = (info.st_mtime_ns, info.st_size, info.st_ino)
            cached = self._summaries.get(path)
            if cached is not None and cached.stat_key == key:
                return cached.summary
            if not stat.S_ISREG(info.st_mode):
                return None  # a folder or device named *.json is not ours to judge
            raw = path.read_bytes()
        except FileNotFoundError:
            return None  # deleted (or moved aside) by another instance since the scan
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

    def _read(self, path: Path, session_id: str) -> bytes:
        try:
            return path.read_bytes()
        except FileNotFoundError:
            raise SessionNotFoundError(f"no session {session_id} ({path})") from None
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
