"""Continuing a reply on a tiny real model: the engine feeds the exact continuation prompt,
reuses the KV cache of the reply it continues, and computes what a cold run computes."""

from __future__ import annotations

import pytest

from qwen_tui.conversation import GenerationSettings, Message, StopReason
from qwen_tui.engine.base import ReplyDone, TextChunk
from tests.engine.teacher_forcing import assert_matches_cold, traced_reply
from tests.engine.test_kv_reuse import shared_prefix

pytestmark = pytest.mark.kernels

GREEDY = GenerationSettings(temperature=0, max_new_tokens=8, repetition_penalty=1.0)
ASKED = [Message("system", "Be brief."), Message("user", "Tell me about the terminal.")]


def reply(engine, messages: list[Message]) -> tuple[str, ReplyDone]:
    events = list(engine.generate(messages, GREEDY))
    done = events[-1]
    assert isinstance(done, ReplyDone)
    return "".join(e.text for e in events if isinstance(e, TextChunk)), done


@pytest.mark.parametrize("kind", ["qwen2", "llama", "remote"])
def test_continuing_a_cut_reply_feeds_its_exact_prompt_on_the_cache(tiny_engine, kind) -> None:
    engine = tiny_engine(kind)
    engine.cache.reset()
    text, first = reply(engine, ASKED)
    assert first.stats.stop_reason is StopReason.MAX_TOKENS and text
    cached = list(engine.cache.ids)

    continued = [*ASKED, Message("assistant", text)]
    expected = engine.format.encode_continuation(continued)
    assert engine.fit(continued, GREEDY).ids == expected
    more, done = reply(engine, continued)
    assert more and done.stats.prompt_tokens == len(expected)
    # What the model saw before is reused up to where the reply's text, encoded again, first
    # differs from the ids it was decoded from: at least the question. (A random model's
    # reply is byte soup that rarely encodes back the same; a real model's mostly does:
    # the TTFT measured in docs/BENCHMARKS.md.)
    assert done.stats.reused_tokens == min(shared_prefix(cached, expected), len(expected) - 1)
    assert done.stats.reused_tokens >= first.stats.prompt_tokens


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_a_continuation_on_a_reused_cache_computes_as_a_cold_run(tiny_engine, kind) -> None:
    engine = tiny_engine(kind)
    engine.cache.reset()
    text, _first = reply(engine, ASKED)
    prompt = engine.format.encode_continuation([*ASKED, Message("assistant", text + " and")])
    trace = traced_reply(engine, prompt, 6, engine.prefill_chunk)
    assert trace.reused > 0
    assert_matches_cold(engine, trace)
