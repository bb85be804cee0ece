"""Our messages and settings as an OpenAI chat-completions request, and its stream as stats.

The other direction from the transport: which turns fit (estimated: no tokenizer for a
remote model, about four characters per token), the request body (with the sampling fields
vLLM and llama.cpp accept beyond OpenAI's), and each ChatCompletionChunk turned into text,
then into GenerationStats (the server's `usage` when it sends one, else counted chunks).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qwen_tui.config import RemoteConfig
from qwen_tui.conversation import GenerationSettings, GenerationStats, Message, StopReason
from qwen_tui.engine.prompt import PromptTooLongError, fit_to_context
from qwen_tui.engine.remote_errors import after, explain, where
from qwen_tui.engine.stats import decode_rate, time_to_first_token
from qwen_tui.well_formed import well_formed

CHARS_PER_TOKEN = 4
"""The prompt-size estimate: English text averages about four characters per token."""
TOKENS_PER_MESSAGE = 4
"""Chat templates add a few tokens around each message (role, start and end markers)."""


def estimate_tokens(messages: Sequence[Message]) -> int:
    """Prompt tokens `messages` would take, estimated: chars/4 plus a few per message."""
    text = sum(-(-len(m.content) // CHARS_PER_TOKEN) for m in messages)
    return text + TOKENS_PER_MESSAGE * len(messages) + 3  # + the assistant cue


class _EstimatedFormat:
    """A PromptFormat whose "ids" only have the estimated length, for fit_to_context."""

    stop_token_ids: list[int] = []  # noqa: RUF012 (the protocol's attribute, never mutated)

    def encode(self, messages: Sequence[Message]) -> list[int]:
        return [0] * estimate_tokens(messages)

    encode_continuation = encode  # (never asked: remote engines do not continue replies)


def fit_messages(
    messages: Sequence[Message], settings: GenerationSettings, context_length: int
) -> tuple[list[Message], int, int]:
    """The messages to send (oldest turns left out when the estimate says they do not
    fit), how many turns were left out, and the reply budget."""
    system = list(messages[:1]) if messages[0].role == "system" else []
    body = list(messages[len(system) :])
    try:
        fitted = fit_to_context(
            messages, _EstimatedFormat(), context_length, settings.max_new_tokens
        )
    except PromptTooLongError:
        # Only an estimate: send the newest message alone and let the server judge.
        users = sum(1 for m in body[:-1] if m.role == "user")
        return [*system, body[-1]], users, settings.max_new_tokens
    users = [i for i, m in enumerate(body) if m.role == "user"]
    cut = users[fitted.dropped_turns] if fitted.dropped_turns else 0
    return [*system, *body[cut:]], fitted.dropped_turns, fitted.max_new_tokens


def chat_request(
    remote: RemoteConfig,
    messages: Sequence[Message],
    settings: GenerationSettings,
    max_tokens: int,
) -> dict[str, Any]:
    request: dict[str, Any] = {
        "model": remote.model,
        "messages": [{"role": m.role, "content": m.content} for m in messages],
        "stream": True,
        # Token counts and cached prompt tokens in a last chunk, where servers support it.
        "stream_options": {"include_usage": True},
        "max_tokens": max_tokens,
        "temperature": settings.temperature,
        "top_p": settings.top_p,
    }
    if settings.seed is not None:
        request["seed"] = settings.seed
    if remote.extended_sampling:
        # vLLM calls it repetition_penalty, llama.cpp (and llama-cpp-python's server)
        # repeat_penalty; these servers ignore fields they do not know.
        request["extra_body"] = {
            "top_k": settings.top_k,
            "repetition_penalty": settings.repetition_penalty,
            "repeat_penalty": settings.repetition_penalty,
        }
    return request


@dataclass
class Reply:
    """What the stream said so far, turned into GenerationStats at the end."""

    prompt_estimate: int
    dropped_turns: int
    chunks: int = 0
    """Chunks that carried text: one token each on llama.cpp, vLLM and Ollama."""
    first_at: float | None = None
    last_at: float | None = None
    finish_reason: str | None = None
    usage: Any = None
    error: BaseException | None = None

    def take(self, chunk: Any, at: float) -> str:
        """The text of one ChatCompletionChunk; remembers timing, finish reason and usage."""
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        text = ""
        for choice in chunk.choices or ():
            if (getattr(choice, "index", 0) or 0) != 0:  # n > 1 is never asked for
                continue
            text += (choice.delta.content if choice.delta else None) or ""
            self.finish_reason = choice.finish_reason or self.finish_reason
        # JSON may carry lone surrogates ("\ud800"): U+FFFD here, or printing and saving the
        # reply (and sending the session again) would fail on it.
        text = well_formed(text)
        if text:
            self.chunks += 1
            self.first_at = at if self.first_at is None else self.first_at
            self.last_at = at
        return text

    def stats(self, remote: RemoteConfig, stopped: bool, started: float) -> GenerationStats:
        reason, error = self._outcome(remote, stopped)
        generated, prompt, cached = self._counts()
        first, last = self.first_at, self.last_at
        return GenerationStats(
            prompt_tokens=prompt,
            generated_tokens=generated,
            ttft_s=time_to_first_token(started, first),
            decode_tok_s=decode_rate(generated, first, last),
            total_s=time.perf_counter() - started,
            stop_reason=reason,
            dropped_turns=self.dropped_turns,
            reused_tokens=cached,
            error=error,
        )

    def _outcome(self, remote: RemoteConfig, stopped: bool) -> tuple[StopReason, str | None]:
        if stopped:
            return StopReason.STOPPED, None
        if self.error is not None:
            return StopReason.ERROR, explain(self.error, remote, received=self.chunks)
        if self.finish_reason == "length":
            return StopReason.MAX_TOKENS, None
        if self.finish_reason is None:
            # The HTTP stream ended cleanly but the model never finished: llama-cpp-python's
            # server does this when the prompt exceeds its context window.
            return StopReason.ERROR, (
                f"{where(remote)}: the server ended the reply without finishing it"
                f"{after(self.chunks)}; its log may say why (a prompt longer than its "
                f"context window, for one)"
            )
        return StopReason.EOS, None

    def _counts(self) -> tuple[int, int, int]:
        """(generated, prompt, cached prompt) tokens: the server's usage when it sent one."""
        usage = self.usage
        if usage is None:
            return self.chunks, self.prompt_estimate, 0
        details = getattr(usage, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None) or 0
        return usage.completion_tokens or 0, usage.prompt_tokens or 0, cached
