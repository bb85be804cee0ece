"""Where the user left off: the session to show at start and the prompt left unsent in it.

Kept in state.toml through store/state.py; a state file that cannot be written costs the next
start a click, so failures are logged, never shown.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from pathlib import Path

from qwen_tui.conversation import Session
from qwen_tui.store import OpenSession, SessionStore, StoreError
from qwen_tui.store.state import AppState, load_state, save_state

log = logging.getLogger(__name__)


class LeftOff:
    """The session last shown and its draft, as state.toml last had them."""

    def __init__(self, store: SessionStore, state_file: Path) -> None:
        self.store = store
        self.state_file = state_file
        self.state = AppState()
        """What state.toml says, as last read or written."""

    def first_session(
        self, new: Callable[[], OpenSession], session_id: str | None, new_session: bool
    ) -> tuple[OpenSession, StoreError | None]:
        """The `session_id` one if given (read-only if another qwen-tui writes it), a new one
        (from `new`) with `new_session`, else the one shown when the app last ran (new if it
        is gone). The error says why `session_id` could not be opened (a new one is shown)."""
        if not new_session:
            self.state = load_state(self.state_file)
        if session_id:
            try:
                return self.store.open(session_id), None
            except StoreError as error:
                return new(), error
        if not new_session and self.state.last_session:
            reopened = self._reopen(self.state.last_session)
            if reopened is not None:
                return reopened, None
        return new(), None

    def _reopen(self, session_id: str) -> OpenSession | None:
        try:
            opened = self.store.open(session_id)
        except StoreError as error:  # deleted, damaged: start afresh (the sidebar lists it)
            log.info("not reopening the last session: %s", error)
            return None
        if opened.read_only:  # another qwen-tui is in it: a new one rather than a view
            opened.close()
            return None
        return opened

    def _key(self, session: Session) -> str:
        """How state.toml names `session`: its id once saved, empty while it is new."""
        return session.id if self.store.path_for(session.id).exists() else ""

    def draft_for(self, session: Session) -> str:
        """The prompt left unsent in `session` when the app last ran."""
        return self.state.draft if self.state.last_session == self._key(session) else ""

    def remember(self, session: Session) -> None:
        """`session` is the one to reopen next time (written only when that changes)."""
        key = self._key(session)
        if key != self.state.last_session:
            self._write(AppState(last_session=key))

    def leaving(self, session: Session, draft: str) -> None:
        """The session shown now and the prompt's unsent text, for the next start."""
        self._write(AppState(self._key(session), draft))

    def _write(self, state: AppState) -> None:
        try:
            save_state(self.state_file, state)
        except (OSError, ValueError) as error:  # costs the next start a click, no more
            log.warning("could not save %s: %s", self.state_file, error)
        self.state = state
