"""`qwen-tui ask --session` on a session with branches: it continues the active path, sends
the model that path only, and keeps the other branches in the file."""

from __future__ import annotations

import json

from qwen_tui.conversation import Message, Session
from qwen_tui.store import SessionStore
from tests.cli import test_commands

tiny_home = test_commands.tiny_home  # the fixture: a tiny real model installed

LONG_BRANCH = "an old reply that was regenerated " * 60


def test_ask_continues_the_active_branch_and_keeps_the_others(tiny_home) -> None:
    store = SessionStore(tiny_home.sessions_dir)
    session = Session(title="branched")
    session.add("user", "Hello")
    session.add("assistant", "Hi, shown.")
    session.branches.append(
        Message("assistant", LONG_BRANCH, parent=session.messages[0].id, created=1.0)
    )
    store.save(session)

    result = test_commands.qwen_tui(
        "ask", "--model", "tiny-qwen2", "--session", session.id, "--max-tokens", "3", "Next?"
    )
    assert result.returncode == 0, result.stderr
    again = store.load(session.id)
    assert [m.content for m in again.messages[:3]] == ["Hello", "Hi, shown.", "Next?"]
    assert [m.content for m in again.branches] == [LONG_BRANCH]
    data = json.loads(store.path_for(session.id).read_text())
    assert data["schema_version"] == 2
    assert data["branches"][0]["parent"] == data["messages"][0]["id"]
    # The model read the active path only: the long branch (over 300 tokens) is not in it.
    assert again.messages[3].stats.prompt_tokens < 100
