"""Quitting while a reply could not be saved: retry, then ask; the status bar says "unsaved"."""

from __future__ import annotations

import json

from qwen_tui.screens.unsaved_dialog import UnsavedDialog
from qwen_tui.store import StoreError
from tests.tui.conftest import press_nowait, settle, wait_for
from tests.tui.fake_engine import FakeEngine

REPLY = " ".join(f"word{i}" for i in range(60))


class FailingDisk:
    """Makes the app's session saves fail while `full` is set, as a full disk does."""

    def __init__(self, app) -> None:
        self.full = False
        self._save = app.store.save
        app.store.save = self.save

    def save(self, session) -> None:
        if self.full:
            raise StoreError(f"could not save session {session.id}: No space left on device")
        self._save(session)


def status(app) -> str:
    return str(app.chat_screen.status.render())


async def reply_not_saved(app, pilot) -> FailingDisk:
    disk = FailingDisk(app)
    await settle(app, pilot)
    await pilot.press(*"hello")
    await press_nowait(app, "enter")
    await wait_for(pilot, lambda: app.chat_screen.generating)
    disk.full = True
    await wait_for(pilot, lambda: not app.chat_screen.generating, timeout=10)
    await settle(app, pilot)
    assert "unsaved" in status(app)
    return disk


async def test_quit_retries_then_asks_and_try_again_saves_once_the_disk_is_back(make_app):
    app = make_app(FakeEngine(REPLY))
    async with app.run_test(size=(100, 30)) as pilot:
        disk = await reply_not_saved(app, pilot)
        await pilot.press("ctrl+q")
        await settle(app, pilot)
        assert isinstance(app.screen, UnsavedDialog)  # not quit
        await pilot.press("r")  # still full: asked again
        await settle(app, pilot)
        assert isinstance(app.screen, UnsavedDialog) and app.is_running
        disk.full = False
        await pilot.press("r")
        await settle(app, pilot)
        assert not app.is_running
    saved = json.loads(app.store.path_for(app.chat_screen.session.id).read_text())
    assert saved["messages"][-1]["content"] == REPLY


async def test_escape_stays_and_a_later_save_clears_unsaved(make_app):
    app = make_app(FakeEngine(REPLY))
    async with app.run_test(size=(100, 30)) as pilot:
        disk = await reply_not_saved(app, pilot)
        await pilot.press("ctrl+q")
        await settle(app, pilot)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.is_running and app.focused is app.chat_screen.prompt
        disk.full = False
        await pilot.press(*"next")
        await press_nowait(app, "enter")  # the next turn saves the whole session
        await wait_for(pilot, lambda: "unsaved" not in status(app))
        await settle(app, pilot)
        await pilot.press("ctrl+q")
        await settle(app, pilot)
        assert not app.is_running


async def test_save_elsewhere_writes_the_session_and_quits(make_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine(REPLY))
    async with app.run_test(size=(100, 30)) as pilot:
        await reply_not_saved(app, pilot)
        await pilot.press("ctrl+q")
        await settle(app, pilot)
        await pilot.press("s")
        await settle(app, pilot)
        field = app.screen.query_one("#dialog-input")
        field.value = str(tmp_path / "rescued.json")
        await pilot.press("enter")
        await settle(app, pilot)
        assert not app.is_running
    copy = json.loads((tmp_path / "rescued.json").read_text())
    assert copy["messages"][-1]["content"] == REPLY
    assert (tmp_path / "rescued.json").stat().st_mode & 0o777 == 0o600


async def test_quit_anyway_quits(make_app):
    app = make_app(FakeEngine(REPLY))
    async with app.run_test(size=(100, 30)) as pilot:
        await reply_not_saved(app, pilot)
        await pilot.press("ctrl+q")
        await settle(app, pilot)
        await pilot.press("q")
        await settle(app, pilot)
        assert not app.is_running
