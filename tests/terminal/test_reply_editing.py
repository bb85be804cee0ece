"""Edit the last answer and continue it, in the real app on an 80x24 pty: keys as bytes,
the screen as a terminal shows it, the session file as saved."""

from __future__ import annotations

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.terminal.conftest import Launch
from tests.terminal.fake_app import WORDS_ENV, reply_text
from tests.terminal.tui_process import wait_for_session

WORDS = 4
REPLY = reply_text(WORDS)  # "word0 word1 word2 word3"


def test_edit_the_last_answer_then_continue_it(fake_home: Paths, launch: Launch, monkeypatch):
    monkeypatch.setenv(WORDS_ENV, str(WORDS))
    tui = launch()
    tui.wait_drawn()
    tui.type("Tell me a story\r")
    tui.wait_for_screen(REPLY)
    store = SessionStore(fake_home.sessions_dir)
    [summary] = store.list()

    tui.press("f5")
    tui.wait_for_screen(lambda text: "Edit the answer" in text and "Save and continue" in text)
    tui.press(*["backspace"] * len("word3"))
    tui.type_slowly("and then")
    tui.press("ctrl+s")
    edited = "word0 word1 word2 and then"
    tui.wait_for_screen(lambda text: edited in text and "Edit the answer" not in text)
    wait_for_session(store, summary.id, lambda s: s.messages[-1].content == edited, tui)

    tui.press("ctrl+g")
    continued = edited + REPLY  # the fake model's words, right after the text
    screen = tui.wait_for_screen("and thenword0 word1 word2 word3")
    assert screen.count("Assistant") == 1, "one answer, continued: no new turn"
    session = wait_for_session(
        store, summary.id, lambda s: s.messages[-1].content == continued, tui
    )
    assert [m.role for m in session.messages] == ["user", "assistant"]
    reply = session.messages[-1]
    assert not reply.incomplete and reply.stats is not None and reply.stats.generated_tokens == 4
    tui.press("ctrl+q")
    assert tui.finish(timeout=30) == 0
