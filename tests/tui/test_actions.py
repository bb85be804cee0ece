"""Dialogs and global actions: settings, copy, export, model switch, help, palette, quit."""

from __future__ import annotations

import json

from textual.widgets import Input, OptionList, TextArea

from qwen_tui.config import Config
from qwen_tui.screens.help_screen import HelpScreen
from qwen_tui.screens.settings_dialog import SettingsDialog
from qwen_tui.widgets.message_view import MessageView
from tests.tui.conftest import (
    install_fake_model,
    press_nowait,
    screen_text,
    settle,
    turns,
    wait_for,
)
from tests.tui.fake_engine import FakeEngine


async def test_settings_dialog_saves_prompt_and_sampling_with_the_session(make_app):
    engine = FakeEngine(["one", "two"])
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await turns(pilot, "hi")
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        assert isinstance(dialog, SettingsDialog)
        dialog.query_one("#system-prompt", TextArea).load_text("You are a pirate.")
        dialog.query_one("#temperature", Input).value = "0.3"
        dialog.query_one("#top_k", Input).value = "7"
        dialog.query_one("#max_new_tokens", Input).value = "99"
        await pilot.click("#save")
        await settle(app, pilot)
        assert not isinstance(app.screen, SettingsDialog)
        on_disk = json.loads(app.store.path_for(app.chat_screen.session.id).read_text())
        assert on_disk["system_prompt"] == "You are a pirate."
        assert on_disk["settings"]["temperature"] == 0.3
        assert on_disk["settings"]["top_k"] == 7
        assert "You are a pirate." in str(app.chat_screen.query_one("#system-line").render())
        await pilot.press("ctrl+r")
        await settle(app, pilot)
        asked, settings = engine.calls[-1]
        assert asked[0].content == "You are a pirate."
        assert (settings.temperature, settings.top_k, settings.max_new_tokens) == (0.3, 7, 99)


async def test_settings_dialog_rejects_bad_values_and_cancel_changes_nothing(make_app):
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        before = app.chat_screen.session.settings
        await pilot.press("ctrl+s")
        await pilot.pause()
        dialog = app.screen
        dialog.query_one("#top_p", Input).value = "1.5"
        await pilot.press("ctrl+s")  # saves from inside the dialog too
        await pilot.pause()
        assert app.screen is dialog
        assert "Top-p" in str(dialog.query_one("#settings-error").render())
        await pilot.press("escape")
        await pilot.pause()
        assert not isinstance(app.screen, SettingsDialog)
        assert app.chat_screen.session.settings == before


