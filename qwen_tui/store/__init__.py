"""Persistence: sessions on disk, atomic writes, schema versions and migrations."""

from qwen_tui.store.sessions import (
    SCHEMA_VERSION,
    CorruptSessionError,
    InvalidSessionIdError,
    SessionNotFoundError,
    SessionStore,
    SessionSummary,
    StoreError,
    StoreProblem,
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
