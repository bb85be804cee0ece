"""The sessions sidebar and persistence: new, open, search, rename, delete, restart."""

from __future__ import annotations

import time

from textual.widgets import Input

from qwen_tui.conversation import GenerationSettings, Message, Session
from qwen_tui.store import SessionStore
from qwen_tui.widgets.message_view import MessageView
from qwen_tui.widgets.session_sidebar import SessionItem, SessionList
from tests.tui.conftest import press_nowait, settle
from tests.tui.fake_engine import FakeEngine


def make_session(title: str, *texts: str, updated: float | None = None, **fields) -> Session:
    session = Session(title=title, **fields)
    for index, text in enumerate(texts):
        session.messages.append(Message("user" if index % 2 == 0 else "assistant", text))
    session.updated = updated or time.time()
    return session


def rows(app) -> list[str]:
    """Titles in the sidebar, top to bottom."""
    items = app.chat_screen.sidebar.query(SessionItem)
    return [str(item.query_one(".title").render()) for item in items]


def current_rows(app) -> list[str]:
    items = app.chat_screen.sidebar.query(SessionItem)
    return [item.summary.title for item in items if item.has_class("-current")]


async def focus_list(pilot) -> SessionList:
    session_list = pilot.app.chat_screen.sidebar.session_list
    session_list.focus()
    await pilot.pause()
    return session_list


