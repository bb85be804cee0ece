"""KV reuse follows the branch: after switching to a sibling, the engine crops its cache at
the fork point and reuses what the two branches share; the reply agrees with a cold run."""

from __future__ import annotations

import pytest

from qwen_tui import conversation_tree as tree
from qwen_tui.conversation import Session
from tests.engine.test_kv_reuse import answer, shared_prefix, text

pytestmark = pytest.mark.kernels


def reply(engine, session: Session) -> int:
    """Answer the active path on the engine's cache; how many prompt tokens it reused."""
    trace = answer(engine, session.chat_messages())
    session.add("assistant", text(engine, trace))
    return trace.reused


def test_switching_to_a_sibling_reuses_the_cache_up_to_the_fork(tiny_engine) -> None:
    engine = tiny_engine("qwen2")
    engine.cache.reset()
    session = Session(system_prompt="You are a helpful assistant.")
    session.add("user", "Hello, who are you?")
    reply(engine, session)
    session.add("user", "Tell me about the terminal.")
    reply(engine, session)
    shared = engine.format.encode(session.chat_messages()[:3])  # system, hello, its answer
    # Edit the second prompt: a sibling branch, answered on the same cache.
    tree.leave_path(session, session.messages[2])
    session.add("user", "Tell me about sessions instead.")
    reply(engine, session)
    edited = session.messages[2]
    # Back to the first branch and on with it: only what follows the fork is recomputed.
    tree.switch_to(session, tree.siblings(session, edited)[0])
    assert session.messages[2].content == "Tell me about the terminal."
    session.add("user", "And more?")
    cached = list(engine.cache.ids)
    prompt = engine.format.encode(session.chat_messages())
    reused = reply(engine, session)
    assert reused == shared_prefix(cached, prompt)
    # Everything before the forked prompt's text, and nothing of the other branch after it.
    assert len(shared) - 4 <= reused < len(engine.format.encode(session.chat_messages()[:4]))
