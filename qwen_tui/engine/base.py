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


class Engine(Protocol):
    info: ModelInfo

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        """Continue the conversation `messages` (system prompt first, last one from the user)."""
        ...

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """Prompt tokens `messages` would take, formatted as generate() formats them."""
        ...

    def close(self) -> None:
        """Free the model's memory."""
        ...


def check_conversation(messages: Sequence[Message]) -> None:
    """What every engine's generate() needs: a conversation the user spoke last in."""
    if not messages or messages[-1].role != "user":
        raise ValueError("generate() needs a conversation that ends with a user message")
