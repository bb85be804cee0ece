"""The reply being streamed: its text as it arrives, how to stop it, its live numbers."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from qwen_tui.conversation import GenerationStats, Message, StopReason


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


@dataclass
class ReplyStream:
    """The assistant message being generated, how to stop it, and its live numbers."""

    message: Message
    cancel: threading.Event = field(default_factory=threading.Event)
    incoming: StreamedText = field(default_factory=StreamedText)
    """Pieces the worker sent that the UI has not taken yet."""
    started: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    chunks: int = 0
    """Pieces received; the engine sends about one per token."""
    last_live_stats: float = 0.0
    context_before: int | None = None
    """Tokens the conversation took before this reply (the status bar's ctx while it grows)."""
    last_partial_save: float | None = None
    """None until the first piece, which is saved at once."""
    partial_save_failed: bool = False

    def add(self, text: str, pieces: int, now: float) -> None:
        self.message.content += text
        self.chunks += pieces
        if self.first_token_at is None:
            self.first_token_at = now

    def take_waiting(self, now: float) -> tuple[str, int]:
        """Move what the worker left in `incoming` into the message; the text and its pieces."""
        text, pieces = self.incoming.take()
        if pieces:
            self.add(text, pieces, now)
        return text, pieces

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started

    def tok_s(self, now: float) -> float | None:
        """Pieces per second after the first (what the status bar shows while streaming)."""
        if self.first_token_at is None or now <= self.first_token_at:
            return None
        return (self.chunks - 1) / (now - self.first_token_at)

    @property
    def context_used(self) -> int | None:
        """The conversation's tokens so far, counting a piece as about one token."""
        if self.context_before is None:
            return None
        return self.context_before + self.chunks

    def partial_stats(self) -> GenerationStats:
        """What a save made while streaming records: how far the reply got. A process killed
        after it leaves a reply that says so (the store settles it as stopped), not 0 tokens."""
        return GenerationStats(generated_tokens=self.chunks)

    def stopped_stats(self) -> GenerationStats:
        """The stats of a reply cut short by quitting (no ReplyDone will come)."""
        return GenerationStats(generated_tokens=self.chunks, stop_reason=StopReason.STOPPED)
