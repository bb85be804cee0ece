"""Conversation branches on screen: the `‹ 2/3 ›` marker, walking replies with the branch keys
(the conversation below follows), editing into a branch, and forking a session."""

from __future__ import annotations

from qwen_tui.widgets.message_view import MessageView
from qwen_tui.widgets.session_sidebar import SessionItem
from tests.tui.conftest import chatting, saved, settle, turns, views, wait_for
from tests.tui.fake_engine import FakeEngine


def role_line(view: MessageView) -> str:
    return str(view.query_one(".role").render())


def shown(app) -> list[str]:
    return [v.message.content for v in views(app)]


async def test_regenerating_twice_shows_3_of_3_and_the_keys_walk_the_replies(make_app):
    engine = FakeEngine(["one", "two", "three", "after two"])
    async with chatting(make_app(engine), "question") as (app, pilot):
        for _ in range(2):
            await pilot.press("ctrl+r")
            await settle(app, pilot)
        assert shown(app) == ["question", "three"]
        assert role_line(views(app)[1]).endswith("‹ 3/3 ›")
        assert "‹" not in role_line(views(app)[0])
        await pilot.press("f8")
        await settle(app, pilot)
        assert shown(app) == ["question", "two"] and role_line(views(app)[1]).endswith("‹ 2/3 ›")
        assert saved(app)["messages"][1]["content"] == "two"
        # A turn on the reply shown continues that branch; the model is sent that path.
        await turns(pilot, "more")
        assert shown(app) == ["question", "two", "more", "after two"]
        assert [m.content for m in engine.calls[-1][0]][1:] == ["question", "two", "more"]
        # Walking the replies again brings each one's own continuation (or none).
        await pilot.press("alt+left")
        await settle(app, pilot)
        assert shown(app) == ["question", "one"] and role_line(views(app)[1]).endswith("1/3 ›")
        await pilot.press("f9", "f9")
        await settle(app, pilot)
        assert shown(app) == ["question", "three"]
        await pilot.press("f8")
        await settle(app, pilot)
        assert shown(app) == ["question", "two", "more", "after two"]


async def test_an_edited_prompt_keeps_the_old_one_as_a_sibling(make_app):
    engine = FakeEngine(["first", "second"])
    async with chatting(make_app(engine), "helo") as (app, pilot):
        await pilot.press("up", "backspace", *"lo", "enter")
        await settle(app, pilot)
        assert shown(app) == ["hello", "second"]
        assert role_line(views(app)[0]).endswith("‹ 2/2 ›")
        await pilot.press("f8")
        await settle(app, pilot)
        assert shown(app) == ["helo", "first"]
        assert role_line(views(app)[0]).endswith("‹ 1/2 ›")


async def test_without_siblings_the_keys_say_how_to_make_some(make_app):
    async with chatting(make_app(FakeEngine(["only"])), "q") as (app, pilot):
        await pilot.press("f9")
        await settle(app, pilot)
        assert shown(app) == ["q", "only"]
        assert any("No other replies" in str(n.message) for n in app._notifications)


async def test_fork_opens_a_new_session_marked_in_the_sidebar(make_app):
    engine = FakeEngine(["a1", "a2"])
    async with chatting(make_app(engine), "q1", "q2", size=(120, 30)) as (app, pilot):
        parent = app.chat_screen.session
        views(app)[1].focus()  # fork from the first answer
        await pilot.press("f4")
        await settle(app, pilot)
        forked = app.chat_screen.session
        assert forked.id != parent.id and forked.forked_from == parent.id
        assert shown(app) == ["q1", "a1"]
        assert app.chat_screen.focused is app.chat_screen.prompt

        def rows() -> dict[str, str]:
            items = app.chat_screen.sidebar.query(SessionItem)
            return {i.summary.id: str(i.query_one(".when").render()) for i in items}

        await wait_for(pilot, lambda: forked.id in rows() and parent.id in rows())
        assert "⑂ fork" in rows()[forked.id] and "⑂" not in rows()[parent.id]
        assert len(app.store.load(parent.id).messages) == 4, "the original is unchanged"


async def test_fork_from_the_command_palette(make_app):
    async with chatting(make_app(FakeEngine(["a1"])), "q1") as (app, pilot):
        parent = app.chat_screen.session
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"fork session")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(app, pilot)
        forked = app.chat_screen.session
        assert forked.forked_from == parent.id and shown(app) == ["q1", "a1"]
