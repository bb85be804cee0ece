"""How fast an engine answers, measured through `engine.generate` as the app and `ask` use it.

One home for these measurements: `qwen-tui bench` (the installed package) and `make bench`
(benchmarks/, the full harness with baselines) both take them from here, so their numbers
mean the same thing. Rates are the ones the status bar shows (`GenerationStats`).
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from qwen_tui.conversation import GenerationSettings, GenerationStats, Message
from qwen_tui.engine.base import ReplyDone, TextChunk

# Plain words that are one token each in most BPE vocabularies: prompts of a known length.
_FILLER = (
    "the of and to in is you that it he was for on are as with his they at be this have "
    "from or one had by word but not what all were we when your can said there use an each "
    "which she do how their if will up other about out many then them these so some her "
    "would make like him into time has look two more write go see number no way could "
    "people my than first water been call who oil its now find long down day did get come "
    "made may part over new sound take only little work know place year live me back give "
    "most very after thing our just name good sentence man think say great where help "
    "through much before line right too mean old any same tell boy follow came want show "
    "also around form three"
)
FILLER_WORDS = tuple(_FILLER.split())


def filler_text(words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(FILLER_WORDS) for _ in range(words)).capitalize() + "."


def fresh_system(seed: int) -> str:
    """A system prompt no earlier request had: a cache can reuse only the role marker."""
    return f"Session {seed}: you are a helpful assistant."


def chat_of_length(engine: Any, tokens: int, seed: int, system: str) -> list[Message]:
    """[system, user] whose prompt is `tokens` long (within a couple of tokens, never longer)."""

    def chat(words: int) -> list[Message]:
        return [Message("system", system), Message("user", filler_text(words, seed))]

    words = max(1, tokens - engine.count_tokens(chat(1)))
    for _ in range(4):  # filler words are ~1 token each: a couple of corrections suffice
        missing = tokens - engine.count_tokens(chat(words))
        if missing == 0:
            break
        # Half steps: in a small vocabulary a word is several tokens, full steps overshoot.
        words = max(1, words + (missing // 2 if abs(missing) > 1 else missing))
    while words > 1 and engine.count_tokens(chat(words)) > tokens:
        words -= 1
    return chat(words)


class _NoStopFormat:
    """Formats prompts like `inner` but has no stop tokens: replies run to their length."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.stop_token_ids: list[int] = []

    def encode(self, messages: Any) -> list[int]:
        return self.inner.encode(messages)


@contextmanager
def eos_ignored(engine: Any) -> Iterator[None]:
    """Fixed-length replies through the engine's own generation path.

    The Engine protocol has no "ignore EOS" switch; LocalEngine takes its stop tokens from
    its prompt format, so a format without any makes every reply run to max_new_tokens.
    """
    original = engine.format
    engine.format = _NoStopFormat(original)
    try:
        yield
    finally:
        engine.format = original


def greedy(max_new_tokens: int) -> GenerationSettings:
    return GenerationSettings(temperature=0, repetition_penalty=1.0, max_new_tokens=max_new_tokens)


def reply(engine: Any, messages: list[Message], max_new_tokens: int) -> tuple[str, GenerationStats]:
    """One greedy reply through `engine.generate`, as the app and `ask` get it: (text, stats)."""
    text, stats = [], None
    for event in engine.generate(messages, greedy(max_new_tokens)):
        if isinstance(event, TextChunk):
            text.append(event.text)
        elif isinstance(event, ReplyDone):
            stats = event.stats
    if stats is None or stats.error:
        raise RuntimeError(f"generation failed: {stats and stats.error}")
    return "".join(text), stats


def fixed_length(stats: GenerationStats, new_tokens: int) -> float:
    """The decode rate of a reply that had to be exactly `new_tokens` long."""
    if stats.generated_tokens != new_tokens or stats.decode_tok_s is None:
        raise RuntimeError(f"asked for {new_tokens} tokens, got {stats.generated_tokens}")
    return stats.decode_tok_s


def warm_up(engine: Any) -> None:
    """First calls pay for thread pools and lazy set-up; no measurement includes them."""
    reply(engine, chat_of_length(engine, 24, -1, fresh_system(-1)), 4)


def engine_decode(engine: Any, new_tokens: int, seed: int) -> dict[str, float]:
    """Decode tok/s of a fixed-length reply to a 32-token chat."""
    messages = chat_of_length(engine, 32, seed, fresh_system(seed))
    with eos_ignored(engine):
        _, stats = reply(engine, messages, new_tokens)
    return {"decode_tok_s": fixed_length(stats, new_tokens)}


def engine_prefill(engine: Any, tokens: int, seed: int) -> dict[str, Any]:
    """TTFT of a fresh `tokens`-long chat; prefill tok/s = tokens computed / TTFT.

    TTFT also holds formatting the prompt and picking the first token: milliseconds.
    """
    messages = chat_of_length(engine, tokens, seed, fresh_system(seed))
    _, stats = reply(engine, messages, 1)
    if not stats.ttft_s:
        raise RuntimeError("the reply has no first-token time")
    return {
        "ttft_s": stats.ttft_s,
        "prefill_tok_s": (stats.prompt_tokens - stats.reused_tokens) / stats.ttft_s,
        "prompt_tokens": stats.prompt_tokens,
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
