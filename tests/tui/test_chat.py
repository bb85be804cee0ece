"""Sending, streaming, stopping, regenerating and editing, driven through the keyboard."""

from __future__ import annotations

from qwen_tui.chat import reply_lifecycle
from qwen_tui.conversation import StopReason
from qwen_tui.engine.base import EngineError
from qwen_tui.widgets.message_view import MessageView
from qwen_tui.widgets.prompt_input import PromptInput
from tests.tui.conftest import (
    FakeFactory,
    chatting,
    press_nowait,
    saved,
    send,
    settle,
    turns,
    type_while_busy,
    views,
    wait_for,
)
from tests.tui.fake_engine import FakeEngine

LONG_REPLY = " ".join(f"word{i}" for i in range(400))


def footer(view: MessageView) -> str:
    return str(view.query_one(".footer").render())


async def test_send_streams_reply_shows_stats_and_saves(make_app):
    engine = FakeEngine("Here is `code`:\n\n```python\nprint('hi')\n```")
    async with chatting(make_app(engine)) as (app, pilot):
        assert app.chat_screen.status.state == "ready"
        await turns(pilot, "hello there")
        user, reply = views(app)
        assert user.message.content == "hello there"
        assert reply.body.source == engine._replies[0]
        assert "print" in str(reply.body.query("MarkdownFence").first().code)
        line = footer(reply)
        assert "tokens" in line and "TTFT" in line and "tok/s" in line
        status = app.chat_screen.status
        assert status.state == "ready" and status.tok_s is not None
        assert status.context_used and status.context_size == 2048
        data = saved(app)
        assert [m["role"] for m in data["messages"]] == ["user", "assistant"]
        assert data["messages"][1]["stats"]["generated_tokens"] == 3  # words
        assert data["title"] == "hello there"
        # the engine was asked with the system prompt first, then the prompt
        asked, _settings = engine.calls[0]
        assert [m.role for m in asked] == ["system", "user"]


async def test_user_message_is_saved_before_generation_starts(make_app):
    engine = FakeEngine(LONG_REPLY, delay=0.02)
    async with chatting(make_app(engine)) as (app, pilot):
        await send(pilot, "first")
        await wait_for(pilot, engine.started.is_set)
        assert saved(app)["messages"][0]["content"] == "first"
        await press_nowait(app, "escape")
        await settle(app, pilot)


async def test_escape_stops_and_keeps_partial_reply_on_disk(make_app):
    engine = FakeEngine(LONG_REPLY, delay=0.01)
    async with chatting(make_app(engine)) as (app, pilot):
        await send(pilot, "talk a lot")
        await wait_for(pilot, lambda: len(getattr(app.chat_screen.reply, "content", "")) > 20)
        await press_nowait(app, "escape")
        await settle(app, pilot)
        assert not app.chat_screen.generating
        reply = saved(app)["messages"][1]
        assert reply["content"].startswith("word0 word1")
        assert len(reply["content"]) < len(LONG_REPLY)
        assert reply["stats"]["stop_reason"] == StopReason.STOPPED
        assert reply["incomplete"] is False
        assert "stopped" in footer(views(app)[1])


async def test_partial_reply_is_saved_while_streaming(make_app, monkeypatch):
    monkeypatch.setattr(reply_lifecycle, "PARTIAL_SAVE_S", 0.05)
    engine = FakeEngine(LONG_REPLY, delay=0.01)
    async with chatting(make_app(engine)) as (app, pilot):
        await send(pilot, "go")

        def partial_on_disk() -> bool:
            messages = saved(app)["messages"]
            return len(messages) == 2 and len(messages[1]["content"]) > 10

        await wait_for(pilot, partial_on_disk)
        reply = saved(app)["messages"][1]
        assert reply["incomplete"] is True and reply["role"] == "assistant"
        await press_nowait(app, "escape")
        await settle(app, pilot)


async def test_regenerate_replaces_the_last_answer(make_app):
    engine = FakeEngine(["first answer", "second answer"])
    async with chatting(make_app(engine), "question") as (app, pilot):
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        messages = app.chat_screen.session.messages
        assert [(m.role, m.content) for m in messages] == [
            ("user", "question"),
            ("assistant", "second answer"),
        ]
        assert [v.message.content for v in views(app)] == ["question", "second answer"]
        assert [m.role for m in engine.calls[1][0]] == ["system", "user"]
        assert saved(app)["messages"][1]["content"] == "second answer"


async def test_up_in_empty_prompt_edits_and_resends_the_last_message(make_app):
    engine = FakeEngine(["one", "two"])
    async with chatting(make_app(engine), "helo") as (app, pilot):
        prompt = app.chat_screen.query_one(PromptInput)
        await pilot.press("up")
        assert prompt.text == "helo"
        assert prompt.has_class("-editing")
        await pilot.press("backspace", *"lo", "enter")
        await settle(app, pilot)
        messages = app.chat_screen.session.messages
        assert [(m.role, m.content) for m in messages] == [("user", "hello"), ("assistant", "two")]
        assert len(views(app)) == 2
        assert [m["content"] for m in saved(app)["messages"]] == ["hello", "two"]


