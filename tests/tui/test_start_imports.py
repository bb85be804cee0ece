"""The chat's first frame imports only what it draws; the rest loads when first used.

Issue 14: the launch time (benchmarks/launch_time.py measures it) depends on what is imported
before the prompt is drawn. The setup screen and its download/quantize stack, the dialogs, the
remote engine, export and the Markdown stack of messages are imported by the code that uses
them. A plain `import` moved back to the top of a module would silently cost the start again;
these tests see it in a fresh process's sys.modules.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

NOT_BEFORE_USE = [
    "qwen_tui.setup_cli",
    "qwen_tui.screens.setup_screen",
    "qwen_tui.model_setup.setup_flow",
    "qwen_tui.model_setup.download",
    "qwen_tui.model_setup.quantize",
    "qwen_tui.engine.remote",
    "qwen_tui.screens.help_screen",
    "qwen_tui.screens.model_picker",
    "qwen_tui.screens.session_questions",
    "qwen_tui.screens.settings_dialog",
    "qwen_tui.screens.session_file_prompt",
    "qwen_tui.screens.unsaved_quit",
    "qwen_tui.screens.reply_editing",
    "qwen_tui.screens.reply_editor",
    "qwen_tui.store.export",
    "qwen_tui.widgets.message_view",
    "markdown_it",
    "torch",
    "transformers",
]
"""Not needed to draw an empty chat: each is imported where it is first used."""

# The start as `qwen-tui` makes it (cli.main's imports, then the app) up to the first frame of
# the chat with a model installed; then each thing the user may open next, one at a time.
FIRST_FRAME = """
import asyncio, json, sys
from qwen_tui import cli
from qwen_tui.cli_settings import load_settings
from qwen_tui.commands import app_start, model_choice  # what cli.run_app imports
from qwen_tui.app import QwenTuiApp
from qwen_tui.paths import get_paths
from tests.tui.conftest import install_fake_model
from tests.tui.fake_engine import FakeEngine

def loaded():
    return [m for m in json.loads(sys.argv[1]) if m in sys.modules]

async def main():
    try:
        cli.main(["--version"])  # main's own imports, before it hands over to the app
    except SystemExit:
        pass
    paths = get_paths()
    install_fake_model(paths, "fake")
    config, paths = load_settings()
    app = QwenTuiApp(config, paths, engine_factory=lambda model: FakeEngine("hi"))
    async with app.run_test(size=(80, 24)) as pilot:
        while app.model_state != "ready" or not app.chat_screen.prompt.is_mounted:
            await pilot.pause(0.01)
        await pilot.pause()
        report = {"first frame": loaded(), "opened": {}}
        screen = app.chat_screen
        for call, module in json.loads(sys.argv[2]):
            eval(call)
            for _ in range(500):
                if app.screen is not screen and app.screen.is_mounted:
                    break
                await pilot.pause(0.01)
            await pilot.pause()
            report["opened"][call] = [type(app.screen).__name__, module in sys.modules]
            app.pop_screen()
            await pilot.pause()
    print(json.dumps(report))

asyncio.run(main())
"""

OPENED_LATER = [
    ("app.open_setup()", "qwen_tui.screens.setup_screen", "SetupScreen"),
    ("app.action_help()", "qwen_tui.screens.help_screen", "HelpScreen"),
    ("screen.action_settings()", "qwen_tui.screens.settings_dialog", "SettingsDialog"),
    ("screen.action_switch_model()", "qwen_tui.screens.model_picker", "ModelPicker"),
]
"""What the user opens after the start, and the module each brings in."""


def run_start(home: Path) -> dict:
    env = {**os.environ, "QWEN_TUI_HOME": str(home), "PYTHONPATH": str(REPO)}
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            FIRST_FRAME,
            json.dumps(NOT_BEFORE_USE),
            json.dumps([(call, module) for call, module, _ in OPENED_LATER]),
        ],
        capture_output=True,
        text=True,
        timeout=120,
        cwd=REPO,
        env=env,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    return json.loads(result.stdout.strip().splitlines()[-1])


@pytest.fixture(scope="module")
def start_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    return run_start(tmp_path_factory.mktemp("home"))


def test_the_first_frame_imports_none_of_what_it_does_not_draw(start_report):
    assert start_report["first frame"] == []


def test_what_the_user_opens_later_opens_and_imports_then(start_report):
    # The imports moved into functions still work, and sys.modules does show a module once
    # used (so the first test would see one imported before the first frame).
    assert start_report["opened"] == {call: [screen, True] for call, _, screen in OPENED_LATER}
