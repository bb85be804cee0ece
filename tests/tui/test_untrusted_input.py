"""Text from models, users and session files reaches the screen as text, whatever it holds;
a huge paste and a prompt longer than the context window end with a message, not a hang.

test_safety.py checks chosen hostile strings; here hypothesis generates 1,000 more and each is
rendered through the widgets that show untrusted text: the reply (Markdown), the user
message and the sidebar row (title and model; notifications are QwenTuiApp.notify's, checked
in test_safety.py). No ESC, BEL or C1 control (or any other C0
but newline and tab) may reach the rendered segments: those would go to the terminal as is.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from rich.segment import Segment
from textual import events
from textual.app import App, ComposeResult
from textual.containers import Horizontal, Vertical

from qwen_tui.app import QwenTuiApp
from qwen_tui.config import Config
from qwen_tui.conversation import Message
from qwen_tui.store import SessionSummary
from qwen_tui.widgets.message_view import MessageView
from qwen_tui.widgets.session_sidebar import SessionSidebar
from tests.tui.conftest import FROZEN_NOW, press_nowait, screen_text, settle, wait_for
from tests.tui.fake_engine import FakeEngine

ALLOWED_CONTROLS = {"\n", "\t"}
PIECES = [
    "\x1b]52;c;SGVsbG8=\x07",  # OSC 52: set the clipboard
    "\x1b]0;pwned\x07",  # OSC 0: set the window title
    "\x1b]2;pwned\x1b\\",  # OSC 2 ended by ST
    "\x9d0;pwned\x9c",  # the same with C1 controls
    "\x1b[2J",
    "\x1b[31m",
    "\x9b1m",
    "\x1bP+q544e\x1b\\",  # DCS: ask the terminal to answer (XTGETTCAP)
    "[bold red]",
    "[/]",
    "[link=http://x]",
    "[@click=app.quit]",
    "\r",
    "\x00",
    "\x7f",
    "`",
    "```",
    "**",
    "<b>",
    "\u202e",  # right-to-left override: visible only as a reordering, harmless to the terminal
]
hostile_text = st.lists(
    st.one_of(st.sampled_from(PIECES), st.text(max_size=8)), min_size=1, max_size=12
).map("".join)


def raw_controls(segments: list[Segment]) -> set[str]:
    """Control characters (C0 but newline and tab, DEL, C1) in what would be written."""
    found = set()
    for segment in segments:
        if segment.control:
            continue  # cursor moves Textual itself emits, not text
        for char in segment.text:
            code = ord(char)
            if (code < 0x20 or 0x7F <= code < 0xA0) and char not in ALLOWED_CONTROLS:
                found.add(char)
    return found


BATCH = 25
"""Examples shown at once (one render per batch keeps 1,000 examples to seconds)."""


class Showcase(App[None]):
    """The widgets that show untrusted text, fed a new batch of texts each time."""

    def __init__(self) -> None:
        super().__init__()
        self.clock = lambda: FROZEN_NOW  # the sidebar asks the app for the time

    def compose(self) -> ComposeResult:
        with Horizontal():
            yield SessionSidebar(self.clock, text_target="#messages", id="sidebar")
            yield Vertical(id="messages")


async def show(app: Showcase, pilot, texts: list[str]) -> None:
    messages = app.query_one("#messages")
    # No frame is painted while the batch is swapped in (the test renders the screen itself,
    # after the pause below has laid it out): a third less work for the same screen.
    with app.batch_update():
        await messages.remove_children()
        views = [
            MessageView(Message(role, text)) for text in texts for role in ("user", "assistant")
        ]
        await messages.mount_all(views)
        summaries = [
            SessionSummary(
                id=f"s{index}",
                title=text,
                created=FROZEN_NOW,
                updated=FROZEN_NOW,
                message_count=2,
                model=text,
                path=Path(f"s{index}.json"),  # never opened
            )
            for index, text in enumerate(texts)
        ]
        await app.query_one(SessionSidebar).show(summaries)
    await pilot.pause()


def draw_examples(count: int) -> list[str]:
    """`count` strings from `hostile_text` (hypothesis's @given does not drive async tests)."""
    drawn: list[str] = []

    @settings(
        max_examples=count, deadline=None, database=None, suppress_health_check=list(HealthCheck)
    )
    @given(hostile_text)
    def collect(text: str) -> None:
        drawn.append(text)

    collect()
    return drawn


@pytest.mark.slow
async def test_a_thousand_generated_strings_render_without_raw_controls():
    drawn = draw_examples(1000)
    assert len(drawn) >= 1000
    app = Showcase()
    async with app.run_test(size=(160, BATCH * 12)) as pilot:
        for first in range(0, len(drawn), BATCH):
            batch = drawn[first : first + BATCH]
            await show(app, pilot, batch)
            segments = [
                segment
                for strip in app.screen._compositor.render_strips()
                for segment in list(strip)
            ]
            assert raw_controls(segments) == set(), batch
        # the texts were on screen, made visible: the last batch's escapes show as ␛
        shown = screen_text(app)
        with_escape = [t for t in batch if "\x1b" in t and "\n" not in t]
        assert not with_escape or "␛" in shown


@pytest.mark.slow  # ~8 s: Textual lays out a 1 MB line
async def test_a_one_megabyte_paste_is_sent_and_answered_without_a_hang(make_app):
    engine = FakeEngine("short answer")
    app = make_app(engine)
    big = ("All work and no play makes Jack a dull boy. " * 24_000)[:1_000_000]
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        prompt = app.chat_screen.prompt
        started = time.monotonic()
        prompt.post_message(events.Paste(big))
        await wait_for(pilot, lambda: len(prompt.text) == len(big), timeout=30)
        await press_nowait(app, "enter")
        await settle(app, pilot)
        elapsed = time.monotonic() - started
        assert elapsed < 30, f"a 1 MB paste took {elapsed:.1f} s"
        messages = app.chat_screen.session.messages
        assert messages[-2].content == big  # sent whole, saved whole
        assert messages[-1].content == "short answer"


@pytest.mark.slow
async def test_a_prompt_longer_than_the_context_window_is_told(
    paths, tiny_quantized, install_into_home, tiny_engine
):
    model = install_into_home(tiny_quantized("qwen2"))
    engine = tiny_engine("qwen2")  # shared by the run's tests: the app must not close it
    window = engine.info.context_length
    app = QwenTuiApp(Config(), paths, engine_factory=lambda _model: engine)
    too_long = "word " * (window * 2)
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        assert app.model is not None and app.model.name == model.name
        app.chat_screen.prompt.post_message(events.Paste(too_long))
        await wait_for(pilot, lambda: app.chat_screen.prompt.text == too_long)
        started = time.monotonic()
        await press_nowait(app, "enter")
        await settle(app, pilot)
        assert time.monotonic() - started < 20
        reply = app.chat_screen.session.messages[-1]
        assert reply.role == "assistant" and reply.content == ""
        assert reply.error is not None and "context window" in reply.error
        told = [(n.title, n.message) for n in app._notifications]
        assert ("Generation failed", reply.error) in told
        assert f"context window of {window}" in reply.error
        assert not app.chat_screen.generating
        # the session goes on: a short question is answered
        await pilot.press(*"hi")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        assert app.chat_screen.session.messages[-1].error is None
