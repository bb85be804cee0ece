"""The smaller things a new user met: focus in the settings dialog, editing the last message,
the status bar's numbers, sessions other processes write."""

from __future__ import annotations

import time

from textual.widgets import TextArea

from qwen_tui.conversation import Message, Session
from qwen_tui.screens.settings_dialog import SettingsDialog
from qwen_tui.store import SessionStore
from qwen_tui.widgets.session_sidebar import SessionItem
from tests.tui.conftest import press_nowait, settle, turns, wait_for
from tests.tui.fake_engine import FakeEngine


def listed(app) -> list[str]:
    """Titles of the rows in the sidebar (rows still being mounted included)."""
    return [row.summary.title for row in app.chat_screen.sidebar.query(SessionItem)]


def status(app) -> str:
    return str(app.chat_screen.status.render())


async def test_settings_dialog_opens_with_the_system_prompt_focused(make_app):
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert isinstance(app.screen, SettingsDialog)
        await pilot.press(*" Be brief.")
        prompt = app.screen.query_one("#system-prompt", TextArea)
        assert app.focused is prompt and prompt.text.endswith(" Be brief.")


async def test_emptying_the_prompt_while_editing_still_replaces_the_turn(make_app):
    app = make_app(FakeEngine(["one", "two"]))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await turns(pilot, "helo")
        await pilot.press("up", "ctrl+u")  # the old text gone, still editing
        assert app.chat_screen.prompt.text == ""
        await turns(pilot, "something else")
        messages = [(m.role, m.content) for m in app.chat_screen.session.messages]
        assert messages == [("user", "something else"), ("assistant", "two")]


async def test_escape_leaves_an_edit(make_app):
    app = make_app(FakeEngine(["one", "two"]))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await turns(pilot, "first")
        await pilot.press("up", "escape")
        prompt = app.chat_screen.prompt
        assert prompt.text == "" and not prompt.has_class("-editing")
        await turns(pilot, "second")
        assert [m.content for m in app.chat_screen.session.messages] == [
            "first",
            "one",
            "second",
            "two",
        ]


async def test_status_bar_numbers_follow_the_session_and_the_width(make_app):
    engine = FakeEngine(" ".join(f"w{i}" for i in range(400)), delay=0.01)
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await turns(pilot, "count")
        bar = app.chat_screen.status
        assert bar.context_used and "TTFT" in status(app)
        before = bar.context_used
        await pilot.press(*"again")
        await press_nowait(app, "enter")
        # ctx grows while the reply streams, and RAM stays on an 80-column line
        await wait_for(pilot, lambda: (bar.context_used or 0) > before + 20, timeout=10)
        assert "generating" in status(app) and "RAM" in status(app)
        await press_nowait(app, "escape")
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert "tok/s" not in status(app) and "TTFT" not in status(app)
        bar.context_used = 85025  # a message longer than the window
        assert f"ctx >{bar.context_size}" in status(app)


async def test_sessions_another_process_writes_appear_in_the_list(make_app, paths):
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        outside = Session(title="from the CLI")
        outside.messages.append(Message("user", "hi"))
        outside.updated = time.time()
        SessionStore(paths.sessions_dir).save(outside)  # as `qwen-tui ask --new-session`
        await wait_for(pilot, lambda: "from the CLI" in listed(app), timeout=10)


async def test_a_code_line_wider_than_the_screen_shows_a_scrollbar(make_app):
    from textual.widgets._markdown import MarkdownFence

    long_line = "x = [" + ", ".join(str(i) for i in range(80)) + "]"
    app = make_app(FakeEngine(f"```python\n{long_line}\n```\n\n```\nshort = 1\n```"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await turns(pilot, "code")
        wide, narrow = app.chat_screen.messages_view.views[-1].query(MarkdownFence)
        assert wide.scrollbar_size_horizontal == 1  # rows the scrollbar takes on screen
        assert narrow.scrollbar_size_horizontal == 0


async def test_an_old_qwen_v1_install_says_how_to_convert_it(make_app, paths):
    from dataclasses import replace

    from qwen_tui.model_setup.installed import read_manifest, write_manifest
    from qwen_tui.model_setup.qwen_v1_convert import QWEN_V1_ARCH

    app = make_app(FakeEngine(), models=("qwen-1_8b-chat",))
    folder = paths.models_dir / "qwen-1_8b-chat"
    old = replace(read_manifest(folder), arch=QWEN_V1_ARCH, trust_remote_code=True)
    write_manifest(folder, replace(old, source="Qwen/Qwen-1_8B-Chat"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        warnings = [n for n in app._notifications if n.title == "Old Qwen v1 install"]
        assert len(warnings) == 1 and warnings[0].severity == "warning"
        assert "`qwen-tui setup Qwen/Qwen-1_8B-Chat` converts it" in warnings[0].message
        assert app.model_state == "ready"  # it still chats meanwhile
