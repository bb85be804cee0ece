"""Private files, a token that stays in the config, no network unless asked, tracebacks in the log.

Each check runs the real commands a user runs (`ask`, `sessions`, `models`, `doctor`) in
this test's QWEN_TUI_HOME and then looks at everything they left on disk.
"""

from __future__ import annotations

import os
import stat
import subprocess
import sys
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.faults.asking import TINY_MODEL, ask_argv

AUDIT = str(Path(__file__).with_name("audit_network.py"))
CONFIG_TOKEN = "hf_configTOKENdoNotLeak1234567890"
ENV_TOKEN = "hf_envTOKENdoNotLeak0987654321"


def run(argv: list[str], env: dict[str, str] | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        argv, capture_output=True, text=True, timeout=120, env=env or os.environ.copy()
    )


def qwen_tui(*args: str) -> list[str]:
    return [sys.executable, "-m", "qwen_tui", *args]


def every_command(prefix: list[str]) -> list[list[str]]:
    """The commands of a session: start-up and chatting, never setup or download."""
    ask = ask_argv("--new-session", "--max-tokens", "4", "hello")[3:]
    return [
        [*prefix, *ask],
        [*prefix, "sessions"],
        [*prefix, "models"],
        [*prefix, "doctor"],
    ]


def write_config(paths: Paths, text: str, mode: int) -> None:
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(text)
    paths.config_file.chmod(mode)


# ---------------------------------------------------------------- permissions


@pytest.mark.slow
def test_folders_are_0700_and_files_0600(tiny_home: Paths) -> None:
    home = Path(os.environ["QWEN_TUI_HOME"])
    made_by_the_test = {home, *home.rglob("*")}  # the home with the model's symlink
    old_umask = os.umask(0o022)  # the usual umask: group and others could read by default
    try:
        for argv in every_command([sys.executable, "-m", "qwen_tui"]):
            assert run(argv).returncode == 0
    finally:
        os.umask(old_umask)
    made = {p for p in home.rglob("*") if p not in made_by_the_test}
    modes = {str(p.relative_to(home)): stat.S_IMODE(p.lstat().st_mode) for p in made}
    folders = {name: mode for name, mode in modes.items() if (home / name).is_dir()}
    files = {name: mode for name, mode in modes.items() if name not in folders}
    assert {"data/sessions", "state", "state/logs"} <= folders.keys()
    assert "state/logs/qwen-tui.log" in files
    assert any(name.endswith(".json") for name in files)
    assert any(name.endswith(".json.lock") for name in files)
    assert {
        name: oct(mode) for name, mode in modes.items() if mode != 0o700 and name in folders
    } == {}
    assert {name: oct(mode) for name, mode in files.items() if mode != 0o600} == {}


def test_config_holding_a_token_warns_when_others_can_read_it(paths: Paths) -> None:
    write_config(paths, f'[hub]\ntoken = "{CONFIG_TOKEN}"\n', 0o644)
    warned = run(qwen_tui("sessions"))
    assert warned.returncode == 0
    assert "holds a hub token and other users can read it (mode 0644)" in warned.stderr
    assert f"chmod 600 {paths.config_file}" in warned.stderr
    assert CONFIG_TOKEN not in warned.stderr
    paths.config_file.chmod(0o600)
    assert run(qwen_tui("sessions")).stderr == ""


@pytest.mark.slow
def test_hub_token_is_never_written_to_sessions_logs_or_output(tiny_home: Paths) -> None:
    write_config(tiny_home, f'[hub]\ntoken = "{CONFIG_TOKEN}"\n', 0o600)
    env = {**os.environ, "HF_TOKEN": ENV_TOKEN}
    outputs = []
    for argv in every_command([sys.executable, "-m", "qwen_tui"]):
        result = run(argv, env)
        assert result.returncode == 0, result.stderr
        outputs += [result.stdout, result.stderr]
    home = Path(os.environ["QWEN_TUI_HOME"])
    written = [
        p
        for p in home.rglob("*")
        if p.is_file() and p != tiny_home.config_file and tiny_home.models_dir not in p.parents
    ]
    assert any(p.suffix == ".json" for p in written) and any(p.suffix == ".log" for p in written)
    for token in (CONFIG_TOKEN, ENV_TOKEN):
        assert [p for p in written if token.encode() in p.read_bytes()] == []
        assert [text for text in outputs if token in text] == []


# ---------------------------------------------------------------- network


class RecordingServer(ThreadingHTTPServer):
    """Answers 404 to everything and remembers every request (as hub and as proxy)."""

    def __init__(self) -> None:
        self.requests: list[str] = []
        super().__init__(("127.0.0.1", 0), _Recorder)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}"


class _Recorder(BaseHTTPRequestHandler):
    server: RecordingServer

    def _record(self) -> None:
        self.server.requests.append(f"{self.command} {self.path}")
        self.send_error(404)

    do_GET = do_HEAD = do_POST = do_PUT = do_CONNECT = _record

    def log_message(self, *args: object) -> None:
        pass


@pytest.fixture
def recorder() -> Iterator[RecordingServer]:
    server = RecordingServer()
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield server
    server.shutdown()
    server.server_close()


@pytest.mark.slow
def test_no_network_at_start_up_or_while_chatting(
    tiny_home: Paths, recorder: RecordingServer, tmp_path: Path
) -> None:
    audit_log = tmp_path / "network.log"
    audit_log.touch()
    env = {
        **os.environ,
        "HF_ENDPOINT": recorder.url,  # where the hub would be asked
        # ...and every other HTTP(S) request would go through the recorder as a proxy
        **{name: recorder.url for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")},
        **{name.lower(): recorder.url for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")},
    }
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    for argv in every_command([sys.executable, AUDIT, str(audit_log)]):
        result = run(argv, env)
        assert result.returncode == 0, result.stderr
    assert recorder.requests == []
    assert audit_log.read_text() == ""  # not even a DNS lookup
    assert SessionStore(tiny_home.sessions_dir).list()  # the chat did happen
    # The recorder works: a request that does reach it is recorded.
    fetch = f"import urllib.request as u; u.urlopen('{recorder.url}/x')"
    check = run([sys.executable, "-c", fetch])
    assert check.returncode != 0 and recorder.requests == ["GET /x"]


# ---------------------------------------------------------------- logs


@pytest.mark.slow
def test_generation_error_traceback_goes_to_the_log_and_one_line_to_the_screen(
    tiny_home: Paths, session_id: str
) -> None:
    store = SessionStore(tiny_home.sessions_dir)
    session = store.load(session_id)
    # A hand-edited session file whose settings the model's sampler refuses mid-generation.
    session.settings = session.settings.with_changes(repetition_penalty=-1.0)
    store.save(session)
    result = run(ask_argv("--session", session_id, "--max-tokens", "5", "hi"))
    assert result.returncode == 1
    (line,) = result.stderr.splitlines()
    assert line.startswith("qwen-tui: generation failed: ") and "penalty" in line
    assert "Traceback" not in result.stderr
    log = (tiny_home.log_dir / "qwen-tui.log").read_text()
    assert "ERROR qwen_tui.engine" in log and "Traceback (most recent call last)" in log
    assert line.removeprefix("qwen-tui: generation failed: ") in log
    saved = store.load(session_id)
    assert saved.model == TINY_MODEL and saved.messages[-2].content == "hi"
    assert saved.messages[-1].error == line.removeprefix("qwen-tui: ")
