"""Context from the shell and from files, as a user meets it in a terminal: `!command`
with its confirmation, `@file`, and `some-command | qwen-tui` with keys still typed at the
terminal (the real program on a pty, the FakeEngine in place of a model)."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.terminal.conftest import FAKE_APP, Launch
from tests.terminal.tui_process import REPO, TuiProcess

REPLIED = "word11"
"""The end of the FakeEngine's reply: on screen once a message was sent and answered."""


def user_messages(paths: Paths) -> list:
    store = SessionStore(paths.sessions_dir)
    return [
        message
        for summary in store.list()
        for message in store.load(summary.id).messages
        if message.role == "user"
    ]


def wait_saved(paths: Paths, timeout: float = 30) -> list:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if found := user_messages(paths):  # (saves are atomic: never half a file)
            return found
        time.sleep(0.05)
    raise AssertionError("no user message was saved")


def answer_dialog(tui: TuiProcess, title: str, key: str, tries: int = 20) -> None:
    """Press `key` until the dialog `title` is gone: a dialog ignores keys typed before it
    was drawn, and the terminal may show it a moment before it takes answers."""
    for _ in range(tries):
        tui.type(key)
        try:
            tui.wait_for_screen(lambda text: title not in text, timeout=1)
            return
        except AssertionError:
            continue
    raise AssertionError(f"the dialog {title!r} never took {key!r}")


def test_bang_command_runs_after_yes_and_is_attached(
    fake_home: Paths, launch: Launch, tmp_path: Path
) -> None:
    (tmp_path / "marker-file.txt").write_text("")
    tui = launch(cwd=tmp_path)
    tui.wait_drawn()
    tui.type_slowly("!echo hi from $PWD; ls")
    tui.press("enter")
    tui.wait_for_screen("Run a command")
    # The command itself, before it runs (waited for: the title can be read a moment
    # before the rest of the dialog reaches the screen).
    tui.wait_for_screen("$ echo hi from $PWD; ls")
    answer_dialog(tui, "Run a command", "y")
    tui.wait_for_screen("📎 $ echo hi from")  # waiting in the draft, with its size
    tui.wait_for_screen("tokens")
    tui.type_slowly("explain")
    tui.press("enter")
    screen = tui.wait_for_screen(REPLIED)
    assert "▶ 📎 $ echo hi from $PWD; ls (exit 0)" in screen  # collapsed in the conversation
    (message,) = wait_saved(fake_home)
    assert message.content == "explain"
    (attachment,) = message.attachments
    assert f"hi from {tmp_path}" in attachment.text  # ran in the working directory
    assert "marker-file.txt" in attachment.text


def test_at_file_is_attached_and_binary_refused(
    fake_home: Paths, launch: Launch, tmp_path: Path
) -> None:
    (tmp_path / "notes.txt").write_text("the meeting moved to friday\n")
    (tmp_path / "blob.bin").write_bytes(b"\x00\x01\x02")
    tui = launch(cwd=tmp_path)
    tui.wait_drawn()
    tui.type_slowly("what about @blob.bin")
    tui.wait_for_screen("binary file")  # said before sending
    tui.press("enter")
    tui.wait_for_screen("Not sent")
    assert user_messages(fake_home) == []
    for _ in "blob.bin":
        tui.press("backspace")
    tui.type_slowly("not")
    tui.press("tab")  # completes @not -> @notes.txt
    tui.wait_for_screen("@notes.txt")
    tui.press("enter")
    tui.wait_for_screen(REPLIED)
    (message,) = wait_saved(fake_home)
    assert message.content == "what about @notes.txt"
    assert message.attachments[0].text == "the meeting moved to friday\n"


def test_text_piped_into_qwen_tui_waits_in_the_draft_and_keys_still_work(
    fake_home: Paths, launch: Launch, tmp_path: Path
) -> None:
    read_end, write_end = os.pipe()
    tui = launch(stdin=read_end, controlling_terminal=True, cwd=tmp_path)
    os.close(read_end)
    os.write(write_end, b"kernel: disk sda1 full\n" * 3)
    os.close(write_end)  # the writer is done: qwen-tui reads to the end, then draws
    tui.wait_drawn()
    tui.wait_for_screen("📎 piped stdin · 3 lines")
    tui.type_slowly("why")  # typed at the terminal, not read from the pipe
    tui.wait_for_screen("why")
    tui.press("enter")
    tui.wait_for_screen(REPLIED)
    (message,) = wait_saved(fake_home)
    assert message.content == "why"
    assert message.attachments[0].kind == "stdin"
    assert message.attachments[0].text == "kernel: disk sda1 full\n" * 3


def test_a_pipe_without_a_terminal_is_refused_clearly(fake_home: Paths, tmp_path: Path) -> None:
    result = subprocess.run(
        [sys.executable, *FAKE_APP],
        input=b"some text",
        capture_output=True,
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": str(REPO)},
        start_new_session=True,  # no controlling terminal: /dev/tty cannot open
        timeout=60,
    )
    assert result.returncode != 0
    assert b"no terminal to take keys from" in result.stderr
    assert b"qwen-tui ask" in result.stderr
