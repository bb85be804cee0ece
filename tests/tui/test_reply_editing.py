"""Editing an answer in place and continuing the last one, driven through the keyboard."""

from __future__ import annotations

from qwen_tui.engine.base import CONTINUE_NEEDS_LOCAL
from qwen_tui.screens.reply_editor import ReplyEditor, ReplyText
from tests.tui.conftest import chatting, saved, settle, turns, views, wait_for
from tests.tui.fake_engine import FakeEngine


def told(app, text: str) -> bool:
    return any(text in str(n.message) for n in app._notifications)


async def edit_to(app, pilot, text: str, *keys: str) -> ReplyEditor:
    """Open the editor (f5), replace the text, press `keys` (ctrl+s by default)."""
    await pilot.press("f5")
    await wait_for(pilot, lambda: isinstance(app.screen, ReplyEditor) and app.screen.drawn)
    editor = app.screen
    editor.query_one(ReplyText).load_text(text)
    await pilot.press(*(keys or ("ctrl+s",)))
    await settle(app, pilot)
    return editor


async def test_the_editor_saves_the_answer_and_keeps_the_old_text_as_a_branch(make_app):
    engine = FakeEngine(["First answer.", "Second answer."])
    async with chatting(make_app(engine), "one", "two") as (app, pilot):
        # The focused answer is the one edited; any answer can be.
        views(app)[1].focus()
        await pilot.press("f5")
        await wait_for(pilot, lambda: isinstance(app.screen, ReplyEditor) and app.screen.drawn)
        text = app.screen.query_one(ReplyText)
        assert text.text == "First answer." and text.has_focus
        await pilot.press("end", *" Edited, **bold**.")
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert not isinstance(app.screen, ReplyEditor)
        # The turn after it answered the old text: it went into the branch with it.
        contents = [m["content"] for m in saved(app)["messages"]]
        assert contents == ["one", "First answer. Edited, **bold**."]
        assert [m["content"] for m in saved(app)["branches"]] == [
            "First answer.",
            "two",
            "Second answer.",
        ]
        shown = views(app)
        assert len(shown) == 2 and "Edited, **bold**." in shown[-1].body.source
        assert "‹ 2/2 ›" in str(shown[-1].query_one(".role").render())
        assert len(engine.calls) == 2, "saving an edit generates nothing"
        # Escape, or saving the text unchanged, leaves the answer as it was.
        await edit_to(app, pilot, "thrown away", "escape")
        await edit_to(app, pilot, "First answer. Edited, **bold**.")
        assert len(saved(app)["branches"]) == 3


async def test_continue_appends_to_the_last_answer_as_the_same_turn(make_app):
    engine = FakeEngine(["It was", "and more words."])
    async with chatting(make_app(engine), "tell me") as (app, pilot):
        await edit_to(app, pilot, "Once upon a time")
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        asked, _settings = engine.calls[-1]
        assert [m.role for m in asked] == ["system", "user", "assistant"]
        assert asked[-1].content == "Once upon a time"
        data = saved(app)["messages"]
        assert [m["role"] for m in data] == ["user", "assistant"]
        assert data[-1]["content"] == "Once upon a timeand more words."
        assert data[-1]["incomplete"] is False
        assert len(views(app)) == 2
        assert views(app)[-1].body.source == "Once upon a timeand more words."


async def test_save_and_continue_from_the_editor(make_app):
    engine = FakeEngine(["Hello", " world."])
    async with chatting(make_app(engine), "hello") as (app, pilot):
        await edit_to(app, pilot, "Hello,", "tab", "tab", "enter")  # Save and continue
        await settle(app, pilot)
        assert saved(app)["messages"][-1]["content"] == "Hello, world."
        assert engine.calls[-1][0][-1].content == "Hello,"


async def test_continue_says_why_it_cannot(make_app):
    engine = FakeEngine("Answer.")
    async with chatting(make_app(engine)) as (app, pilot):
        await pilot.press("ctrl+g")
        await pilot.pause()
        assert told(app, "Nothing to continue")
        await turns(pilot, "hello")
        engine.continues_replies = False  # as a remote server's engine
        await pilot.press("ctrl+g")
        await settle(app, pilot)
        assert told(app, CONTINUE_NEEDS_LOCAL)
        assert len(engine.calls) == 1
