"""Persistence: sessions on disk, atomic writes, locks, schema versions and migrations."""

from qwen_tui.store.errors import (
    CorruptSessionError,
    InvalidSessionIdError,
    SessionChangedError,
    SessionLockedError,
    SessionNotFoundError,
    StoreError,
    StoreProblem,
)
from qwen_tui.store.lock import LockHolder, SessionLock
from qwen_tui.store.open_session import OpenSession
from qwen_tui.store.schema import SCHEMA_VERSION
from qwen_tui.store.session_files import check_session_id
from qwen_tui.store.session_reading import SessionSummary
from qwen_tui.store.sessions import SessionStore

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
