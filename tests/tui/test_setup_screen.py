"""The setup screen, driven by keys against a local hub stand-in serving tiny real models.

Downloads go through the real model_setup code and huggingface_hub to `tests/hub_server.py`;
quantizing runs bigdl on the tiny checkpoints. Most tests load the result with the FakeEngine
(the chat side is tested elsewhere); the first one chats with the real tiny model.
"""

from __future__ import annotations

import re
import shutil
import socket
from collections.abc import Callable
from pathlib import Path

import pytest
from textual import events
from textual.widgets import Input, Static

from qwen_tui.app import QwenTuiApp
from qwen_tui.config import Config, HubConfig
from qwen_tui.conversation import GenerationSettings
from qwen_tui.model_files import list_installed
from qwen_tui.model_setup import setup_job
from qwen_tui.model_setup.download_errors import DownloadError
from qwen_tui.model_setup.download_progress import DownloadProgress
from qwen_tui.model_setup.quantize import QuantizeError
from qwen_tui.model_setup.setup_flow import download_folder
from qwen_tui.model_setup.setup_job import SetupJob
from qwen_tui.screens import setup_choices
from qwen_tui.screens.chat_screen import ChatScreen
from qwen_tui.screens.confirm_dialog import ConfirmDialog
from qwen_tui.screens.setup_relay import DownloadProgressed, ProgressRelay, StageChanged
from qwen_tui.screens.setup_screen import SetupScreen
from qwen_tui.screens.setup_words import failure_text
from qwen_tui.widgets.message_view import MessageView
from qwen_tui.widgets.setup_progress import SetupProgress
from tests.hub_server import HubServer
from tests.tui.conftest import FROZEN_NOW, screen_text, settle, wait_for

QWEN2_REPO = "Qwen/Qwen2.5-0.5B-Instruct"
QWEN2_NAME = "qwen2.5-0.5b-instruct"
CUSTOM_REPO = "someone/custom-chat"
SIZES = [(80, 24), (120, 40)]


@pytest.fixture
def hub(tmp_path: Path, tiny_checkpoint: Callable[[str], Path]):
    """The stand-in hub with the tiny Qwen2 model under a catalog repo id."""
    root = tmp_path / "hub"
    shutil.copytree(tiny_checkpoint("qwen2"), root / QWEN2_REPO)
    with HubServer(root) as server:
        yield server


def config_for(endpoint: str, **changes: object) -> Config:
    return Config(hub=HubConfig(endpoint=endpoint), **changes)  # type: ignore[arg-type]


