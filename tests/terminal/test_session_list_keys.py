"""Keys typed at a real terminal never act on the wrong thing: a sentence typed while the
session list has focus lands in the prompt (no session deleted or renamed), and editing keys
typed in one burst (fast typing over SSH) apply in the order they were typed.
"""

from __future__ import annotations

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.terminal.conftest import Launch

REPLIED = "word11"
SENTENCE = "today dry Germany"
"""`d` was delete, `y` confirmed it, `r` was rename: once each deleted or renamed a session."""


def test_a_sentence_typed_with_the_list_focused_goes_to_the_prompt(
    fake_home: Paths, launch: Launch
) -> None:
    tui = launch()
    tui.wait_drawn()
    tui.type("Keep this conversation\r")
    tui.wait_for_screen(REPLIED)
    store = SessionStore(fake_home.sessions_dir)
    [before] = store.list()

    tui.press("tab", "tab", "down")  # the sidebar's search box, then its list
    tui.type_slowly(SENTENCE[:6])
    tui.type(SENTENCE[6:])  # the rest in one burst
    screen = tui.wait_for_screen(SENTENCE)
    assert "Delete" not in screen and "Rename" not in screen  # no dialog opened

    [after] = store.list()
    assert (after.id, after.title) == (before.id, before.title)
    tui.press("enter")  # and it is the prompt's text: it is sent as a message
    tui.wait_for_screen(lambda text: text.count(REPLIED) == 2)
    users = [m.content for m in store.load(before.id).messages if m.role == "user"]
    assert users == ["Keep this conversation", SENTENCE]
    tui.press("ctrl+q")
    assert tui.finish(timeout=30) == 0


def test_backspaces_in_a_burst_apply_in_order_in_the_prompt(
    fake_home: Paths, launch: Launch
) -> None:
    tui = launch()
    tui.wait_drawn()
    # "r", backspace, "Red", two backspaces, "d", enter, as one read: once this became "rRe"
    # and the like (backspace ran after the letters that followed it).
    tui.write(b"r\x7fRed\x7f\x7fd\r")
    tui.wait_for_screen(REPLIED)
    store = SessionStore(fake_home.sessions_dir)
    [summary] = store.list()
    assert [m.content for m in store.load(summary.id).messages if m.role == "user"] == ["Rd"]
    tui.press("ctrl+q")
    assert tui.finish(timeout=30) == 0
