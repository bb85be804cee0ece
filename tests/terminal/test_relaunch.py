"""Start where the user left off: relaunching reopens the session last shown, with what was
left typed in the prompt; `--new` starts fresh; an unknown `--session` exits 2 before drawing.
"""

from __future__ import annotations

import tomllib

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.terminal.conftest import Launch
from tests.terminal.fake_app import DELAY_ENV, WORDS_ENV

REPLIED = "word11"
ALT_SCREEN = b"\x1b[?1049h"
"""What Textual sends first when it takes over the terminal."""


def test_relaunch_reopens_the_last_session_and_its_draft(fake_home: Paths, launch: Launch):
    tui = launch()
    tui.wait_drawn()
    tui.type("Where were we?\r")
    tui.wait_for_screen(REPLIED)
    tui.type_slowly("half a thought")
    tui.press("ctrl+q")
    assert tui.finish(timeout=30) == 0
    config_before = fake_home.config_file.exists()

    again = launch()
    screen = again.wait_for_screen(REPLIED)  # the conversation is back, without a click
    assert "Where were we?" in screen.split("System:")[-1]
    again.wait_for_screen("half a thought")  # and the unsent text is in the prompt
    again.press("enter")  # it is a prompt like any other
    again.wait_for_screen(lambda text: text.count(REPLIED) == 2)
    [summary] = SessionStore(fake_home.sessions_dir).list()
    saved = SessionStore(fake_home.sessions_dir).load(summary.id)
    assert [m.content for m in saved.messages if m.role == "user"] == [
        "Where were we?",
        "half a thought",
    ]
    again.press("ctrl+q")
    assert again.finish(timeout=30) == 0
    state = tomllib.loads(fake_home.state_file.read_text())
    assert state["last_session"] == summary.id and state["draft"] == ""
    assert fake_home.config_file.exists() == config_before  # config.toml is never written


def test_new_starts_fresh(fake_home: Paths, launch: Launch):
    tui = launch()
    tui.wait_drawn()
    tui.type("An old conversation\r")
    tui.wait_for_screen(REPLIED)
    tui.type_slowly("a draft")
    tui.press("ctrl+q")
    assert tui.finish(timeout=30) == 0

    fresh = launch("--new")
    fresh.wait_drawn()
    fresh.wait_for_screen("An old conversation")  # still listed in the sidebar
    screen = fresh.wait_for_screen("Message (enter sends")  # the prompt is empty
    chat = screen.split("System:")[-1]
    assert "An old conversation" not in chat and REPLIED not in chat
    assert "a draft" not in screen
    fresh.press("ctrl+q")
    assert fresh.finish(timeout=30) == 0


def test_an_unknown_session_exits_2_before_drawing(fake_home: Paths, launch: Launch):
    tui = launch("--session", "nope")
    assert tui.finish(timeout=30) == 2
    output = bytes(tui.output)
    assert b"no session nope" in output
    assert ALT_SCREEN not in output  # nothing was drawn


def test_a_hang_up_mid_reply_then_relaunch_brings_back_the_partial_reply(
    fake_home: Paths, launch: Launch, monkeypatch
):
    monkeypatch.setenv(WORDS_ENV, "5000")
    monkeypatch.setenv(DELAY_ENV, "0.01")
    tui = launch(controlling_terminal=True)
    tui.wait_drawn()
    tui.type("Tell me a long story.\r")
    tui.wait_for_screen("word30")
    tui.hang_up_terminal()  # tmux kill-session, an SSH drop
    assert tui.finish(timeout=10) == 130

    monkeypatch.setenv(WORDS_ENV, "12")
    again = launch()
    screen = again.wait_for_screen("■ stopped")
    assert "Tell me a long story." in screen and "word30" in screen
    again.press("ctrl+q")
    assert again.finish(timeout=30) == 0