async def test_sidebar_lists_sessions_newest_first_and_opens_one(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    store.save(make_session("older chat", "old question", "old answer", updated=1000.0))
    store.save(make_session("newer chat", "new question", "new answer", updated=2000.0))
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        # the fresh, empty session on top, then newest first
        assert rows(app) == ["New session", "newer chat", "older chat"]
        assert current_rows(app) == ["New session"]
        session_list = await focus_list(pilot)
        session_list.index = 2
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.chat_screen.session.title == "older chat"
        texts = [v.message.content for v in app.chat_screen.query(MessageView)]
        assert texts == ["old question", "old answer"]
        assert current_rows(app) == ["older chat"]
        # the unsaved empty session is gone once we left it
        assert rows(app) == ["newer chat", "older chat"]


async def test_ctrl_n_starts_a_new_session_that_appears_in_the_sidebar(make_app):
    app = make_app(FakeEngine("answer"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press(*"first topic")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        first_id = app.chat_screen.session.id
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert app.chat_screen.session.id != first_id
        assert app.chat_screen.session.messages == []
        assert not app.chat_screen.query(MessageView)
        assert rows(app) == ["New session", "first topic"]
        assert current_rows(app) == ["New session"]
        await pilot.press(*"second topic")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        assert rows(app) == ["second topic", "first topic"]
        # ctrl+n on an empty session does not pile up empty sessions
        await pilot.press("ctrl+n")
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert rows(app) == ["New session", "second topic", "first topic"]


async def test_new_sessions_start_from_the_config_defaults(make_app):
    from qwen_tui.config import Config

    config = Config(
        generation=GenerationSettings(temperature=0.2, top_k=5), system_prompt="Answer in French."
    )
    engine = FakeEngine("oui")
    app = make_app(engine, config=config)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        line = str(app.chat_screen.query_one("#system-line").render())
        assert "Answer in French." in line
        await pilot.press(*"bonjour")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        asked, settings = engine.calls[0]
        assert asked[0].content == "Answer in French."
        assert settings.temperature == 0.2 and settings.top_k == 5


async def test_sidebar_search_filters_by_title_and_message_text(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    store.save(make_session("Pasta recipes", "how long to boil", "ten minutes"))
    store.save(make_session("Rust questions", "what is a lifetime", "a region of code"))
    store.save(make_session("Travel", "pack for rain", "bring an umbrella"))
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await focus_list(pilot)
        await pilot.press("ctrl+f")
        assert isinstance(app.focused, Input)
        await pilot.press(*"rust")
        await pilot.pause(0.3)
        await settle(app, pilot)
        assert rows(app) == ["Rust questions"]
        search = app.chat_screen.query_one("#session-search", Input)
        search.value = "UMBRELLA"  # message text, any case
        await pilot.pause(0.3)
        await settle(app, pilot)
        assert rows(app) == ["Travel"]
        search.value = ""
        await pilot.pause(0.3)
        await settle(app, pilot)
        assert len(rows(app)) == 4


async def test_rename_from_the_sidebar(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    saved = make_session("old name", "q", "a")
    store.save(saved)
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        session_list = await focus_list(pilot)
        session_list.index = 1
        await pilot.press("f2")
        await pilot.pause()
        dialog_input = app.screen.query_one("#dialog-input", Input)
        assert dialog_input.value == "old name"
        dialog_input.value = ""
        await pilot.press(*"better name", "enter")
        await settle(app, pilot)
        assert store.load(saved.id).title == "better name"
        assert "better name" in rows(app)


async def test_delete_asks_first_and_really_removes_the_file(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    keep = make_session("keep me", "q", "a", updated=1000.0)
    doomed = make_session("delete me", "q", "a", updated=2000.0)
    store.save(keep)
    store.save(doomed)
    path = store.path_for(doomed.id)
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        session_list = await focus_list(pilot)
        session_list.index = 1
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("escape")  # cancel: nothing happens
        await settle(app, pilot)
        assert path.exists()
        assert app.focused is app.chat_screen.prompt  # every dialog gives the keys back
        session_list = await focus_list(pilot)
        session_list.index = 1
        await pilot.press("ctrl+d")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert not path.exists()
        assert rows(app) == ["New session", "keep me"]
        assert store.path_for(keep.id).exists()


async def test_deleting_the_open_session_shows_a_new_one(make_app, paths):
    app = make_app(FakeEngine("reply"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press(*"doomed")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        doomed = app.chat_screen.session.id
        session_list = await focus_list(pilot)
        session_list.index = 0
        await pilot.press("delete")
        await pilot.pause()
        await pilot.press("y")
        await settle(app, pilot)
        assert not app.store.path_for(doomed).exists()
        assert app.chat_screen.session.id != doomed
        assert app.chat_screen.session.messages == []


async def test_sessions_survive_a_restart_with_prompt_and_settings(make_app, paths):
    from qwen_tui.app import QwenTuiApp
    from qwen_tui.config import Config
    from tests.tui.conftest import FakeFactory

    app = make_app(FakeEngine(["first reply", "second reply"]))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press(*"alpha")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        session = app.chat_screen.session
        session.system_prompt = "Be terse."
        session.settings = GenerationSettings(temperature=0.1, max_new_tokens=64)
        app.store.save(session)
        await pilot.press("ctrl+n", *"beta")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        await pilot.press("ctrl+q")
    again = QwenTuiApp(Config(), paths, engine_factory=FakeFactory(FakeEngine()), new_session=True)
    async with again.run_test(size=(80, 24)) as pilot:
        await settle(again, pilot)
        assert rows(again) == ["New session", "beta", "alpha"]
        session_list = await focus_list(pilot)
        session_list.index = 2
        await pilot.press("enter")
        await settle(again, pilot)
        reopened = again.chat_screen.session
        assert reopened.system_prompt == "Be terse."
        assert reopened.settings.temperature == 0.1 and reopened.settings.max_new_tokens == 64
        assert [m.content for m in reopened.messages] == ["alpha", "first reply"]
        assert "Be terse." in str(again.chat_screen.query_one("#system-line").render())


async def test_open_by_session_id(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    wanted = make_session("wanted", "hello", "hi")
    store.save(wanted)
    app = make_app(FakeEngine(), session_id=wanted.id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.chat_screen.session.id == wanted.id
        assert current_rows(app) == ["wanted"]


async def test_a_session_another_qwen_tui_writes_opens_read_only(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    busy = make_session("busy elsewhere", "q", "a")
    store.save(busy)
    elsewhere = store.lock(busy.id)  # stands in for the other instance's lock
    app = make_app(FakeEngine("reply"), session_id=busy.id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.chat_screen.opened.read_only
        assert "Read-only" in str(app.chat_screen.query_one("#notice").render())
        await pilot.press(*"my words")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        assert app.chat_screen.prompt.text == "my words"  # kept, not sent
        assert len(store.load(busy.id).messages) == 2
        # once the other one lets go, opening it again takes it over
        elsewhere.release()
        session_list = await focus_list(pilot)
        session_list.index = rows(app).index("busy elsewhere")
        await pilot.press("enter")
        await settle(app, pilot)
        assert not app.chat_screen.opened.read_only
        await press_nowait(app, "enter")
        await settle(app, pilot)
        assert [m.content for m in store.load(busy.id).messages][-2:] == ["my words", "reply"]


async def test_switching_sessions_and_quitting_release_the_locks(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    first = make_session("first", "q", "a", updated=2000.0)
    second = make_session("second", "q", "a", updated=1000.0)
    store.save(first)
    store.save(second)
    app = make_app(FakeEngine(), session_id=first.id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert store.holder(first.id) is not None
        session_list = await focus_list(pilot)
        session_list.index = rows(app).index("second")
        await pilot.press("enter")
        await settle(app, pilot)
        assert store.holder(first.id) is None
        assert store.holder(second.id) is not None
    assert store.holder(second.id) is None


async def test_a_reply_interrupted_by_a_crash_is_marked_and_settled_by_the_next_turn(
    make_app, paths
):
    store = SessionStore(paths.sessions_dir)
    crashed = make_session("crashed", "question", "half an ans")
    crashed.messages[-1].incomplete = True
    store.save(crashed)
    app = make_app(FakeEngine("fresh"), session_id=crashed.id)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        views = list(app.chat_screen.query(MessageView))
        assert "interrupted" in str(views[-1].query_one(".footer").render())
        await pilot.press(*"next")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        old = store.load(crashed.id).messages[1]
        assert old.content == "half an ans" and not old.incomplete
        assert old.stopped and old.error is None  # cut short: stopped, not failed
        assert "stopped" in str(views[-1].query_one(".footer").render())


async def test_a_new_session_leaves_no_files_until_its_first_message(make_app, paths):
    app = make_app(FakeEngine("hi"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        assert list(paths.sessions_dir.iterdir()) == []
        await pilot.press(*"hello")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        session_id = app.chat_screen.session.id
        assert app.store.path_for(session_id).exists()
        assert app.store.holder(session_id) is not None  # locked from its first save


async def test_a_burst_of_delete_y_enter_deletes_nothing(make_app, paths):
    from textual import events

    store = SessionStore(paths.sessions_dir)
    doomed = make_session("delete me", "q", "a")
    store.save(doomed)
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        session_list = await focus_list(pilot)
        session_list.index = 1
        for key, character in (("delete", None), ("y", "y"), ("enter", "\r")):  # one burst
            app._driver.send_message(events.Key(key, character))
        await settle(app, pilot)
        await pilot.pause(0.2)
        assert store.path_for(doomed.id).exists()


async def test_the_confirmation_ignores_keys_typed_before_it_was_drawn(make_app):
    from textual import events

    from qwen_tui.screens.confirm_dialog import ConfirmDialog

    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        answers: list[bool | None] = []
        app.push_screen(ConfirmDialog("Delete", "Sure?", "Delete"), answers.append)
        app._driver.send_message(events.Key("y", "y"))  # typed before the first frame
        await settle(app, pilot)
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConfirmDialog) and answers == []
        await pilot.press("enter")  # the default is no
        assert answers == [False]
        app.push_screen(ConfirmDialog("Delete", "Sure?", "Delete"), answers.append)
        await settle(app, pilot)
        await pilot.press("y")  # a deliberate yes, once it is on screen
        assert answers == [False, True]


async def test_escape_leaves_the_search_box_and_the_list_for_the_prompt(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    store.save(make_session("Pasta", "q", "a"))
    store.save(make_session("Rust", "q", "a"))
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await focus_list(pilot)
        await pilot.press("ctrl+f", *"rust")
        await pilot.pause(0.3)
        await settle(app, pilot)
        assert rows(app) == ["Rust"]
        await pilot.press("escape")  # clears the search, back to the prompt
        await pilot.pause(0.3)
        await settle(app, pilot)
        assert app.focused is app.chat_screen.prompt
        assert len(rows(app)) == 3
        await focus_list(pilot)
        await pilot.press("escape")
        assert app.focused is app.chat_screen.prompt


async def test_rename_and_its_cancel_give_the_keys_back_to_the_prompt(make_app, paths):
    store = SessionStore(paths.sessions_dir)
    saved = make_session("old name", "q", "a")
    store.save(saved)
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        for keys in (("escape",), ("enter",)):
            session_list = await focus_list(pilot)
            session_list.index = 1
            await pilot.press("f2")
            await pilot.pause()
            await pilot.press(*keys)
            await settle(app, pilot)
            assert app.focused is app.chat_screen.prompt
            await pilot.press(*"so")
            assert app.chat_screen.prompt.text == "so"
            app.chat_screen.prompt.clear()
        assert store.load(saved.id).title == "old name"


def test_a_row_without_its_widgets_yet_or_any_more_updates_without_error(paths):
    # The minute timer fired while the list was being rebuilt: NoMatches '.when' crashed it.
    from qwen_tui.store import SessionSummary

    summary = SessionSummary("x", "title", 0.0, 0.0, 1, "", paths.sessions_dir / "x.json")
    row = SessionItem(summary, now=60.0, current=False)
    assert row._when(60.0) == "1 min ago · 1 msg"
    row.refresh_time(120.0)
    row.update(SessionSummary("x", "new", 0.0, 0.0, 2, "", summary.path), 180.0)
    assert row.summary.title == "new"
    assert row._when(60.0) == "1 min ago · 2 msgs"
