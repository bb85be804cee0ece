"""In-process generation with a bigdl-quantized transformers model, streamed token by token."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwen_tui.conversation import GenerationSettings, GenerationStats, Message, StopReason
from qwen_tui.engine import memory
from qwen_tui.engine.base import (
    EngineError,
    GenerationEvent,
    ModelInfo,
    ReplyDone,
    TextChunk,
    check_conversation,
)
from qwen_tui.engine.decode import KVCache, decode, make_room_ahead
from qwen_tui.engine.prompt import FittedPrompt, PromptFormat, fit_to_context
from qwen_tui.engine.stats import decode_rate, time_to_first_token

log = logging.getLogger(__name__)

# How long the consumer waits on the streamer before re-checking cancel and the thread.
_POLL_S = 0.1

# Prompt tokens fed to the model per step (see decode()); measured in docs/BENCHMARKS.md.
PREFILL_CHUNK = 512


@dataclass
class _Progress:
    """Filled in by the generation thread, read by the consumer once the stream ends."""

    prompt_tokens: int
    first_token_at: float | None = None
    last_token_at: float | None = None
    generated: int = 0
    last_token_id: int | None = None
    reused: int = 0
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


class LocalEngine:
    """The Engine protocol over a loaded transformers model (bigdl INT4 or plain)."""

    continues_replies = True
    """We build the prompt's ids ourselves, so a reply can be continued exactly."""

    def __init__(
        self,
        model: Any,
        tokenizer: Any,
        fmt: PromptFormat,
        info: ModelInfo,
        threads: int,
        prefill_chunk: int = PREFILL_CHUNK,
        step: Callable[[list[int], Any], Any] | None = None,
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.format = fmt
        self.info = info
        self.threads = threads
        self.prefill_chunk = prefill_chunk
        self.step = step
        """Computes new tokens without the model's module stack (None: the model's forward)."""
        # One computation at a time: a stopped reply's thread may still be finishing its
        # current token (or a long prefill) when the next reply starts; it owns the cache.
        self._compute = threading.Lock()
        self._threads: list[threading.Thread] = []
        """The generation threads started and not yet seen finished (see wait_idle)."""
        self.cache = KVCache()
        """The conversation so far as the model saw it: the next turn feeds only what's new."""

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.format.encode(messages))

    def fit(self, messages: Sequence[Message], settings: GenerationSettings) -> FittedPrompt:
        return fit_to_context(
            messages, self.format, self.info.context_length, settings.max_new_tokens
        )

    def close(self) -> None:
        self.cache.reset()
        self.model = None
        self.tokenizer = None
        import gc

        gc.collect()

    def wait_idle(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        for thread in list(self._threads):
            thread.join(max(0.0, deadline - time.monotonic()))
        self._threads = [thread for thread in self._threads if thread.is_alive()]
        return not self._threads

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        check_conversation(messages)
        try:
            fitted = self.fit(messages, settings)
        except EngineError as error:
            yield ReplyDone(GenerationStats(stop_reason=StopReason.ERROR, error=str(error)))
            return
        yield from self._stream(fitted, settings, cancel, started)

    def _stream(
        self,
        fitted: FittedPrompt,
        settings: GenerationSettings,
        cancel: threading.Event,
        started: float,
    ) -> Iterator[GenerationEvent]:
        from transformers import TextIteratorStreamer

        progress = _Progress(prompt_tokens=len(fitted.ids))
        if cancel.is_set():  # stopped (or the app quit) while the prompt was being fitted
            yield ReplyDone(self._stats(fitted, settings, progress, cancel, started))
            return
        # It only turns token ids into text (whole words, whole UTF-8 characters); the
        # timeout lets us notice cancel and failures instead of blocking on its queue.
        streamer = TextIteratorStreamer(self.tokenizer, skip_special_tokens=True, timeout=_POLL_S)
        thread = threading.Thread(
            target=self._run,
            args=(fitted, settings, streamer, progress, cancel),
            name="qwen-tui-generate",
            daemon=True,
        )
        self._threads = [t for t in self._threads if t.is_alive()] + [thread]
        thread.start()
        while True:
            try:
                text = next(streamer)
            except StopIteration:
                break
            except queue.Empty:
                # Cancel ends the stream now; the thread stops at its next token.
                if cancel.is_set() or progress.done.is_set():
                    break
                continue
            if text:
                yield TextChunk(text)
        if not cancel.is_set():
            progress.done.wait()
        yield ReplyDone(self._stats(fitted, settings, progress, cancel, started))

    def _run(
        self,
        fitted: FittedPrompt,
        settings: GenerationSettings,
        streamer: Any,
        progress: _Progress,
        cancel: threading.Event,
    ) -> None:
        import torch

        def on_token(token_id: int) -> bool:
            now = time.perf_counter()
            if progress.first_token_at is None:
                progress.first_token_at = now
            progress.last_token_at = now
            progress.generated += 1
            progress.last_token_id = token_id
            if token_id not in self.format.stop_token_ids:
                streamer.put(torch.tensor([token_id]))
            return not cancel.is_set()

        try:
            # OpenMP's thread count is per OS thread: set it in the thread that computes.
            torch.set_num_threads(self.threads)
            with self._compute, torch.inference_mode():
                progress.reused = decode(
                    self.model,
                    self.cache,
                    fitted.ids,
                    settings,
                    fitted.max_new_tokens,
                    self.format.stop_token_ids,
                    on_token,
                    prefill_chunk=self.prefill_chunk,
                    cancelled=cancel.is_set,
                    step=self.step,
                )
                streamer.end()  # the text is complete: the reader can show it
                # Room for the next turn now, so growing the cache is not in its TTFT.
                # Before `done`: a process that exits after the reply must not find this
                # thread still inside torch (it aborts).
                make_room_ahead(self.cache)
        except BaseException as error:  # reported to the consumer, never lost in the thread
            log.exception("generation failed")
            progress.error = error
            streamer.end()  # without it the reader would wait on the queue forever
        finally:
            memory.release_free_memory()  # the prefill's activations, the cache's old buffer
            progress.done.set()

    def _stats(
        self,
        fitted: FittedPrompt,
        settings: GenerationSettings,
        progress: _Progress,
        cancel: threading.Event,
        started: float,
    ) -> GenerationStats:
        if progress.error is not None:
            reason, error = StopReason.ERROR, f"generation failed: {progress.error}"
        elif cancel.is_set():
            reason, error = StopReason.STOPPED, None
        elif progress.last_token_id in self.format.stop_token_ids:
            reason, error = StopReason.EOS, None
        elif progress.generated >= fitted.max_new_tokens:
            reason, error = StopReason.MAX_TOKENS, None
        else:
            reason, error = StopReason.EOS, None
        first, last = progress.first_token_at, progress.last_token_at
        return GenerationStats(
            prompt_tokens=progress.prompt_tokens,
            generated_tokens=max(0, progress.generated),
            ttft_s=time_to_first_token(started, first),
            decode_tok_s=decode_rate(progress.generated, first, last),
            total_s=time.perf_counter() - started,
            stop_reason=reason,
            dropped_turns=fitted.dropped_turns,
            reused_tokens=progress.reused,
            error=error,
        )