async def test_ctrl_j_inserts_a_newline_and_paste_keeps_lines(make_app):
    engine = FakeEngine("ok")
    async with chatting(make_app(engine)) as (app, pilot):
        prompt = app.chat_screen.query_one(PromptInput)
        await pilot.press(*"line one", "ctrl+j", *"line two")
        assert prompt.text == "line one\nline two"
        prompt.clear()
        from textual import events

        prompt.post_message(events.Paste("first\nsecond\x1b[31m\nthird"))
        await pilot.pause()
        assert prompt.text == "first\nsecond␛[31m\nthird"
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.chat_screen.session.messages[0].content == "first\nsecond␛[31m\nthird"


async def test_prompt_sent_before_the_model_loads_is_answered_after(make_app):
    factory = FakeFactory(FakeEngine("late answer"), hold=True)
    app = make_app(factory=factory)
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        assert app.chat_screen.status.state == "loading"
        assert app.chat_screen.status.model_name == "demo"
        await send(pilot, "are you there")
        await pilot.pause()
        (pending,) = views(app)
        assert "waiting for the model" in footer(pending)
        assert saved(app)["messages"][0]["content"] == "are you there"
        factory.release()
        await settle(app, pilot)
        assert [v.message.content for v in views(app)] == ["are you there", "late answer"]
        assert "waiting" not in footer(views(app)[0])
        assert app.chat_screen.status.state == "ready"


async def test_prompt_stays_responsive_while_a_long_reply_streams(make_app):
    engine = FakeEngine([LONG_REPLY, "short"], delay=0.01)
    async with chatting(make_app(engine)) as (app, pilot):
        await send(pilot, "go")
        await wait_for(pilot, engine.started.is_set)
        prompt = app.chat_screen.query_one(PromptInput)
        latencies = await type_while_busy(app, prompt, "next question")
        assert prompt.text == "next question"
        assert app.chat_screen.generating, "the reply should still be streaming"
        print(f"key latency while streaming: max {max(latencies) * 1000:.0f} ms")
        assert max(latencies) < 0.5
        # enter while generating does not send; the text stays
        await press_nowait(app, "enter")
        assert prompt.text == "next question"
        await press_nowait(app, "escape")
        await settle(app, pilot)
        await press_nowait(app, "enter")
        await settle(app, pilot)
        assert app.chat_screen.session.messages[-2].content == "next question"


async def test_generation_error_is_marked_and_the_app_keeps_going(make_app):
    engine = FakeEngine("never finished here", fail_with="out of memory", fail_after=1)
    async with chatting(make_app(engine), "hi") as (app, pilot):
        reply_view = views(app)[1]
        assert "failed: out of memory" in footer(reply_view)
        assert reply_view.has_class("-error")
        assert any("out of memory" in str(n.message) for n in app._notifications)
        assert saved(app)["messages"][1]["stats"]["error"] == "out of memory"
        engine.fail_with = None
        await turns(pilot, "again")
        assert app.chat_screen.session.messages[-1].content == "never finished here"


async def test_save_failure_keeps_the_typed_text(make_app, paths):
    async with chatting(make_app(FakeEngine("x"))) as (app, pilot):
        # a file where the sessions folder should be: saving really fails (even as root)
        paths.sessions_dir.rename(paths.sessions_dir.with_name("moved"))
        paths.sessions_dir.write_text("not a folder")
        await turns(pilot, "important words")
        prompt = app.chat_screen.query_one(PromptInput)
        assert prompt.text == "important words"
        assert app.chat_screen.session.messages == []
        assert views(app) == []
        assert any("Could not send" in (n.title or "") for n in app._notifications)


async def test_model_load_failure_is_reported_and_prompt_kept(make_app):
    def broken(model):
        raise EngineError(f"model {model.name!r} is damaged (missing config.json)")

    async with chatting(make_app(factory=broken)) as (app, pilot):
        assert app.chat_screen.status.state == "error"
        assert any("damaged" in str(n.message) for n in app._notifications)
        await send(pilot, "hello")
        await pilot.pause()
        assert app.chat_screen.query_one(PromptInput).text == "hello"
        assert app.is_running


async def test_no_model_installed_says_how_to_get_one(make_app):
    async with chatting(make_app(models=())) as (app, _):
        notice = app.chat_screen.query_one("#notice")
        assert notice.display
        text = str(notice.render())
        assert "qwen-tui setup" in text and "qwen-tui import" in text
        assert app.chat_screen.status.state == "none"


async def test_streamed_text_shows_while_generating_in_batched_updates(make_app, monkeypatch):
    """Tokens reach the Markdown widget a few times a second, not once each: every widget
    update lays the screen out again, and on small machines that time is the model's."""
    from textual.widgets.markdown import MarkdownStream

    writes: list[str] = []
    write = MarkdownStream.write

    async def counting_write(stream, fragment):
        writes.append(fragment)
        await write(stream, fragment)

    monkeypatch.setattr(MarkdownStream, "write", counting_write)
    engine = FakeEngine(LONG_REPLY, delay=0.005)
    async with chatting(make_app(engine)) as (app, pilot):
        await send(pilot, "go")
        await wait_for(pilot, lambda: len(writes) >= 2)
        assert app.chat_screen.generating, "the reply should still be streaming"
        assert LONG_REPLY.startswith("".join(writes))
        assert "interrupted" not in footer(views(app)[1])  # unfinished, not interrupted
        await settle(app, pilot)
        assert views(app)[1].body.source == LONG_REPLY
    assert 2 <= len(writes) < len(LONG_REPLY.split()) / 10
