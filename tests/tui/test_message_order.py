"""The screen shows a session's messages in the file's order, also after new turns and after
older pages are loaded on scroll."""

from __future__ import annotations

from qwen_tui.conversation import Message, Session
from qwen_tui.store import SessionStore
from tests.tui.conftest import press_nowait, settle, wait_for
from tests.tui.fake_engine import FakeEngine


def shown_in_order(app) -> list[str]:
    """Message texts top to bottom as laid out on screen (by their y position)."""
    views = app.chat_screen.messages_view.views
    return [v.message.content for v in sorted(views, key=lambda v: v.virtual_region.y)]


def expected_tail(app) -> list[str]:
    messages = app.chat_screen.session.messages
    return [m.content for m in messages[-len(app.chat_screen.messages_view.views) :]]


async def test_new_turns_and_older_pages_follow_the_files_order(make_app, paths):
    session = Session(title="long")
    for turn in range(12):
        session.messages += [Message("user", f"question {turn}"), Message("assistant", f"a{turn}")]
    SessionStore(paths.sessions_dir).save(session)
    app = make_app(FakeEngine("the newest answer"), session_id=session.id)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press(*"newest question")
        await press_nowait(app, "enter")
        await wait_for(pilot, lambda: len(app.chat_screen.session.messages) == 26)
        await settle(app, pilot)
        shown = shown_in_order(app)
        assert shown[-2:] == ["newest question", "the newest answer"]
        assert shown == expected_tail(app)
        message_list = app.chat_screen.messages_view
        while message_list._first_shown > 0:  # what scrolling to the top does, page by page
            await message_list.load_older()
            await pilot.pause()
        assert shown_in_order(app) == [m.content for m in app.chat_screen.session.messages]