def closed_port_url() -> str:
    """A local address nothing listens on: connecting is refused at once."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}"


def setup_of(app: QwenTuiApp) -> SetupScreen:
    screen = app.screen
    assert isinstance(screen, SetupScreen), f"the setup screen is not shown: {screen}"
    return screen


async def choose(pilot, option_id: str) -> None:
    """Move the highlight to `option_id` with the arrow keys and press enter."""
    choices = setup_of(pilot.app).choices
    await pilot.pause()
    assert choices.has_focus, "the list should have the focus"
    steps = choices.get_option_index(option_id) - (choices.highlighted or 0)
    await pilot.press(*(["down"] * steps if steps > 0 else ["up"] * -steps), "enter")


async def type_into(pilot, selector: str, text: str) -> None:
    """Empty the focused field and paste `text` in (typing long paths key by key is slow)."""
    field = setup_of(pilot.app).query_one(selector, Input)
    assert field.has_focus, f"{selector} should have the focus"
    await pilot.press("ctrl+a", "ctrl+k")
    field.post_message(events.Paste(text))
    await pilot.pause()
    assert field.value == text


def message(app: QwenTuiApp) -> str:
    box = setup_of(app).query_one("#setup-message")
    return str(box.render()) if box.display else ""


async def until_done(pilot, timeout: float = 60) -> None:
    """Wait for the running job to end (the screen stays, or the chat comes back)."""
    app = pilot.app
    await wait_for(
        pilot, lambda: not isinstance(app.screen, SetupScreen) or not app.screen.running, timeout
    )
    await pilot.pause()


async def until_asked(pilot) -> None:
    """Wait until the confirmation dialog is up and drawn."""

    def asked() -> bool:
        screen = pilot.app.screen
        return isinstance(screen, ConfirmDialog) and bool(screen.query("#cancel"))

    await wait_for(pilot, asked, timeout=60)
    await pilot.pause()


async def until_chat(pilot, app: QwenTuiApp, timeout: float = 60) -> None:
    await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen), timeout)
    await wait_for(pilot, lambda: app.model_state == "ready", timeout)
    await settle(app, pilot)


# ---------------------------------------------------------------- the happy path


@pytest.mark.slow
async def test_first_run_downloads_a_catalog_model_and_the_chat_answers_with_it(hub, paths):
    hub.throttle_bps = 400_000  # the 0.3 MB of weights take ~1 s: long enough to see progress
    config = config_for(hub.url, generation=GenerationSettings(max_new_tokens=6, seed=1))
    app = QwenTuiApp(config, paths)  # the default engine factory: the real tiny model
    async with app.run_test(size=(80, 24)) as pilot:
        await pilot.pause()
        screen = setup_of(app)  # nothing installed: the setup screen opened by itself
        assert screen.query_one("#setup-endpoint").value == hub.url
        await choose(pilot, f"repo:{QWEN2_REPO}")
        progress = screen.query_one(SetupProgress)
        await wait_for(pilot, lambda: "ETA" in progress.numbers, timeout=30)
        shown = screen_text(app)
        assert f"Downloading {QWEN2_REPO} from {hub.url}" in shown
        # bytes so far / in all, speed, ETA, files: "model.safetensors · 12.0 KB / 338.1 KB · …"
        size = r"[\d.]+ [KM]?B"
        assert re.search(rf"{size} / {size} · {size}/s · ETA \d+:\d\d", progress.numbers)
        assert progress.numbers.endswith("/7 files")
        assert "%" in shown and ("█" in shown or "░" in shown)  # readable with NO_COLOR too
        await until_chat(pilot, app)
        (installed,) = list_installed(paths.models_dir)
        assert installed.manifest.source == QWEN2_REPO
        assert app.model is not None and app.model.name == QWEN2_NAME
        assert app.chat_screen.status.model_name == QWEN2_NAME
        await pilot.press(*"hello", "enter")
        await wait_for(pilot, lambda: len(app.chat_screen.messages_view.views) == 2, 10)
        await wait_for(pilot, lambda: not app.chat_screen.generating, timeout=60)
        reply = app.chat_screen.messages_view.views[-1]
        assert isinstance(reply, MessageView) and reply.message.role == "assistant"
        assert reply.message.content and reply.message.stats is not None
        assert reply.message.stats.generated_tokens > 0


async def test_an_installed_catalog_model_opens_without_downloading(hub, make_app, paths):
    app = make_app(models=(), config=config_for(hub.url))
    async with app.run_test(size=(80, 24)) as pilot:
        await choose(pilot, f"repo:{QWEN2_REPO}")
        await until_chat(pilot, app)
        app.open_setup()
        await pilot.pause()
        assert "✓" in screen_text(app)  # marked installed
        hub.requests.clear()
        await choose(pilot, f"repo:{QWEN2_REPO}")
        await wait_for(pilot, lambda: isinstance(app.screen, ChatScreen))
        assert hub.requests == []
        assert app.fake_factory.loaded == [QWEN2_NAME]  # the loaded model is not reloaded


# ---------------------------------------------------------------- cancel and resume


def partial_bytes(paths) -> int:
    """Bytes in huggingface_hub's partial files of the Qwen2 download."""
    partial = download_folder(paths, QWEN2_REPO) / ".cache" / "huggingface" / "download"
    return sum(p.stat().st_size for p in partial.rglob("*.incomplete")) if partial.is_dir() else 0


async def test_escape_cancels_a_download_and_choosing_it_again_resumes(hub, make_app, paths):
    hub.throttle_bps = 60_000  # 0.3 MB of weights: about five seconds
    app = make_app(models=(), config=config_for(hub.url))
    async with app.run_test(size=(80, 24)) as pilot:
        await choose(pilot, f"repo:{QWEN2_REPO}")
        screen = setup_of(app)
        progress = screen.query_one(SetupProgress)
        await wait_for(pilot, lambda: "model.safetensors" in progress.numbers, 30)
        await wait_for(pilot, lambda: partial_bytes(paths) > 0, 30)  # a piece is on disk
        await pilot.press("escape")
        await until_done(pilot, timeout=10)
        assert "Download cancelled" in message(app) and "resume" in message(app)
        assert "◐" in screen_text(app)  # marked partly downloaded
        assert list_installed(paths.models_dir) == []
        first = hub.downloads_of("model.safetensors")
        assert len(first) == 1 and first[0].range is None

        hub.throttle_bps = None
        await pilot.press("enter")  # the highlight is still on the model
        await until_chat(pilot, app)
        resumed = hub.downloads_of("model.safetensors")[-1]
        assert resumed.range and resumed.range.startswith("bytes=")
        assert not resumed.range.startswith("bytes=0-")  # went on from where it stopped
        assert [m.name for m in list_installed(paths.models_dir)] == [QWEN2_NAME]


