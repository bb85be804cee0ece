"""KV-cache reuse across turns: the next turn feeds only new tokens, and answers the same."""

from __future__ import annotations

import pytest

from qwen_tui.conversation import GenerationSettings, Message
from qwen_tui.engine.base import ReplyDone, TextChunk

GREEDY = GenerationSettings(temperature=0, max_new_tokens=12, repetition_penalty=1.0)
QUESTIONS = ["Hello, who are you?", "Tell me about the terminal.", "And about sessions?"]


def reply(engine, messages, settings=GREEDY):
    events = list(engine.generate(messages, settings))
    assert isinstance(events[-1], ReplyDone) and events[-1].stats.error is None
    return "".join(e.text for e in events if isinstance(e, TextChunk)), events[-1].stats


def converse(engine, *, reuse: bool, system: str = "You are a helpful assistant."):
    """Three turns; without reuse the cache is dropped before each, as transformers would."""
    messages = [Message("system", system)]
    answers, stats = [], []
    for question in QUESTIONS:
        if not reuse:
            engine.cache.reset()
        messages.append(Message("user", question))
        text, stat = reply(engine, messages)
        messages.append(Message("assistant", text))
        answers.append(text)
        stats.append(stat)
    return messages, answers, stats


@pytest.mark.parametrize("kind", ["qwen2", "llama", "remote"])
def test_greedy_output_with_reuse_equals_output_without(tiny_engine, kind) -> None:
    engine = tiny_engine(kind)
    _, without, cold = converse(engine, reuse=False)
    _, with_reuse, warm = converse(engine, reuse=True)
    assert with_reuse == without
    assert all(s.reused_tokens == 0 for s in cold)
    # Turn 2 and 3 reuse everything up to the previous reply's last token.
    assert warm[1].reused_tokens > warm[0].prompt_tokens
    assert warm[2].reused_tokens > warm[1].prompt_tokens


def test_regenerate_edit_and_system_change_recompute_only_what_changed(tiny_engine) -> None:
    engine = tiny_engine("qwen2")
    engine.cache.reset()
    messages, answers, _ = converse(engine, reuse=True)
    # Regenerate the last answer: same prompt as turn 3, the cache holds more than that.
    again, stats = reply(engine, messages[:-1])
    assert again == answers[-1]
    assert 0 < stats.reused_tokens < stats.prompt_tokens
    # Edit the first question: only the system prompt's tokens can be reused.
    edited = [messages[0], Message("user", "Something else entirely?")]
    text, stats = reply(engine, edited)
    engine.cache.reset()
    assert reply(engine, edited)[0] == text
    assert stats.reused_tokens < engine.count_tokens(messages[:1])
    # A new system prompt changes the very first tokens' meaning: nothing is reused
    # beyond the shared "<|im_start|>system\n" prefix.
    _, changed, stats = converse(engine, reuse=True, system="Answer in French.")
    _, fresh, _ = converse(engine, reuse=False, system="Answer in French.")
    assert changed == fresh


def test_trimmed_history_is_recomputed_correctly(tiny_engine) -> None:
    engine = tiny_engine("llama")
    engine.cache.reset()
    messages = [Message("system", "Be brief.")]
    for i in range(40):  # long enough that the oldest turns get dropped
        messages += [
            Message("user", f"Question {i}: " + "tell me more " * 12),
            Message("assistant", f"Answer {i}: " + "here is more " * 12),
        ]
    messages.append(Message("user", "Last question?"))
    warm_text, warm = reply(engine, messages)
    engine.cache.reset()
    cold_text, cold = reply(engine, messages)
    assert warm.dropped_turns == cold.dropped_turns > 0
    assert warm_text == cold_text


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_a_long_new_turn_on_top_of_the_cache_fits(tiny_engine, kind) -> None:
    """bigdl preallocates 256 spare positions and checks room for one token only: a new
    turn longer than that, appended to a cached conversation, must still work and agree
    with a cold run."""
    engine = tiny_engine(kind)
    engine.cache.reset()
    messages = [Message("system", "Be brief."), Message("user", "Hello!")]
    first, _ = reply(engine, messages)
    messages += [Message("assistant", first), Message("user", "tell me more " * 150)]
    warm_text, warm = reply(engine, messages)
    assert warm.reused_tokens > 0 and warm.prompt_tokens - warm.reused_tokens > 300
    engine.cache.reset()
    assert reply(engine, messages)[0] == warm_text
