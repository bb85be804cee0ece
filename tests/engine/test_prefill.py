"""Long prompts: fed to the model in chunks, stoppable between chunks, same answers."""

from __future__ import annotations

import threading

import pytest

from qwen_tui.conversation import GenerationSettings, Message, StopReason
from qwen_tui.engine.base import ReplyDone, TextChunk
from qwen_tui.engine.decode import KVCache, decode
from tests.engine.teacher_forcing import assert_matches_cold, traced_reply

GREEDY = GenerationSettings(temperature=0, max_new_tokens=10, repetition_penalty=1.0)
LONG = [Message("system", "Be brief."), Message("user", "tell me more about it " * 30)]


def reply(engine, messages, *, chunk: int, cold: bool = True):
    saved = engine.prefill_chunk
    engine.prefill_chunk = chunk
    try:
        if cold:
            engine.cache.reset()
        events = list(engine.generate(messages, GREEDY))
    finally:
        engine.prefill_chunk = saved
    assert isinstance(events[-1], ReplyDone) and events[-1].stats.error is None
    return "".join(e.text for e in events if isinstance(e, TextChunk))


@pytest.mark.kernels
@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_chunked_prefill_answers_like_one_go(tiny_engine, kind) -> None:
    engine = tiny_engine(kind)
    prompt = engine.format.encode(LONG)
    assert len(prompt) > 5 * 16
    engine.cache.reset()
    chunked = traced_reply(engine, prompt, 10, chunk=16)
    assert_matches_cold(engine, chunked)
    # The next turn, chunked on top of the chunked cache, agrees with a cold run too.
    answer = engine.tokenizer.decode(chunked.tokens, skip_special_tokens=True)
    follow_up = [*LONG, Message("assistant", answer), Message("user", "and more " * 25)]
    warm = traced_reply(engine, engine.format.encode(follow_up), 10, chunk=16)
    assert warm.reused > len(prompt)
    assert_matches_cold(engine, warm)


def test_after_a_reply_the_next_turn_finds_room_in_the_cache(tiny_engine, monkeypatch) -> None:
    """Growing the cache (a copy of all of it) happens after a reply, not in the next TTFT."""
    import torch

    from qwen_tui.engine import memory
    from qwen_tui.engine.decode import ROOM_AHEAD

    engine = tiny_engine("qwen2")
    first = reply(engine, LONG, chunk=16)
    keys = engine.cache.past.key_cache[0]
    assert keys.stride(1) // keys.size(3) >= len(engine.cache.ids) + ROOM_AHEAD
    allocations: list[tuple[int, ...]] = []
    allocate = memory.mapped_empty
    monkeypatch.setattr(
        memory, "mapped_empty", lambda *args: allocations.append(args[0]) or allocate(*args)
    )
    turns = [*LONG, Message("assistant", first), Message("user", "Go on.")]
    follow_up = engine.format.encode(turns)
    with torch.inference_mode():
        decode(engine.model, engine.cache, follow_up, GREEDY, 10, [], lambda _t: True,
               prefill_chunk=16)  # fmt: skip
    assert allocations == []


def test_a_first_chunk_is_stored_in_mappings_of_their_own(tiny_engine, monkeypatch) -> None:
    """Kept where they were computed, in the heap, a first chunk's keys and values stayed
    resident after the cache outgrew them (malloc keeps freed blocks of a few MB): +200 MB
    at the peak of a 946-token prompt on the 1.8B model. They go to mappings freed whole."""
    import torch
    from transformers import DynamicCache

    from qwen_tui.engine import memory

    engine = tiny_engine("qwen2")
    mapped: set[int] = set()
    allocate = memory.mapped_empty

    def recorded(*args):
        tensor = allocate(*args)
        mapped.add(tensor.untyped_storage().data_ptr())
        return tensor

    monkeypatch.setattr(memory, "mapped_empty", recorded)
    past = DynamicCache()
    with torch.inference_mode():
        engine.step(engine.format.encode(LONG)[:16], past)
    stored = [t.untyped_storage().data_ptr() for t in (*past.key_cache, *past.value_cache)]
    assert len(stored) == 2 * engine.model.config.num_hidden_layers
    assert set(stored) <= mapped


def test_the_prompts_freed_memory_goes_back_before_the_lm_head(tiny_engine, monkeypatch) -> None:
    """malloc keeps a prompt's freed activations; the LM head's first call (its weights
    paged in from the checkpoint) then stacked on them: the 1.8B model's peak RSS on a
    946-token prompt went from 1796 to 1663 MB with them given back first."""
    from qwen_tui.engine import memory
    from qwen_tui.engine.decode import split_head

    engine = tiny_engine("qwen2")
    events: list[str] = []
    monkeypatch.setattr(memory, "release_free_memory", lambda: events.append("release"))
    _, head = split_head(engine.model)
    hook = head.register_forward_pre_hook(lambda *_: events.append("head"))
    try:
        reply(engine, LONG, chunk=16)
    finally:
        hook.remove()  # the tiny engines are shared by the session's tests
    assert events.index("release") < events.index("head")


@pytest.mark.kernels
def test_stopping_during_prefill_ends_before_the_first_token(tiny_engine) -> None:
    import torch

    engine = tiny_engine("qwen2")
    prompt = engine.format.encode(LONG)
    checks: list[int] = []

    def cancelled() -> bool:
        checks.append(1)
        return len(checks) > 2  # stop after two chunks were computed

    tokens: list[int] = []
    cache = KVCache()
    with torch.inference_mode():
        decode(engine.model, cache, prompt, GREEDY, 10, [], tokens.append, prefill_chunk=16,
               cancelled=cancelled)  # fmt: skip
    assert tokens == []
    assert cache.ids == prompt[:32]
    # What was computed is kept: asking again reuses it and answers as a cold run does.
    engine.cache = cache
    try:
        resumed = traced_reply(engine, prompt, 10, chunk=16)
        assert resumed.reused == 32
        assert_matches_cold(engine, resumed)
    finally:
        engine.cache = KVCache()


def test_a_stopped_long_prompt_reports_stopped_with_no_text(tiny_engine) -> None:
    engine = tiny_engine("llama")
    engine.cache.reset()
    stop = threading.Event()
    stop.set()
    events = list(engine.generate(LONG, GREEDY, stop))
    assert [e for e in events if isinstance(e, TextChunk)] == []
    assert events[-1].stats.stop_reason is StopReason.STOPPED


def test_a_growing_conversation_does_not_copy_its_cache_every_turn(tiny_engine) -> None:
    """The cache buffer at least doubles when it grows, so a chat of many short turns
    copies it a few times, not once per turn (that doubled TTFT by turn 10)."""
    engine = tiny_engine("qwen2")
    engine.cache.reset()
    messages = [Message("system", "Be brief.")]
    capacities = []
    for turn in range(8):
        messages.append(Message("user", f"Question {turn}: tell me more about it."))
        messages.append(Message("assistant", reply(engine, messages, chunk=512, cold=False)))
        keys = engine.cache.past.key_cache[0]
        capacities.append(keys.stride(1) // keys.size(3))
    assert capacities == sorted(capacities)
    assert len(set(capacities)) <= 4, capacities