async def test_quitting_mid_download_stops_the_worker(hub, make_app):
    hub.throttle_bps = 20_000
    app = make_app(models=(), config=config_for(hub.url))
    async with app.run_test(size=(80, 24)) as pilot:
        await choose(pilot, f"repo:{QWEN2_REPO}")
        progress = setup_of(app).query_one(SetupProgress)
        await wait_for(pilot, lambda: "model.safetensors" in progress.numbers, 30)
        await pilot.press("ctrl+q")
    # The 0.3 MB at 20 kB/s would take 15 s more; the cancel stops the thread within one
    # 64 KiB piece (a thread left running would also hold up the exit of the process).
    lock = setup_job.ONE_SETUP_AT_A_TIME
    assert lock.acquire(timeout=8), "the download thread is still running"
    lock.release()


# ---------------------------------------------------------------- errors in words


async def test_unreachable_endpoint_suggests_a_mirror_and_a_new_endpoint_works(hub, make_app):
    app = make_app(models=(), config=config_for(closed_port_url()))
    async with app.run_test(size=(80, 24)) as pilot:
        await choose(pilot, f"repo:{QWEN2_REPO}")
        await until_done(pilot, timeout=20)
        text = message(app)
        assert "Cannot reach" in text and "hf-mirror.com" in text and "Endpoint" in text
        assert "Traceback" not in screen_text(app)
        await type_into(pilot, "#setup-endpoint", hub.url)  # the focus went to the field
        await pilot.press("enter")
        await until_chat(pilot, app)
        assert app.model is not None and app.model.name == QWEN2_NAME


async def test_a_gated_repo_asks_for_a_token_and_uses_it(hub, make_app):
    hub.gated[QWEN2_REPO] = "hf_secret"
    app = make_app(models=(), config=config_for(hub.url))
    async with app.run_test(size=(80, 24)) as pilot:
        await choose(pilot, f"repo:{QWEN2_REPO}")
        await until_done(pilot, timeout=20)
        assert "gated" in message(app) and "token" in message(app).lower()
        token = setup_of(app).query_one("#setup-token")
        assert token.display and token.has_focus
        await type_into(pilot, "#setup-token", "hf_secret")
        await pilot.press("enter")
        await until_chat(pilot, app)
        assert hub.downloads_of("model.safetensors")[-1].headers["authorization"] == (
            "Bearer hf_secret"
        )


@pytest.mark.slow
async def test_remote_code_outside_the_catalog_needs_a_confirmation(
    hub, make_app, paths, tiny_checkpoint
):
    shutil.copytree(tiny_checkpoint("remote"), hub.root / CUSTOM_REPO)
    app = make_app(models=(), config=config_for(hub.url))
    async with app.run_test(size=(80, 24)) as pilot:
        await choose(pilot, setup_choices.OTHER)
        await type_into(pilot, "#setup-source", CUSTOM_REPO)
        await pilot.press("enter")
        await until_asked(pilot)
        dialog_text = " ".join(str(w.render()) for w in app.screen.query(Static))
        assert "trust_remote_code" in dialog_text and "your permissions" in dialog_text
        assert not any(r.path.endswith(".py") for r in hub.requests)  # no code fetched yet
        await pilot.press("n")
        await pilot.pause()
        assert "Not set up" in message(app)
        assert list_installed(paths.models_dir) == []

        await pilot.press("enter")  # the focus is back in the repo id field: ask again
        await until_asked(pilot)
        await pilot.press("y")
        await until_chat(pilot, app, timeout=120)
        (model,) = list_installed(paths.models_dir)
        assert model.manifest.source == CUSTOM_REPO and model.manifest.trust_remote_code
        assert any(r.path.endswith(".py") for r in hub.requests)


def test_failure_texts_say_what_to_do_on_this_screen():
    job = SetupJob("hub", QWEN2_REPO, endpoint="https://huggingface.co")
    cancelled = failure_text(DownloadError("cancelled", "x"), job)
    assert cancelled == (
        "Download cancelled.",
        "Press enter on the same model to resume where it stopped.",
    )
    disk = DownloadError("disk_full", "need 3.1 GB, only 1.0 GB is free")
    assert failure_text(disk, job)[0] == str(disk)  # the numbers come through
    ram = QuantizeError("quantizing needs about 8.0 GB of free RAM, 3.2 GB is available")
    assert failure_text(ram, job) == (str(ram), "")
    surprise = failure_text(KeyError("config"), job)
    assert surprise[0].startswith("KeyError") and "log" in surprise[1]


# ---------------------------------------------------------------- other sources


async def test_import_a_local_folder_from_the_screen(make_app, paths, tiny_checkpoint):
    folder = tiny_checkpoint("qwen2")
    app = make_app(models=())
    async with app.run_test(size=(80, 24)) as pilot:
        await choose(pilot, setup_choices.IMPORT)
        await type_into(pilot, "#setup-source", str(paths.data_dir / "nothing-here"))
        await pilot.press("enter")
        assert "does not exist" in message(app)
        await type_into(pilot, "#setup-source", str(folder))
        await pilot.press("enter")
        await until_chat(pilot, app)
        (model,) = list_installed(paths.models_dir)
        assert model.manifest.source == str(folder.resolve())
        assert app.fake_factory.loaded == [model.name]


