"""Textual messages the app, its workers and its widgets exchange.

Workers run in threads and report with `post_message` (thread-safe); the handlers run on the
UI thread, so widgets are only ever touched there.
"""

from __future__ import annotations

import threading
from typing import TYPE_CHECKING

from textual.message import Message

from qwen_tui.conversation import GenerationStats

if TYPE_CHECKING:
    from qwen_tui.engine.base import ModelInfo
    from qwen_tui.store import SessionSummary


class StreamedText:
    """Pieces of a reply the worker produced and the UI has not taken yet.

    One TokenReceived is in flight at a time: when the UI is slower than the model, pieces
    wait here and merge instead of each queueing a message (a server can send 40,000 pieces
    in a second, and a message costs the UI thread more than the piece)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pieces: list[str] = []

    def put(self, text: str) -> bool:
        """Add a piece; True when the UI must be told (nothing was waiting)."""
        with self._lock:
            self._pieces.append(text)
            return len(self._pieces) == 1

    def take(self) -> tuple[str, int]:
        """Everything waiting, and how many pieces it was."""
        with self._lock:
            pieces, self._pieces = self._pieces, []
        return "".join(pieces), len(pieces)


class TokenReceived(Message):
    """Pieces of the reply being generated are waiting in `text` (when it has not been
    emptied since). GenerationFinished follows the last one; what is still waiting then
    belongs to the reply."""

    def __init__(self, text: StreamedText) -> None:
        super().__init__()
        self.text = text


class GenerationFinished(Message):
    """The reply is over (finished, stopped or failed); `stats` says which."""

    def __init__(self, stats: GenerationStats) -> None:
        super().__init__()
        self.stats = stats


class ModelStateChanged(Message):
    """The model started loading, became ready, failed, or none is installed."""

    def __init__(self, state: str, info: ModelInfo | None = None, error: str = "") -> None:
        super().__init__()
        self.state = state
        """One of `none`, `loading`, `ready`, `error`."""
        self.info = info
        self.error = error


class ContextCounted(Message):
    """How many tokens the conversation takes in the model's context."""

    def __init__(self, tokens: int) -> None:
        super().__init__()
        self.tokens = tokens


class SessionsListed(Message):
    """The sidebar's list of sessions (all of them, or those matching `query`)."""

    def __init__(
        self, summaries: list[SessionSummary], query: str, problems: list[str] | None = None
    ) -> None:
        super().__init__()
        self.summaries = summaries
        self.query = query
        self.problems = problems or []
        """Damaged session files found (and moved aside) while listing."""