async def test_copy_last_answer_or_the_focused_message(make_app):
    app = make_app(FakeEngine("the **answer**"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press("ctrl+y")
        assert app.clipboard == ""  # nothing to copy yet
        await turns(pilot, "the question")
        await pilot.press("ctrl+y")
        assert app.clipboard == "the **answer**"
        app.chat_screen.query(MessageView).first().focus()
        await pilot.press("ctrl+y")
        assert app.clipboard == "the question"


async def test_copy_leaves_out_control_characters_and_says_so(make_app):
    # Pasted raw into a shell, ESC[201~ ends bracketed paste and the CR runs the command.
    hostile = "ok\x1b[201~echo PWNED > file\r\x07\x9b2J done"
    app = make_app(FakeEngine(hostile))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await turns(pilot, "the question")
        await pilot.press("ctrl+y")
        assert app.clipboard == "ok[201~echo PWNED > file\n2J done"
        assert any("3 control characters left out" in str(n.message) for n in app._notifications)


async def test_export_writes_markdown_and_reports_the_path(make_app, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    app = make_app(FakeEngine("Use `ls -la`."))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await turns(pilot, "list files")
        await pilot.press("ctrl+e")
        await pilot.pause()
        field = app.screen.query_one("#dialog-input", Input)
        assert field.value == str(tmp_path / "list-files.md")
        await pilot.press("enter")
        await settle(app, pilot)
        text = (tmp_path / "list-files.md").read_text()
        assert "# list files" in text
        assert "## You\n\nlist files" in text and "## Assistant\n\nUse `ls -la`." in text
        assert any(str(tmp_path / "list-files.md") in str(n.message) for n in app._notifications)
        # a path typed by the user, relative to the working folder
        await pilot.press("ctrl+e")
        await pilot.pause()
        app.screen.query_one("#dialog-input", Input).value = "out/chat.md"
        await pilot.press("enter")
        await settle(app, pilot)
        assert (tmp_path / "out" / "chat.md").read_text() == text


async def test_model_switch_lists_installed_models_and_loads_the_choice(make_app, paths):
    install_fake_model(paths, "other", low_bit="sym_int8")
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.fake_factory.loaded == ["demo"]
        await pilot.press("ctrl+o")
        await pilot.pause()
        options = app.screen.query_one(OptionList)
        labels = [str(options.get_option_at_index(i).prompt) for i in range(options.option_count)]
        assert any("demo" in label for label in labels)
        assert any("other" in label and "sym_int8" in label for label in labels)
        await pilot.press("down", "enter")
        await settle(app, pilot)
        assert app.fake_factory.loaded == ["demo", "other"]
        assert app.fake_factory.engines[0].closed
        assert app.chat_screen.status.model_name == "other"
        assert app.chat_screen.status.state == "ready"


async def test_help_shows_effective_keys_after_rebinding(make_app):
    config = Config(keys={"session.new": "ctrl+t", "message.copy": "f6"})
    app = make_app(FakeEngine("x"), config=config)
    async with app.run_test(size=(100, 40)) as pilot:
        await settle(app, pilot)
        await pilot.press("f1")
        await pilot.pause()
        assert isinstance(app.screen, HelpScreen)
        rows = {binding_id: keys for keys, _what, binding_id in app.help_rows()}
        assert rows["session.new"] == "ctrl+t"
        assert rows["message.copy"] == "f6"
        assert rows["session.regenerate"] == "ctrl+r"
        shown = screen_text(app)
        assert "ctrl+t" in shown and "Start a new session" in shown
        assert "f6" in shown and "ctrl+y" not in shown
        await pilot.press("escape")
        await turns(pilot, "first")
        first = app.chat_screen.session.id
        await pilot.press("ctrl+n")  # no longer bound
        await settle(app, pilot)
        assert app.chat_screen.session.id == first
        await pilot.press("ctrl+t")
        await settle(app, pilot)
        assert app.chat_screen.session.id != first


async def test_command_palette_runs_actions(make_app):
    app = make_app(FakeEngine("x"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await turns(pilot, "first")
        first = app.chat_screen.session.id
        await pilot.press("ctrl+p")
        await pilot.pause()
        await pilot.press(*"new session")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await settle(app, pilot)
        assert app.chat_screen.session.id != first


async def test_quit_while_generating_saves_the_partial_reply(make_app):
    engine = FakeEngine(" ".join(["word"] * 500), delay=0.01)
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await pilot.press(*"go")
        await press_nowait(app, "enter")
        await wait_for(pilot, lambda: len(getattr(app.chat_screen.reply, "content", "")) > 10)
        session_id = app.chat_screen.session.id
        await press_nowait(app, "ctrl+q")
        await wait_for(pilot, lambda: not app.is_running)
    assert app.return_code == 0
    data = json.loads(app.store.path_for(session_id).read_text())
    reply = data["messages"][1]
    assert reply["content"].startswith("word word")
    assert reply["stats"]["stop_reason"] == "stopped"


async def test_ctrl_b_toggles_the_sidebar_which_hides_itself_when_narrow(make_app):
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        sidebar = app.chat_screen.sidebar
        assert sidebar.display and sidebar.size.width < 30  # narrow at 80 columns
        await pilot.press("ctrl+b")
        assert not sidebar.display
        await pilot.press("ctrl+b")
        assert sidebar.display and sidebar.session_list.has_focus
        await pilot.resize_terminal(50, 20)
        await pilot.pause()
        assert not sidebar.display
        await pilot.resize_terminal(120, 40)
        await pilot.pause()
        assert sidebar.display and sidebar.size.width >= 30


async def test_config_can_hide_stats_and_start_without_sidebar(make_app):
    from qwen_tui.config import UIConfig

    app = make_app(FakeEngine("plain"), config=Config(ui=UIConfig(show_stats=False, sidebar=False)))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert not app.chat_screen.sidebar.display
        await turns(pilot, "hi")
        reply = app.chat_screen.query(MessageView).last()
        assert "tok/s" not in screen_text(app)
        assert reply.message.stats is not None  # still measured and saved


async def test_runs_with_no_color(make_app, monkeypatch):
    monkeypatch.setenv("NO_COLOR", "1")
    app = make_app(FakeEngine("monochrome"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await turns(pilot, "hi")
        assert "monochrome" in screen_text(app)


async def test_palette_lists_the_chat_actions_with_their_keys(make_app):
    app = make_app(FakeEngine())
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        commands = {c.title: c.help for c in app.get_system_commands(app.chat_screen)}
        for title in ("New session", "Regenerate", "Settings", "Export", "Copy answer", "Model"):
            assert title in commands
        assert "(ctrl+o)" in commands["Model"]
        assert "Stop" not in commands  # only offered while a reply streams
