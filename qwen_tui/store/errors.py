"""What can go wrong with a session file, as exceptions whose message is for the user.

Kept apart from the store so that the CLI and the UI can catch and word them without
importing the file code, and so a bad file is described the same way everywhere.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from qwen_tui.store.lock import LockHolder


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


def corrupt_message(problem: StoreProblem) -> str:
    if problem.moved_to:
        return (
            f"session file {problem.path} is damaged ({problem.reason}); "
            f"it was moved to {problem.moved_to}"
        )
    return f"session file {problem.path} is damaged ({problem.reason})"
