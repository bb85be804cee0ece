"""Persistence: sessions on disk, atomic writes, locks, schema versions and migrations."""

from qwen_tui.store.sessions import (
    SCHEMA_VERSION,
    CorruptSessionError,
    InvalidSessionIdError,
    LockHolder,
    OpenSession,
    SessionChangedError,
    SessionLock,
    SessionLockedError,
    SessionNotFoundError,
    SessionStore,
    SessionSummary,
    StoreError,
    StoreProblem,
    check_session_id,
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
