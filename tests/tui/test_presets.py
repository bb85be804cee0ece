"""Presets and defaults from the settings dialog: saved to presets.toml (config.toml is never
written), picked from the command palette, and new sessions start from saved defaults."""

from __future__ import annotations

from textual.widgets import Input

from qwen_tui.paths import Paths
from qwen_tui.screens.settings_dialog import SettingsDialog
from qwen_tui.screens.text_input_dialog import TextInputDialog
from qwen_tui.store.presets import load_presets
from tests.tui.conftest import press_nowait, settle, wait_for
from tests.tui.fake_engine import FakeEngine


async def open_settings(pilot, system_prompt: str, temperature: str) -> SettingsDialog:
    await pilot.press("ctrl+s")
    await settle(pilot.app, pilot)
    dialog = pilot.app.screen
    assert isinstance(dialog, SettingsDialog)
    dialog.query_one("#system-prompt").load_text(system_prompt)
    dialog.query_one("#temperature", Input).value = temperature
    return dialog


async def palette(pilot, text: str) -> None:
    await pilot.press("ctrl+p")
    await pilot.pause()
    await pilot.press(*text)
    await pilot.pause(0.3)
    await pilot.press("enter")
    await settle(pilot.app, pilot)


async def test_a_preset_saved_in_one_session_is_used_in_another(make_app, paths: Paths):
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press(*"hi")
        await press_nowait(app, "enter")  # a session with a turn: ctrl+n leaves it
        await settle(app, pilot)
        await open_settings(pilot, "Answer in one line.", "0.2")
        await pilot.click("#save-preset")
        await settle(app, pilot)
        assert isinstance(app.screen, TextInputDialog)
        await pilot.press(*"Terse", "enter")
        await settle(app, pilot)
        assert not isinstance(app.screen, SettingsDialog | TextInputDialog)
        first = app.chat_screen.session
        assert (first.system_prompt, first.settings.temperature) == ("Answer in one line.", 0.2)
        [preset] = load_presets(paths.presets_file).named.values()
        assert (preset.name, preset.system_prompt) == ("Terse", "Answer in one line.")
        assert preset.settings == first.settings

        await pilot.press("ctrl+n")
        await settle(app, pilot)
        fresh = app.chat_screen.session
        assert fresh.id != first.id and fresh.system_prompt != "Answer in one line."
        await palette(pilot, "Preset: Terse")
        assert (fresh.system_prompt, fresh.settings.temperature) == ("Answer in one line.", 0.2)
        assert app.store.load(fresh.id).settings.temperature == 0.2  # saved with it
    assert not paths.config_file.exists()  # config.toml is the user's: never written


async def test_saved_defaults_are_where_new_sessions_start(make_app, paths: Paths):
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await open_settings(pilot, "Be brief.", "0.1")
        await pilot.click("#save-defaults")
        await settle(app, pilot)
        first = app.chat_screen.session.id
        await pilot.press(*"hi")
        await press_nowait(app, "enter")
        await settle(app, pilot)
        await pilot.press("ctrl+n")
        await settle(app, pilot)
        session = app.chat_screen.session
        assert session.id != first
        assert (session.system_prompt, session.settings.temperature) == ("Be brief.", 0.1)
    # and in the next run of the app
    again = make_app(FakeEngine(), new_session=True)
    async with again.run_test(size=(80, 24)) as pilot:
        await settle(again, pilot)
        assert again.chat_screen.session.system_prompt == "Be brief."


async def test_cancelling_the_name_goes_back_to_the_dialog_with_the_values(make_app, paths):
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        dialog = await open_settings(pilot, "Kept while naming.", "0.3")
        await pilot.click("#save-preset")
        await settle(app, pilot)
        await pilot.press("escape")
        await settle(app, pilot)
        assert app.screen is dialog
        assert dialog.query_one("#temperature", Input).value == "0.3"
        await pilot.click("#save-preset")
        await settle(app, pilot)
        await pilot.press(*"   ", "enter")  # a blank name is a cancel too
        await settle(app, pilot)
        assert app.screen is dialog and not paths.presets_file.exists()


async def test_an_out_of_bounds_value_is_not_saved_as_a_preset(make_app, paths: Paths):
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        dialog = await open_settings(pilot, "x", "99")
        await pilot.click("#save-preset")
        await settle(app, pilot)
        assert app.screen is dialog  # no name asked: the value is pointed at instead
        assert "Temperature" in str(dialog.query_one("#settings-error").render())
        assert not paths.presets_file.exists()


async def test_a_damaged_preset_is_named_at_start_and_the_rest_are_offered(make_app, paths):
    paths.presets_file.parent.mkdir(parents=True, exist_ok=True)
    paths.presets_file.write_text(
        '[presets.Good]\nsystem_prompt = "Fine."\n[presets.Bad]\ntemperature = -1\n'
    )
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await wait_for(pilot, lambda: app._notifications)
        [warning] = [n for n in app._notifications if n.title == "presets.toml"]
        assert "'Bad' skipped" in warning.message and "temperature" in warning.message
        await palette(pilot, "Preset: Good")
        assert app.chat_screen.session.system_prompt == "Fine."
