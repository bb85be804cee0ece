"""A scripted Engine for UI tests that are about layout and keys, not generation.

It implements the same protocol as the real engine (qwen_tui.engine.base.Engine): streams a
reply word by word with a small delay, honours `cancel`, always ends with ReplyDone (also on
failure), and counts tokens as words.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator, Sequence

from qwen_tui.conversation import GenerationSettings, GenerationStats, Message, StopReason
from qwen_tui.engine.base import GenerationEvent, ModelInfo, ReplyDone, TextChunk

Script = str | Callable[[Sequence[Message]], str]


class FakeEngine:
    continues_replies = True
    """A conversation ending with a reply gets more of it (the script's words, appended)."""

    def __init__(
        self,
        replies: Script | list[Script] = "Hello from the fake engine.",
        *,
        name: str = "fake",
        delay: float = 0.005,
        fail_with: str | None = None,
        fail_after: int = 0,
        fixed_stats: bool = False,
        context_length: int = 2048,
        low_bit: str = "sym_int4",
    ) -> None:
        """`replies` are used in turn (the last one repeats); `fail_with` ends every reply
        with an error after `fail_after` words; `fixed_stats` reports constant timings
        (snapshot tests)."""
        self.info = ModelInfo(
            name=name, arch="FakeForCausalLM", low_bit=low_bit, context_length=context_length
        )
        self._replies = replies if isinstance(replies, list) else [replies]
        self.delay = delay
        self.fail_with = fail_with
        self.fail_after = fail_after
        self.fixed_stats = fixed_stats
        self.calls: list[tuple[list[Message], GenerationSettings]] = []
        self.closed = False
        self.started = threading.Event()
        """Set when a generation has produced its first word (tests wait on it)."""

    def _next_reply(self, messages: Sequence[Message]) -> str:
        script = self._replies[min(len(self.calls) - 1, len(self._replies) - 1)]
        return script(messages) if callable(script) else script

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        cancel = cancel or threading.Event()
        self.calls.append((list(messages), settings))
        assert messages[0].role == "system" and messages[-1].role in ("user", "assistant")
        words = self._next_reply(messages).split(" ")[: settings.max_new_tokens]
        started = time.perf_counter()
        first: float | None = None
        produced = 0
        for index, word in enumerate(words):
            if cancel.is_set():
                yield ReplyDone(self._stats(messages, produced, started, first, StopReason.STOPPED))
                return
            if self.fail_with is not None and produced >= self.fail_after:
                stats = self._stats(messages, produced, started, first, StopReason.ERROR)
                yield ReplyDone(
                    GenerationStats(
                        **{
                            **stats.to_dict(),
                            "stop_reason": StopReason.ERROR,
                            "error": self.fail_with,
                        }
                    )
                )
                return
            time.sleep(self.delay)
            first = first or time.perf_counter()
            produced += 1
            yield TextChunk(word if index == 0 else " " + word)
            self.started.set()
        reason = StopReason.MAX_TOKENS if produced >= settings.max_new_tokens else StopReason.EOS
        yield ReplyDone(self._stats(messages, produced, started, first, reason))

    def _stats(
        self,
        messages: Sequence[Message],
        produced: int,
        started: float,
        first: float | None,
        reason: StopReason,
    ) -> GenerationStats:
        now = time.perf_counter()
        if self.fixed_stats:
            ttft, rate = 0.25, 12.5
        else:
            ttft = None if first is None else first - started
            rate = (
                (produced - 1) / (now - first) if first and produced > 1 and now > first else None
            )
        return GenerationStats(
            prompt_tokens=self.count_tokens(messages),
            generated_tokens=produced,
            ttft_s=ttft,
            decode_tok_s=rate,
            total_s=now - started,
            stop_reason=reason,
        )

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return sum(len(m.content.split()) for m in messages)

    def close(self) -> None:
        self.closed = True

    def wait_idle(self, timeout: float) -> bool:
        return True  # generate() computes in its caller's thread: nothing is left behind
