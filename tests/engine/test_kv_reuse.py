"""KV-cache reuse across turns: the next turn feeds only new tokens, and answers the same.

"The same" is checked on logits, within the kernels' rounding (tests/engine/teacher_forcing.py):
every reply generated on a reused cache is recomputed position by position from an empty one.
"""

from __future__ import annotations

import pytest

from qwen_tui.conversation import GenerationSettings, Message
from qwen_tui.engine.base import ReplyDone
from tests.engine.teacher_forcing import Trace, assert_matches_cold, traced_reply

pytestmark = pytest.mark.kernels

QUESTIONS = ["Hello, who are you?", "Tell me about the terminal.", "And about sessions?"]


def answer(engine, messages: list[Message], max_new_tokens: int = 12) -> Trace:
    """A greedy reply on the engine's cache as it stands, checked against a cold recompute.

    Only what changed is recomputed: the cache is reused up to the first token that differs
    (at least one prompt token is always fed, for the first reply token's logits).
    """
    prompt = engine.format.encode(messages)
    cached = list(engine.cache.ids)
    trace = traced_reply(engine, prompt, max_new_tokens, engine.prefill_chunk)
    assert trace.reused == min(shared_prefix(cached, prompt), len(prompt) - 1)
    assert_matches_cold(engine, trace)
    return trace


def shared_prefix(a: list[int], b: list[int]) -> int:
    length = 0
    while length < min(len(a), len(b)) and a[length] == b[length]:
        length += 1
    return length


def text(engine, trace: Trace) -> str:
    return engine.tokenizer.decode(trace.tokens, skip_special_tokens=True)


def converse(engine, system: str = "You are a helpful assistant.") -> list[Trace]:
    """Three turns on one cache, each appended to the conversation as the app would."""
    messages = [Message("system", system)]
    traces = []
    for question in QUESTIONS:
        messages.append(Message("user", question))
        traces.append(answer(engine, messages))
        messages.append(Message("assistant", text(engine, traces[-1])))
    return traces


@pytest.mark.parametrize("kind", ["qwen2", "llama", "remote"])
def test_turns_on_a_reused_cache_answer_like_a_cold_run(tiny_engine, kind) -> None:
    engine = tiny_engine(kind)
    engine.cache.reset()
    turns = converse(engine)
    assert turns[0].reused == 0
    # Turn 2 and 3 reuse everything up to the previous reply's last token.
    assert turns[1].reused > len(turns[0].prompt)
    assert turns[2].reused > len(turns[1].prompt)


@pytest.mark.parametrize("kind", ["qwen2", "remote"])
def test_the_engine_reports_what_it_reused(tiny_engine, kind) -> None:
    engine = tiny_engine(kind)
    settings = GenerationSettings(temperature=0, max_new_tokens=4, repetition_penalty=1.0)
    messages = [Message("system", "Be brief."), Message("user", "Hello!")]
    engine.cache.reset()
    cold = list(engine.generate(messages, settings))[-1]
    warm = list(engine.generate(messages, settings))[-1]
    assert isinstance(cold, ReplyDone) and isinstance(warm, ReplyDone)
    assert cold.stats.reused_tokens == 0
    # The same prompt again: all of it but the last token comes from the cache.
    assert warm.stats.reused_tokens == warm.stats.prompt_tokens - 1


def test_regenerate_edit_and_system_change_recompute_only_what_changed(tiny_engine) -> None:
    engine = tiny_engine("qwen2")
    engine.cache.reset()
    turns = converse(engine)
    messages = [Message("system", "You are a helpful assistant.")]
    for question, turn in zip(QUESTIONS, turns, strict=True):
        messages += [Message("user", question), Message("assistant", text(engine, turn))]
    # Regenerate the last answer: same prompt as turn 3, the cache holds more than that.
    again = answer(engine, messages[:-1])
    assert again.reused == len(again.prompt) - 1
    # Edit the first question: at most the system turn's tokens are reused.
    edited = answer(engine, [messages[0], Message("user", "Something else entirely?")])
    assert 0 < edited.reused < len(engine.format.encode(messages[:2])) - 2
    # A new system prompt changes the very first tokens' meaning: nothing is reused
    # beyond the shared "<|im_start|>system\n" prefix.
    changed = converse(engine, system="Answer in French.")
    assert 0 < changed[0].reused <= len(engine.format.encode([Message("system", "")]))


def test_trimmed_history_is_recomputed_correctly(tiny_engine) -> None:
    from qwen_tui.engine.prompt import fit_to_context

    engine = tiny_engine("llama")
    messages = [Message("system", "Be brief.")]
    for i in range(40):  # long enough that the oldest turns get dropped
        messages += [
            Message("user", f"Question {i}: " + "tell me more " * 12),
            Message("assistant", f"Answer {i}: " + "here is more " * 12),
        ]
    messages.append(Message("user", "Last question?"))
    fitted = fit_to_context(messages, engine.format, engine.info.context_length, 12)
    assert fitted.dropped_turns > 0
    engine.cache.reset()
    # The whole untrimmed prefix is in the cache, as after a long chat: trimming changes
    # the prompt right after the system turn, so the cache is cropped there.
    untrimmed = engine.format.encode(messages[:-1])[: engine.info.context_length - 64]
    traced_reply(engine, untrimmed, 1, engine.prefill_chunk)
    trace = traced_reply(engine, fitted.ids, 12, engine.prefill_chunk)
    assert 0 < trace.reused == shared_prefix(untrimmed, fitted.ids) < len(fitted.ids) // 2
    assert_matches_cold(engine, trace)


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_a_long_new_turn_on_top_of_the_cache_fits(tiny_engine, kind) -> None:
    """bigdl preallocates 256 spare positions and checks room for one token only: a new
    turn longer than that, appended to a cached conversation, must still work and agree
    with a cold run."""
    engine = tiny_engine(kind)
    engine.cache.reset()
    messages = [Message("system", "Be brief."), Message("user", "Hello!")]
    first = answer(engine, messages)
    messages += [Message("assistant", text(engine, first)), Message("user", "tell me more " * 150)]
    warm = answer(engine, messages)
    assert warm.reused > 0 and len(warm.prompt) - warm.reused > 300