@pytest.mark.slow
async def test_the_demo_model_option(make_app, paths):
    app = make_app(models=())
    async with app.run_test(size=(80, 24)) as pilot:
        await choose(pilot, setup_choices.DEMO)
        progress = setup_of(app).query_one(SetupProgress)
        await wait_for(pilot, lambda: "elapsed" in progress.numbers, timeout=30)
        await pilot.press("escape")  # converting cannot be interrupted: it says so, goes on
        assert any("cannot be interrupted" in str(n.message) for n in app._notifications)
        assert setup_of(app).running
        await until_chat(pilot, app, timeout=240)
        assert [m.name for m in list_installed(paths.models_dir)] == ["demo"]


# ---------------------------------------------------------------- keys and the palette


async def test_palette_opens_the_screen_and_escape_goes_back(make_app):
    app = make_app()  # a model is installed: the chat comes first
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert isinstance(app.screen, ChatScreen)
        await pilot.press("ctrl+p", *"set up a model")
        await pilot.pause(0.3)
        await pilot.press("enter")
        await pilot.pause()
        screen = setup_of(app)
        await choose(pilot, setup_choices.OTHER)
        assert screen.query_one("#setup-source").has_focus
        await pilot.press("escape")  # out of the field, back to the list
        assert screen.choices.has_focus
        await pilot.press("escape")  # then out of the screen
        await pilot.pause()
        assert isinstance(app.screen, ChatScreen)
        assert app.fake_factory.loaded == ["demo"]  # the chat's model stays


async def test_a_repo_id_is_checked_before_anything_is_fetched(make_app):
    app = make_app(models=(), config=config_for(closed_port_url()))
    async with app.run_test(size=(80, 24)) as pilot:
        await choose(pilot, setup_choices.OTHER)
        await type_into(pilot, "#setup-source", "not a repo")
        await pilot.press("enter")
        assert "not a repo id" in message(app)
        assert not setup_of(app).running


def test_progress_reaches_the_screen_a_few_times_a_second():
    class Target:
        def __init__(self) -> None:
            self.messages: list[object] = []

        def post_message(self, message: object) -> bool:
            self.messages.append(message)
            return True

    now = [0.0]
    target = Target()
    relay = ProgressRelay(target, every_s=0.25, clock=lambda: now[0])  # type: ignore[arg-type]

    def report(filename: str, done: int, total: int = 1000) -> None:
        relay.download(DownloadProgress(filename, done, total, done, total, 1.0, 1.0, 0, 2))

    for step in range(100):  # 100 reports a second for one second (download.py sends 10)
        now[0] = step / 100
        report("model.safetensors", step)
    assert 4 <= len(target.messages) <= 5
    report("tokenizer.json", 500)  # a new file always shows at once
    report("tokenizer.json", 1000)  # and so does the end
    relay.stage("quantizing", None)  # and a new step
    assert [type(m) for m in target.messages[-3:]] == [
        DownloadProgressed,
        DownloadProgressed,
        StageChanged,
    ]


# ---------------------------------------------------------------- layout


def fixed_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    """Free RAM and disk are this machine's: fix them so snapshots do not change."""
    monkeypatch.setattr(setup_choices, "free_resources", lambda _paths: (6 << 30, 40 << 30))


def snapshot_app(make_app, config: Config | None = None) -> QwenTuiApp:
    app = make_app(models=(), config=config, clock=lambda: FROZEN_NOW)
    app.process_rss = lambda: 300 * 1024 * 1024  # type: ignore[method-assign]
    return app


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_setup_screen_snapshot(snap_compare, make_app, monkeypatch, size):
    fixed_machine(monkeypatch)
    assert snap_compare(snapshot_app(make_app), terminal_size=size)


def test_setup_screen_error_snapshot(snap_compare, make_app, monkeypatch):
    fixed_machine(monkeypatch)

    async def fail(pilot) -> None:
        await choose(pilot, f"repo:{QWEN2_REPO}")
        await until_done(pilot, timeout=20)
        setup_of(pilot.app).query_one("#setup-endpoint").cursor_blink = False
        await pilot.pause()

    app = snapshot_app(make_app, config_for("http://127.0.0.1:9"))
    assert snap_compare(app, terminal_size=(80, 24), run_before=fail)


def test_setup_screen_no_color_snapshot(snap_compare, make_app, monkeypatch):
    """With NO_COLOR the highlighted row and the marks still read."""
    fixed_machine(monkeypatch)
    monkeypatch.setenv("NO_COLOR", "1")
    app = snapshot_app(make_app)
    assert app.no_color
    assert snap_compare(app, terminal_size=(80, 24), press=["down", "down"])
