"""The terminal window changes size under the app: it redraws for the new size, and what was
typed stays."""

from __future__ import annotations

from qwen_tui.paths import Paths
from tests.terminal.conftest import Launch

SIDEBAR = "search sessions"


def test_the_app_follows_the_terminal_through_resizes(fake_home: Paths, launch: Launch):
    tui = launch()
    tui.wait_drawn()
    tui.type_slowly("still here")
    tui.resize(20, 50)  # narrower than the sidebar needs: it steps aside
    small = tui.wait_for_screen(lambda screen: SIDEBAR not in screen and "still here" in screen)
    assert len(small.splitlines()) <= 20
    tui.resize(50, 200)
    tui.wait_for_screen(  # redrawn at the new size: the sidebar is back, the status bar spans it
        lambda screen: (
            SIDEBAR in screen
            and "still here" in screen
            and any(len(row) > 150 for row in screen.splitlines())
        )
    )
    tui.press("enter")
    tui.wait_for_screen("word11")
    tui.press("ctrl+q")
    assert tui.finish(timeout=30) == 0


def test_the_prompt_hint_names_f1_help_at_every_size(fake_home: Paths, launch: Launch):
    tui = launch()  # 80x24, with the sidebar: the prompt is about 50 columns wide
    tui.wait_drawn()
    tui.wait_for_screen("Message (enter sends, ctrl+j new line, f1 help)")
    tui.resize(20, 50)  # no sidebar, a prompt narrower than the longer hints
    tui.wait_for_screen("Message (enter sends, f1 help)")
    tui.resize(20, 30)
    tui.wait_for_screen("Message (f1 help)")
    tui.resize(50, 200)  # room for every key
    tui.wait_for_screen("ctrl+p commands, f1 help)")
    tui.press("ctrl+q")
    assert tui.finish(timeout=30) == 0
