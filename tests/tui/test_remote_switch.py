"""Remote models in the app: the picker lists [[remotes]], a switch talks to the server.

The remote is the SSE replay server of tests/remote (a real HTTP server on 127.0.0.1); the
local model is a FakeEngine. No llama.cpp needed: fast.
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from textual.widgets import OptionList

from qwen_tui.config import Config, ModelConfig, RemoteConfig
from qwen_tui.conversation import StopReason
from qwen_tui.store import SessionStore
from qwen_tui.widgets.message_view import MessageView
from tests.remote.sse_server import Answer, ReplayServer, read_events, token_events
from tests.tui.conftest import press_nowait, screen_text, send, settle, wait_for
from tests.tui.fake_engine import FakeEngine


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


def lab_config(server: ReplayServer, **model: str) -> Config:
    lab = RemoteConfig(name="lab", base_url=server.base_url, model="smollm2", context_length=4096)
    return Config(remotes=(lab,), model=ModelConfig(**model))


async def pick(app, pilot, key: str) -> None:
    """ctrl+o, then enter on the row whose id is `key`."""
    await pilot.press("ctrl+o")
    await pilot.pause()
    options = app.screen.query_one(OptionList)
    ids = [options.get_option_at_index(i).id for i in range(options.option_count)]
    options.highlighted = ids.index(key)
    await pilot.press("enter")


def last_reply(app) -> MessageView:
    return app.chat_screen.query(MessageView).last()


async def test_chat_switches_to_a_remote_and_back(make_app, paths, server: ReplayServer):
    local = FakeEngine("local says hi", name="demo")
    app = make_app(local, config=lab_config(server))
    async with app.run_test(size=(120, 40)) as pilot:
        await settle(app, pilot)
        await send(pilot, "one")
        await settle(app, pilot)
        assert last_reply(app).message.content == "local says hi"

        # the picker lists the installed model and the remote, with where it runs
        await pilot.press("ctrl+o")
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert labels[0].startswith("● demo")
        assert labels[1] == f"  remote:lab  remote · ctx 4096 · smollm2 at {server.base_url}"
        await pilot.press("escape")

        # played in turn (the last one repeats): a recorded reply, then a slow stream
        slow = Answer(token_events([f" w{i}" for i in range(200)]), between_s=0.05)
        server.answer(Answer(read_events("llama_cpp_hello.sse")), slow)
        await pick(app, pilot, "remote:lab")
        await wait_for(pilot, lambda: app.model_state == "ready")
        assert local.closed  # RAM is freed before the next model loads
        status = app.chat_screen.status
        assert (status.model_name, status.context_size) == ("remote:lab", 4096)
        await send(pilot, "two")
        await settle(app, pilot)
        assert last_reply(app).message.content == "Hello, hello!"
        assert server.chat_requests()[-1].json["messages"][-1] == {"role": "user", "content": "two"}

        # the slow stream, stopped after a few tokens: the server sees the client go
        await send(pilot, "three")
        await wait_for(pilot, lambda: last_reply(app).message.content.count(" w") >= 3)
        await press_nowait(app, "escape")
        await settle(app, pilot)
        stopped = last_reply(app)
        assert stopped.message.stopped and stopped.message.content.startswith(" w0 w1 w2")
        assert "■ stopped" in screen_text(app)
        assert server.client_gone.wait(5)

        await pick(app, pilot, "demo")
        await wait_for(pilot, lambda: app.model_state == "ready")
        assert app.chat_screen.status.model_name == "demo"
        assert app.fake_factory.loaded == ["demo", "demo"]  # loaded afresh: a new FakeEngine
        await send(pilot, "four")
        await settle(app, pilot)
        assert last_reply(app).message.content == "Hello from the fake engine."
        session_id = app.chat_screen.session.id

    saved = SessionStore(paths.sessions_dir).load(session_id)
    assert [m.role for m in saved.messages] == ["user", "assistant"] * 4
    replies = saved.messages[1::2]
    assert [r.stats.stop_reason for r in replies] == [
        StopReason.EOS,
        StopReason.EOS,
        StopReason.STOPPED,
        StopReason.EOS,
    ]
    assert replies[1].content == "Hello, hello!" and replies[1].stats.generated_tokens == 4
    assert 3 <= replies[2].stats.generated_tokens < 200
    assert saved.model == "demo"  # the engine that answered last


async def test_the_session_names_the_remote_that_answered(make_app, paths, server: ReplayServer):
    app = make_app(FakeEngine(), config=lab_config(server, default="remote:lab"))
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert app.fake_factory.loaded == []  # the remote opened at start, not a local model
        assert app.chat_screen.status.model_name == "remote:lab"
        await send(pilot, "hi")
        await settle(app, pilot)
        session_id = app.chat_screen.session.id
    saved = SessionStore(paths.sessions_dir).load(session_id)
    assert saved.model == "remote:lab" and saved.messages[-1].content == "Hi"


async def test_an_unknown_remote_at_start_is_explained(make_app, server: ReplayServer):
    app = make_app(FakeEngine(), config=lab_config(server), model_name="remote:nope")
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert app.model_state == "error"
        text = screen_text(app)
        assert "no remote named 'nope'" in text and "remote:lab" in text


async def test_an_unreachable_remote_fails_to_load_in_words(make_app, server: ReplayServer):
    app = make_app(FakeEngine(), config=lab_config(server))
    async with app.run_test(size=(120, 30)) as pilot:
        await settle(app, pilot)
        server.models = ["another-model"]
        await pick(app, pilot, "remote:lab")
        await settle(app, pilot)
        assert app.model_state == "error"
        assert "has no model 'smollm2'" in screen_text(app)
        await send(pilot, "hello")  # the prompt is kept, the user is told what to do
        await settle(app, pilot)
        assert app.chat_screen.prompt.text == "hello"
