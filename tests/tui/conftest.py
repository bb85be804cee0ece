"""Fixtures for driving QwenTuiApp with run_test(): isolated folders, fake models, FakeEngine."""

from __future__ import annotations

import contextlib
import json
import threading
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import TYPE_CHECKING

import pytest

from qwen_tui.app import QwenTuiApp
from qwen_tui.config import Config
from qwen_tui.model_files import InstalledModel, ModelManifest, write_manifest
from qwen_tui.paths import Paths
from tests.tui.fake_engine import FakeEngine

if TYPE_CHECKING:
    # A hint only: test_start_imports runs this module before the first frame, which must
    # not have imported MessageView (its Markdown loads with the first message).
    from qwen_tui.widgets.message_view import MessageView

FROZEN_NOW = 1_750_000_000.0
"""The clock of snapshot tests (2025-06-15), so relative times never change."""


@pytest.fixture
def paths(tmp_path: Path) -> Paths:
    root = tmp_path / "home"
    return Paths(
        config_file=root / "config.toml",
        data_dir=root / "data",
        state_dir=root / "state",
        cache_dir=root / "cache",
    )


def install_fake_model(paths: Paths, name: str, *, low_bit: str = "sym_int4") -> InstalledModel:
    """A model folder with a manifest: enough for list_installed (FakeEngine does the rest)."""
    folder = paths.models_dir / name
    folder.mkdir(parents=True, exist_ok=True)
    manifest = ModelManifest(
        name=name,
        source=f"test/{name}",
        arch="FakeForCausalLM",
        model_type="fake",
        low_bit=low_bit,
        context_length=2048,
    )
    write_manifest(folder, manifest)
    return InstalledModel(folder, manifest)


class FakeFactory:
    """engine_factory for the app: FakeEngines, optionally held back until `release()`."""

    def __init__(self, engine: FakeEngine | None = None, *, hold: bool = False) -> None:
        self.engine = engine
        self.loaded: list[str] = []
        self.engines: list[FakeEngine] = []
        self._gate = threading.Event()
        if not hold:
            self._gate.set()

    def release(self) -> None:
        self._gate.set()

    def __call__(self, model: InstalledModel) -> FakeEngine:
        assert self._gate.wait(10), "test never released the model load"
        self.loaded.append(model.name)
        engine = self.engine if self.engine is not None else FakeEngine()
        engine.info = type(engine.info)(**{**engine.info.__dict__, "name": model.name})
        self.engines.append(engine)
        self.engine = None  # a second load (model switch) gets a fresh engine
        return engine


@pytest.fixture
def make_app(paths: Paths) -> Callable[..., QwenTuiApp]:
    """make_app(engine=FakeEngine(...), models=("demo",), config=Config(), **app_kwargs)."""

    def make(
        engine: FakeEngine | None = None,
        *,
        models: tuple[str, ...] = ("demo",),
        config: Config | None = None,
        factory: FakeFactory | None = None,
        **kwargs: object,
    ) -> QwenTuiApp:
        for name in models:
            install_fake_model(paths, name)
        factory = factory or FakeFactory(engine)
        app = QwenTuiApp(config or Config(), paths, engine_factory=factory, **kwargs)
        app.fake_factory = factory  # type: ignore[attr-defined]  (tests read it)
        return app

    return make


async def wait_for(pilot, condition: Callable[[], object], timeout: float = 5.0) -> None:
    """Let the app run until `condition()` is true (fails the test after `timeout` s)."""
    import time

    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {condition}")
        await pilot.pause(0.01)


async def workers_done(app: QwenTuiApp) -> None:
    """Until every worker has ended, failed ones too: the app's workers never exit on error,
    the app tells the user (tests check what it says). Textual's wait_for_complete raises for
    a failed worker only while it is still listed, a race a loaded machine loses now and then.
    A cancelled one has ended too: an exclusive worker (a second session listing) cancels the
    one before it, and a loaded machine sometimes lists both here."""
    from textual.worker import WorkerCancelled, WorkerFailed

    for worker in list(app.workers):
        with contextlib.suppress(WorkerFailed, WorkerCancelled):
            await worker.wait()


async def settle(app: QwenTuiApp, pilot) -> None:
    """Wait until every worker is done and the messages they posted are handled."""
    await workers_done(app)
    await pilot.pause()
    await workers_done(app)
    await pilot.pause()


async def type_while_busy(app: QwenTuiApp, widget, text: str) -> list[float]:
    """Type `text` without waiting for the app to be idle (pilot.press does wait, and a
    streaming reply keeps it busy); returns each key's latency until `widget.text` shows it."""
    import asyncio
    import time

    from textual import events

    latencies = []
    for character in text:
        before = len(widget.text)
        started = time.perf_counter()
        key = "space" if character == " " else character
        app._driver.send_message(events.Key(key, character))
        while len(widget.text) == before:
            if time.perf_counter() - started > 5:
                raise AssertionError(f"key {character!r} never reached {widget}")
            await asyncio.sleep(0.001)
        latencies.append(time.perf_counter() - started)
        await asyncio.sleep(0.02)
    return latencies


async def press_nowait(app: QwenTuiApp, *keys: str) -> None:
    """Send keys without pilot.press's wait for an idle app (which a streaming reply delays
    until the reply ends)."""
    import asyncio

    from textual import events

    for key in keys:
        character = key if len(key) == 1 else None
        app._driver.send_message(events.Key(key, character))
        await asyncio.sleep(0.01)


def screen_text(app: QwenTuiApp) -> str:
    """The screen as plain text, line by line: what the user would read."""
    strips = app.screen._compositor.render_strips()
    return "\n".join(strip.text for strip in strips)


# ---------------------------------------------------------------- a chat on screen


async def send(pilot, text: str) -> None:
    """Type `text` and press enter; returns as soon as the prompt is sent."""
    await pilot.press(*text)
    await press_nowait(pilot.app, "enter")


async def turns(pilot, *prompts: str) -> None:
    """Send each prompt and wait until its reply is over and shown."""
    for prompt in prompts:
        await send(pilot, prompt)
        await settle(pilot.app, pilot)


@contextlib.asynccontextmanager
async def chatting(
    app: QwenTuiApp, *prompts: str, size: tuple[int, int] = (80, 24)
) -> AsyncIterator[tuple[QwenTuiApp, object]]:
    """`app` running with its model loaded, after `prompts` were sent and answered."""
    async with app.run_test(size=size) as pilot:
        await settle(app, pilot)
        await turns(pilot, *prompts)
        yield app, pilot


def saved(app: QwenTuiApp) -> dict:
    """The current session as written on disk."""
    session = app.chat_screen.session
    return json.loads(app.store.path_for(session.id).read_text(encoding="utf-8"))


def views(app: QwenTuiApp) -> list[MessageView]:
    return app.chat_screen.messages_view.views
