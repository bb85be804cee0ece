"""The engine against real tiny models quantized with bigdl: stream, stats, cancel, errors."""

from __future__ import annotations

import threading
import time

import pytest

from qwen_tui.conversation import GenerationSettings, Message, StopReason
from qwen_tui.engine.base import ReplyDone, TextChunk
from qwen_tui.engine.prompt import QwenV1Format

GREEDY = GenerationSettings(temperature=0, max_new_tokens=16, repetition_penalty=1.0)


def chat(text: str = "Hello, how are you today?") -> list[Message]:
    return [Message("system", "You are a helpful assistant."), Message("user", text)]


def run(engine, messages, settings=GREEDY, cancel=None):
    events = list(engine.generate(messages, settings, cancel))
    assert isinstance(events[-1], ReplyDone)
    assert all(isinstance(e, TextChunk) for e in events[:-1])
    return "".join(e.text for e in events[:-1]), events[-1].stats


@pytest.mark.kernels
@pytest.mark.parametrize("kind", ["qwen2", "llama", "remote"])
def test_streams_text_and_reports_stats(tiny_engine, kind) -> None:
    engine = tiny_engine(kind)
    engine.cache.reset()
    text, stats = run(engine, chat())
    assert stats.error is None
    assert stats.prompt_tokens == engine.count_tokens(chat())
    assert 1 <= stats.generated_tokens <= 16
    assert stats.ttft_s is not None and stats.ttft_s > 0
    if stats.generated_tokens == 16:
        assert stats.stop_reason is StopReason.MAX_TOKENS
    # Greedy is deterministic: the same computation (cold both times, so the very same
    # kernel calls) gives the same text. Warm against cold is tests/engine/test_kv_reuse.py.
    engine.cache.reset()
    assert run(engine, chat())[0] == text
    assert engine.info.low_bit == "sym_int4"
    assert engine.info.kernel  # which bigdl library does the math is always known


def test_remote_code_model_uses_qwen_v1_chatml(tiny_engine) -> None:
    engine = tiny_engine("remote")
    assert isinstance(engine.format, QwenV1Format)
    assert engine.info.arch == "TinyQwenForCausalLM"


def test_sampling_with_a_seed_is_reproducible(tiny_engine) -> None:
    engine = tiny_engine("qwen2")
    sampled = GenerationSettings(temperature=1.0, top_p=0.95, top_k=50, seed=7, max_new_tokens=12)
    engine.cache.reset()
    first = run(engine, chat(), sampled)[0]
    engine.cache.reset()
    assert run(engine, chat(), sampled)[0] == first


def test_cancel_ends_the_stream_quickly_and_keeps_the_partial_text(tiny_engine) -> None:
    engine = tiny_engine("qwen2")
    cancel = threading.Event()
    long_reply = GenerationSettings(temperature=0, max_new_tokens=2000, repetition_penalty=1.0)
    chunks: list[str] = []
    stopped_at = None
    for event in engine.generate(chat(), long_reply, cancel):
        if isinstance(event, TextChunk):
            chunks.append(event.text)
            if len(chunks) == 3:
                cancel.set()
                stopped_at = time.perf_counter()
        else:
            done = event
    assert stopped_at is not None and time.perf_counter() - stopped_at < 1.0
    assert done.stats.stop_reason is StopReason.STOPPED
    assert 3 <= done.stats.generated_tokens < 2000
    assert "".join(chunks)


def test_after_a_stop_wait_idle_waits_for_the_thread_to_leave_the_model(tiny_engine) -> None:
    """generate() returns at a stop before its thread has finished the step it computes; a
    process exiting then aborts (tests/terminal/test_quit_mid_reply.py). wait_idle is what
    the app waits on before it exits."""
    engine = tiny_engine("qwen2")
    cancel = threading.Event()
    long_reply = GenerationSettings(temperature=0, max_new_tokens=2000, repetition_penalty=1.0)
    threads_before = set(threading.enumerate())
    events = []
    for event in engine.generate(chat(), long_reply, cancel):
        events.append(event)
        cancel.set()  # at the first piece of text
    assert isinstance(events[-1], ReplyDone)
    computing = [t for t in set(threading.enumerate()) - threads_before if "generate" in t.name]
    assert engine.wait_idle(10)
    assert not any(thread.is_alive() for thread in computing)
    assert engine.wait_idle(0)  # nothing left to wait for


def test_an_error_inside_generate_reaches_the_consumer_instead_of_hanging(tiny_engine) -> None:
    engine = tiny_engine("qwen2")
    # A negative penalty makes transformers raise inside generate(), in the worker thread.
    broken = GenerationSettings(temperature=0, repetition_penalty=-1.0, max_new_tokens=8)
    started = time.perf_counter()
    _text, stats = run(engine, chat(), broken)
    assert time.perf_counter() - started < 10
    assert stats.stop_reason is StopReason.ERROR
    assert "penalty" in (stats.error or "")
    # The engine is still usable afterwards.
    assert run(engine, chat())[1].error is None


def test_long_history_is_trimmed_and_reported(tiny_engine) -> None:
    engine = tiny_engine("llama")
    history = [Message("system", "You are a helpful assistant.")]
    for i in range(60):
        history += [
            Message("user", f"Tell me about item {i}. " * 8),
            Message("assistant", f"Item {i} is a thing. " * 8),
        ]
    history.append(Message("user", "And the last one?"))
    assert engine.count_tokens(history) > engine.info.context_length
    _text, stats = run(engine, history)
    assert stats.dropped_turns > 0
    assert stats.prompt_tokens + GREEDY.max_new_tokens <= engine.info.context_length


def test_a_message_longer_than_the_context_is_an_error_not_a_hang(tiny_engine) -> None:
    engine = tiny_engine("qwen2")
    _text, stats = run(engine, chat("word " * 5000))
    assert stats.stop_reason is StopReason.ERROR
    assert "context window" in (stats.error or "")
