"""In-process generation with a bigdl-quantized transformers model, streamed token by token."""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwen_tui.conversation import GenerationSettings, GenerationStats, Message, StopReason
from qwen_tui.engine.base import EngineError, GenerationEvent, ModelInfo, ReplyDone, TextChunk
from qwen_tui.engine.prompt import FittedPrompt, PromptFormat, fit_to_context

log = logging.getLogger(__name__)

# How long the consumer waits on the streamer before re-checking cancel and the thread.
_POLL_S = 0.1


@dataclass
class _Progress:
    """Filled in by the generation thread, read by the consumer once the stream ends."""

    prompt_tokens: int
    first_token_at: float | None = None
    last_token_at: float | None = None
    generated: int = 0
    last_token_id: int | None = None
    error: BaseException | None = None
    done: threading.Event = field(default_factory=threading.Event)


def _cancel_criteria(cancel: threading.Event) -> Any:
    """A StoppingCriteria that ends generation at the next token once `cancel` is set."""
    from transformers import StoppingCriteria

    class StopOnCancel(StoppingCriteria):
        def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> bool:
            return cancel.is_set()

    return StopOnCancel()


def _timed_streamer(tokenizer: Any, progress: _Progress) -> Any:
    """A TextIteratorStreamer that also records when each token arrived and which it was.

    `put()` sees every token exactly once (the prompt first), unlike stopping criteria,
    which generate() short-circuits after its own max-length check.
    """
    from transformers import TextIteratorStreamer

    class TimedStreamer(TextIteratorStreamer):
        def put(self, value: Any) -> None:
            if self.next_tokens_are_prompt:
                super().put(value)
                return
            now = time.perf_counter()
            if progress.first_token_at is None:
                progress.first_token_at = now
            progress.last_token_at = now
            progress.generated += int(value.numel())
            progress.last_token_id = int(value.reshape(-1)[-1])
            super().put(value)

    return TimedStreamer(tokenizer, skip_prompt=True, skip_special_tokens=True, timeout=_POLL_S)


class LocalEngine:
    """The Engine protocol over a loaded transformers model (bigdl INT4 or plain)."""

    def __init__(
        self, model: Any, tokenizer: Any, fmt: PromptFormat, info: ModelInfo, threads: int
    ) -> None:
        self.model = model
        self.tokenizer = tokenizer
        self.format = fmt
        self.info = info
        self.threads = threads
        # One generation at a time: a stopped one may still be finishing its current token.
        self._busy = threading.Lock()

    def count_tokens(self, messages: Sequence[Message]) -> int:
        return len(self.format.encode(messages))

    def fit(self, messages: Sequence[Message], settings: GenerationSettings) -> FittedPrompt:
        return fit_to_context(
            messages, self.format, self.info.context_length, settings.max_new_tokens
        )

    def close(self) -> None:
        self.model = None
        self.tokenizer = None
        import gc

        gc.collect()

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        if not messages or messages[-1].role != "user":
            raise ValueError("generate() needs a conversation that ends with a user message")
        try:
            fitted = self.fit(messages, settings)
        except EngineError as error:
            yield ReplyDone(GenerationStats(stop_reason=StopReason.ERROR, error=str(error)))
            return
        with self._busy:
            yield from self._stream(fitted, settings, cancel, started)

    def _stream(
        self,
        fitted: FittedPrompt,
        settings: GenerationSettings,
        cancel: threading.Event,
        started: float,
    ) -> Iterator[GenerationEvent]:
        progress = _Progress(prompt_tokens=len(fitted.ids))
        streamer = _timed_streamer(self.tokenizer, progress)
        thread = threading.Thread(
            target=self._run,
            args=(fitted, settings, streamer, progress, cancel),
            name="qwen-tui-generate",
            daemon=True,
        )
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
            thread.join()
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

        try:
            # OpenMP's thread count is per OS thread: set it in the thread that computes.
            torch.set_num_threads(self.threads)
            if settings.seed is not None:
                torch.manual_seed(settings.seed)
            with torch.inference_mode():
                self.model.generate(
                    torch.tensor([fitted.ids]),
                    attention_mask=torch.ones(1, len(fitted.ids), dtype=torch.long),
                    streamer=streamer,
                    stopping_criteria=[_cancel_criteria(cancel)],
                    generation_config=generation_config(
                        settings, fitted.max_new_tokens, self.format.stop_token_ids
                    ),
                )
        except BaseException as error:  # reported to the consumer, never lost in the thread
            log.exception("generation failed")
            progress.error = error
            streamer.end()  # a plain TextIteratorStreamer would block its reader forever
        finally:
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
        decode = None
        if first is not None and last is not None and progress.generated > 1 and last > first:
            decode = (progress.generated - 1) / (last - first)
        return GenerationStats(
            prompt_tokens=progress.prompt_tokens,
            generated_tokens=max(0, progress.generated),
            ttft_s=None if first is None else first - started,
            decode_tok_s=decode,
            total_s=time.perf_counter() - started,
            stop_reason=reason,
            dropped_turns=fitted.dropped_turns,
            error=error,
        )


def generation_config(
    settings: GenerationSettings, max_new_tokens: int, stop_token_ids: list[int]
) -> Any:
    """A fresh GenerationConfig for the user's settings (temperature 0 = greedy).

    Fresh rather than the model's own: a checkpoint's generation_config.json carries sampling
    defaults that would override the user's choices (and warn when greedy is asked for).
    """
    from transformers import GenerationConfig

    sampling: dict[str, Any] = {"do_sample": False}
    if settings.temperature > 0:
        sampling = {
            "do_sample": True,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
            "top_k": settings.top_k,
        }
    return GenerationConfig(
        max_new_tokens=max_new_tokens,
        eos_token_id=stop_token_ids,
        pad_token_id=stop_token_ids[0],
        repetition_penalty=settings.repetition_penalty,
        **sampling,
    )
