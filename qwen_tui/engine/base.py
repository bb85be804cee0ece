"""The protocol the UI, the CLI and the benchmarks talk to.

    engine = load_engine(model_dir)              # slow: run it in a worker
    for event in engine.generate(messages, settings, cancel):
        match event:
            case TextChunk(text): show(text)
            case ReplyDone(stats): finish(stats)  # always the last event, also on error/stop

Errors inside generation do not raise out of the iterator: they end the stream with
`ReplyDone(stats)` whose `stop_reason` is ERROR and `error` says what happened, so every
consumer has one path for "the reply is over" and keeps the partial text.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from typing import Protocol

from qwen_tui.conversation import GenerationSettings, GenerationStats, Message


class EngineError(Exception):
    """A model could not be loaded or used; the message is meant for the user."""


class ModelDamagedError(EngineError):
    """Files of an installed model are missing or truncated."""


@dataclass(frozen=True)
class ModelInfo:
    name: str
    """Installed name (`qwen-tui models`), e.g. `demo`."""
    arch: str
    """transformers architecture, e.g. `Qwen2ForCausalLM`."""
    low_bit: str
    """bigdl low-bit format, e.g. `sym_int4`."""
    context_length: int
    """Tokens the model attends to: prompt plus reply."""
    source: str = ""
    """Where it came from: a hub repo id, a GGUF file, a local folder."""
    kernel: str = ""
    """Which bigdl native library does the INT4 math (e.g. `avx512`)."""


@dataclass(frozen=True)
class TextChunk:
    text: str


@dataclass(frozen=True)
class ReplyDone:
    stats: GenerationStats


GenerationEvent = TextChunk | ReplyDone


CONTINUE_NEEDS_LOCAL = (
    "Continue needs a local model: an OpenAI-compatible server has no standard way to add "
    "to a reply it has already sent."
)
"""Why a remote engine refuses to continue a reply (told, never a silent new reply)."""


class Engine(Protocol):
    info: ModelInfo
    continues_replies: bool
    """generate() can continue a conversation's last assistant message (a local model can:
    it is fed the exact prompt; a chat-completions server takes whole messages only)."""

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        """Continue the conversation `messages` (system prompt first): a reply to its last
        message from the user, or, when it ends with an assistant message, more of that
        message (the events carry only the new text)."""
        ...

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens `messages` would take, formatted as generate() formats them."""
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...

    def wait_idle(self, timeout: float) -> bool:
        """Wait up to `timeout` s for what a stopped reply still computes in the background
        (generate() returns at a stop before its thread has left the model); False if it
        still runs. A process must not exit under such a thread: see app.run_app."""
        ...


def check_conversation(messages: Sequence[Message], *, continues_replies: bool = True) -> None:
    """What every engine's generate() needs: a conversation the user spoke last in, or (if
    the engine `continues_replies`) one whose last reply is to be continued."""
    last = messages[-1].role if messages else None
    if last == "user" or (last == "assistant" and continues_replies):
        return
    raise ValueError("generate() needs a conversation that ends with a user message")
