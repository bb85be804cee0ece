"""Huge replies (20,000 short paragraphs, a 200x500 Markdown table) arriving as fast as a
server can send them: the UI keeps answering keys, and the text is saved as it arrives."""

from __future__ import annotations

import json
import threading

import pytest

from qwen_tui.config import Config
from qwen_tui.conversation import GenerationSettings, GenerationStats, StopReason
from qwen_tui.engine.base import ReplyDone, TextChunk
from qwen_tui.widgets.message_view import RENDER_CHARS, rendered_part
from tests.faults.fake_engine_tui import scripted_reply
from tests.tui.conftest import press_nowait, settle, type_while_busy, wait_for
from tests.tui.fake_engine import FakeEngine

UNLIMITED = Config(generation=GenerationSettings(max_new_tokens=10**7))
FLOODS = ["paragraphs:20000", "table:200x500"]


class Flood(FakeEngine):
    """Sends the whole reply word by word without pausing (a fast server: 80,000 pieces in
    about a second); `done` is set once the last piece is sent."""

    def __init__(self, reply: str) -> None:
        super().__init__(reply)
        self.done = threading.Event()

    def generate(self, messages, settings, cancel=None):
        words = self._replies[0].split(" ")
        for index, word in enumerate(words):
            yield TextChunk(word if index == 0 else " " + word)
        self.done.set()
        yield ReplyDone(GenerationStats(generated_tokens=len(words), stop_reason=StopReason.EOS))


def saved_reply(app) -> str:
    path = app.store.path_for(app.chat_screen.session.id)
    if not path.exists():
        return ""
    messages = json.loads(path.read_text(encoding="utf-8"))["messages"]
    return messages[-1]["content"] if messages[-1]["role"] == "assistant" else ""


def footer(app) -> str:
    views = app.chat_screen.messages_view.views
    return str(views[-1].query_one(".footer").render()) if views else ""


async def send(app, pilot, text: str) -> None:
    await settle(app, pilot)
    await pilot.press(*text)
    await press_nowait(app, "enter")


@pytest.mark.parametrize("spec", FLOODS)
async def test_a_flood_ends_saved_and_the_ui_answers_keys_at_once(make_app, spec):
    reply = scripted_reply(spec)
    engine = Flood(reply)
    app = make_app(engine, config=UNLIMITED)
    async with app.run_test(size=(100, 30)) as pilot:
        await send(app, pilot, "flood")
        await wait_for(pilot, engine.done.is_set, timeout=60)
        # All of it arrived: the reply ends and is saved whole without waiting for a render
        # of all of it (which took minutes).
        await wait_for(pilot, lambda: not app.chat_screen.generating, timeout=10)
        assert saved_reply(app) == reply
        latencies = await type_while_busy(app, app.chat_screen.prompt, "ok")
        assert max(latencies) < 2  # each key shows (type_while_busy fails after 5 s)
        view = app.chat_screen.messages_view.views[-1]
        assert "more characters not shown" in str(view.query_one(".more").render())
        assert len(rendered_part(reply)) <= RENDER_CHARS
        view.focus()
        shown = len(rendered_part(reply))
        await pilot.press("enter")  # the rest on demand, as plain text, a part at a time
        await settle(app, pilot)
        part = str(view.query_one(".rest").render())
        assert part and reply[shown:].startswith(part)
        await press_nowait(app, "ctrl+q")
        await wait_for(pilot, lambda: not app.is_running, timeout=10)


@pytest.mark.parametrize("spec", FLOODS)
async def test_escape_stops_a_flood_and_the_text_is_saved_as_it_arrives(make_app, spec):
    reply = scripted_reply(spec)
    engine = FakeEngine(reply, delay=0.0005)  # ~2,000 pieces a second: long enough to stop
    app = make_app(engine, config=UNLIMITED)
    async with app.run_test(size=(100, 30)) as pilot:
        await send(app, pilot, "flood")
        # Saved at once, then every PARTIAL_SAVE_S, whatever the rendering is doing.
        await wait_for(pilot, lambda: saved_reply(app), timeout=5)
        await press_nowait(app, "escape")
        await wait_for(pilot, lambda: not app.chat_screen.generating, timeout=5)
        await wait_for(pilot, lambda: "■ stopped" in footer(app), timeout=5)
        saved = saved_reply(app)
        assert saved and reply.startswith(saved) and len(saved) < len(reply)
