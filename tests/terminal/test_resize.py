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
