"""Conversation branches at a real 80x24 terminal: regenerate twice, walk the three replies
with the keys a terminal sends over SSH (F8/F9 and alt+arrows as xterm encodes them), then
fork the session."""

from __future__ import annotations

import os
from collections.abc import Callable

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.terminal.conftest import Launch
from tests.terminal.fake_app import NUMBERED_ENV

LAST_WORD = "word11"


def showing(reply: int, of: int = 3) -> Callable[[str], bool]:
    """The screen shows reply `reply` (and no other) under its marker."""

    def check(text: str) -> bool:
        others = [n for n in range(1, of + 1) if n != reply]
        return (
            f"‹ {reply}/{of} ›" in text
            and f"reply{reply} " in text
            and not any(f"reply{n} " in text for n in others)
        )

    return check


def test_regenerate_twice_walk_the_three_replies_and_fork(fake_home: Paths, launch: Launch) -> None:
    tui = launch(env={**os.environ, NUMBERED_ENV: "1"})
    tui.wait_drawn()
    tui.type("Tell me a story\r")
    tui.wait_for_screen(lambda text: "reply1 " in text and LAST_WORD in text)
    for regenerated in (2, 3):
        tui.press("ctrl+r")
        done = showing(regenerated, of=regenerated)
        tui.wait_for_screen(lambda text, done=done: done(text) and LAST_WORD in text)
    for key, reply in (("f8", 2), ("alt+left", 1), ("f9", 2), ("alt+right", 3), ("f8", 2)):
        tui.press(key)
        tui.wait_for_screen(showing(reply))

    store = SessionStore(fake_home.sessions_dir)
    [summary] = store.list()
    walked = store.load(summary.id)
    assert [m.content.split()[0] for m in walked.messages] == ["Tell", "reply2"]
    assert sorted(m.content.split()[0] for m in walked.branches) == ["reply1", "reply3"]

    tui.press("f4")
    tui.wait_for_screen("Forked")
    forked = next(s for s in store.list() if s.id != summary.id)
    assert forked.forked_from == summary.id and forked.message_count == 2
    # The fork holds one path, no branches. Waited for as a whole: a frame read while it is
    # still reaching the terminal can show the fork's title over the old session's rows.
    tui.wait_for_screen(lambda text: "⑂ fork" in text and "reply2 " in text and "‹" not in text)
    tui.press("ctrl+q")
    assert tui.finish(timeout=30) == 0
    assert [m.content.split()[0] for m in store.load(forked.id).messages] == ["Tell", "reply2"]
