"""The settings dialog's number fields check the same bounds as config.toml and the CLI."""

from __future__ import annotations

import pytest
from textual.widgets import Input

from qwen_tui.conversation import SEED_LIMIT, SETTING_BOUNDS
from qwen_tui.screens.settings_dialog import SettingsDialog
from tests.tui.conftest import settle
from tests.tui.fake_engine import FakeEngine


@pytest.mark.parametrize(
    ("field", "text"),
    [
        ("temperature", "nan"),
        ("temperature", "inf"),
        ("max_new_tokens", "0"),
        ("top_k", "-1"),
        ("seed", str(SEED_LIMIT + 1)),
        ("seed", "-1"),
    ],
)
async def test_dialog_refuses_out_of_bound_values(make_app, field: str, text: str) -> None:
    app = make_app(FakeEngine())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        before = app.chat_screen.session.settings
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, SettingsDialog)
        dialog.query_one(f"#{field}", Input).value = text
        await pilot.press("ctrl+s")
        await pilot.pause()
        assert app.screen is dialog
        shown = str(dialog.query_one("#settings-error").render())
        assert SETTING_BOUNDS[field].words[:30] in shown
        await pilot.press("escape")
        await pilot.pause()
        assert app.chat_screen.session.settings == before


async def test_dialog_takes_the_largest_seed(make_app) -> None:
    app = make_app(FakeEngine())
    async with app.run_test(size=(100, 30)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        app.screen.query_one("#seed", Input).value = str(SEED_LIMIT)
        await pilot.press("ctrl+s")
        await settle(app, pilot)
        assert app.chat_screen.session.settings.seed == SEED_LIMIT
