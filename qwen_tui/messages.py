"""Textual messages the app, its workers and its widgets exchange.

Workers run in threads and report with `post_message` (thread-safe); the handlers run on the
UI thread, so widgets are only ever touched there.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.message import Message

from qwen_tui.chat.reply import StreamedText
from qwen_tui.conversation import GenerationStats

__all__ = [
    "ContextCounted",
    "GenerationFinished",
    "ModelStateChanged",
    "SessionsListed",
    "StreamedText",
    "TokenReceived",
]

if TYPE_CHECKING:
    from qwen_tui.engine.base import ModelInfo
    from qwen_tui.store import SessionSummary


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
