"""Untrusted text is shown, never interpreted; big sessions open fast; imports stay light."""

from __future__ import annotations

import subprocess
import sys

import pytest

from qwen_tui.conversation import Message, Session
from qwen_tui.store import SessionStore
from qwen_tui.visible_text import one_line, visible_text
from qwen_tui.widgets.message_list import MessageList
from qwen_tui.widgets.message_view import MessageView
from tests.tui.conftest import press_nowait, screen_text, settle, wait_for
from tests.tui.fake_engine import FakeEngine

OSC52 = "\x1b]52;c;SGVsbG8=\x07"  # would write "Hello" into the terminal's clipboard
HOSTILE = f"{OSC52}\x1b[31mred\x9b2J [bold red]x[/] [link=http://x]y[/link]"


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("\x1b[31mred", "␛[31mred"),
        (OSC52, "␛]52;c;SGVsbG8=␇"),
        ("a\x9bb", "a\\x9bb"),
        ("tab\tand\nnewline", "tab\tand\nnewline"),
        ("dos\r\nline", "dos\nline"),
        ("bare\rreturn", "bare\nreturn"),  # terminals paste line breaks as lone CRs
        ("del\x7f", "del␡"),
        ("[bold red]x[/]", "[bold red]x[/]"),
    ],
)
def test_visible_text_makes_controls_visible_and_keeps_the_rest(raw, shown):
    assert visible_text(raw) == shown


def test_one_line_flattens():
    assert one_line(" a\n b\t\x1b ") == "a b ␛"


def _no_raw_controls(text: str) -> bool:
    return not any(c in text for c in "\x1b\x07\x9b")


async def test_hostile_model_output_and_titles_are_shown_literally(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    title = "[b]x[/b]\x1b[31m[link=u]y\x07"  # short: the sidebar row is narrow
    store.save(Session(title=title, messages=[Message("user", "x")]))
    app = make_app(FakeEngine(HOSTILE))
    async with app.run_test(size=(160, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press(*"hi")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        reply = app.chat_screen.query(MessageView).last()
        assert reply.message.content == HOSTILE  # kept as the model said it, on disk too
        assert _no_raw_controls(reply.body.source)
        text = screen_text(app)
        assert _no_raw_controls(text)
        # markup is text: in the Markdown reply and in the sidebar title
        assert "[bold red]x[/] [link=http://x]y[/link]" in text
        assert "[b]x[/b]␛[31m[link=u]y␇" in text
        assert "␛]52;c;SGVsbG8=␇" in text and "␛[31mred" in text
        # the terminal never receives the escape: nothing in what the driver wrote
        # would set the clipboard (OSC 52 comes only from copy_to_clipboard)
        assert app.clipboard == ""


async def test_notifications_do_not_interpret_markup(make_app):
    app = make_app(FakeEngine("x", fail_with="bad [bold]thing[/bold] \x1b[2J", fail_after=0))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press(*"hi")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        text = screen_text(app)
        assert "bad [bold]thing[/bold] ␛[2J" in text
        assert _no_raw_controls(text)


def make_long_session(count: int) -> Session:
    session = Session(title="long one")
    for index in range(count):
        role = "user" if index % 2 == 0 else "assistant"
        body = f"message {index} with `code` and **bold**\n\n- a list item\n- another"
        session.messages.append(Message(role, body))
    return session


async def test_older_messages_are_mounted_when_the_top_is_reached(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    session = make_long_session(1000)
    store.save(session)
    app = make_app(FakeEngine(), session_id=session.id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        messages = app.chat_screen.query_one(MessageList)
        shown = len(messages.views)
        assert shown < 30, "only the last messages are mounted"
        assert messages.views[-1].message.content.startswith("message 999")
        older = str(app.chat_screen.query_one("#older-messages").render())
        assert f"{1000 - shown} earlier messages" in older
        # reaching the top mounts the page before, and keeps the view where it was
        messages.focus()
        await pilot.press("home")
        await wait_for(pilot, lambda: len(messages.views) == shown + MessageList.PAGE)
        await settle(app, pilot)
        first = messages.views[0].message.content
        assert first.startswith(f"message {1000 - shown - MessageList.PAGE} ")
        assert messages.scroll_y > 0, "the view should stay on the message that was at the top"


async def test_scrolling_up_is_not_yanked_back_by_the_stream(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    session = make_long_session(20)
    store.save(session)
    engine = FakeEngine(" ".join(["word"] * 300), delay=0.01)
    app = make_app(engine, session_id=session.id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press(*"go")
        await press_nowait(app, "enter")
        await wait_for(pilot, engine.started.is_set)
        messages = app.chat_screen.query_one(MessageList)
        await wait_for(pilot, lambda: messages.scroll_y >= messages.max_scroll_y - 1)
        messages.scroll_to(y=5, animate=False)  # the user scrolls up to read
        messages.release_anchor()
        await pilot.pause(0.3)
        assert app.chat_screen.generating
        assert messages.scroll_y == 5
        await press_nowait(app, "escape")
        await settle(app, pilot)


def test_importing_the_app_does_not_import_torch():
    code = "import sys, qwen_tui.app; print('torch' in sys.modules, 'transformers' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False"]


async def test_short_messages_fill_the_screen(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    session = Session(title="chatty")
    session.messages = [Message("user" if i % 2 == 0 else "assistant", f"m{i}") for i in range(200)]
    store.save(session)
    app = make_app(FakeEngine(), session_id=session.id)
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        messages = app.chat_screen.query_one(MessageList)
        await wait_for(pilot, lambda: messages.virtual_size.height >= messages.size.height)
        assert MessageList.PAGE < len(messages.views) < 200
