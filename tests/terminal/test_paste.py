"""Pasting, as terminals paste: every line break a lone CR, with the bracketed-paste markers
(xterm, tmux paste-buffer -p) and without them (older terminals, tmux paste-buffer).

Pasted lines stay lines (in the prompt, on disk, on screen), nothing pasted acts as a key
(a pasted CR does not send, a pasted ESC does not stop or close anything), big pastes keep
the app responsive, and the rename dialog takes a paste whole on one line.
"""

from __future__ import annotations

import time

import pytest

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.terminal.conftest import Launch
from tests.terminal.tui_process import TuiProcess

THREE_LINES = "first pasted line\nsecond pasted line\nthird pasted line"
MODES = pytest.mark.parametrize("bracketed", [True, False], ids=["bracketed", "unbracketed"])
REPLIED = "word11"
"""The end of the FakeEngine's reply: on screen once a message was sent and answered."""


def user_messages(paths: Paths) -> list[str]:
    store = SessionStore(paths.sessions_dir)
    return [
        message.content
        for summary in store.list()
        for message in store.load(summary.id).messages
        if message.role == "user"
    ]


def rows_with(screen: str, text: str) -> list[str]:
    return [row for row in screen.splitlines() if text in row]


def send_and_wait(tui: TuiProcess) -> str:
    tui.press("enter")
    return tui.wait_for_screen(REPLIED)


@MODES
def test_pasted_lines_stay_lines_in_the_prompt_on_disk_and_on_screen(
    fake_home: Paths, launch: Launch, bracketed: bool
) -> None:
    tui = launch()
    tui.wait_drawn()
    tui.paste(THREE_LINES, bracketed=bracketed)
    prompt = tui.wait_for_screen("third pasted line")
    assert rows_with(prompt, "first pasted line") != rows_with(prompt, "second pasted line")
    assert user_messages(fake_home) == []  # no line was sent on its own
    shown = send_and_wait(tui)
    assert user_messages(fake_home) == [THREE_LINES]  # the user's text, unchanged on disk
    assert "␍" not in shown
    for line in THREE_LINES.splitlines():  # each line on a row of its own
        assert any(row.rstrip().endswith(line) for row in rows_with(shown, line)), shown


@MODES
def test_a_pasted_escape_and_cr_are_text_not_keys(
    fake_home: Paths, launch: Launch, bracketed: bool
) -> None:
    """`SAFE ESC X CR AFTER` (issue 16): it sent "SAFE^X" at once and dropped the rest."""
    tui = launch()
    tui.wait_drawn()
    tui.paste("SAFE\x1bX\nAFTER", bracketed=bracketed)
    prompt = tui.wait_for_screen("AFTER")
    assert "SAFE␛X" in prompt  # shown, not acted on
    assert user_messages(fake_home) == []
    send_and_wait(tui)
    assert user_messages(fake_home) == ["SAFE␛X\nAFTER"]


def test_a_coloured_log_pasted_without_brackets_is_one_message(
    fake_home: Paths, launch: Launch
) -> None:
    log = "\x1b[31mERROR\x1b[0m disk full\n\x1b[32mINFO\x1b[0m retrying\n\x1b[1mDONE\x1b[0m"
    tui = launch()
    tui.wait_drawn()
    tui.paste(log, bracketed=False)
    tui.wait_for_screen("DONE")
    assert user_messages(fake_home) == []
    send_and_wait(tui)
    [sent] = user_messages(fake_home)
    assert sent.splitlines() == [
        "␛[31mERROR␛[0m disk full",
        "␛[32mINFO␛[0m retrying",
        "␛[1mDONE␛[0m",
    ]


def test_typed_line_breaks_show_in_the_sent_message(fake_home: Paths, launch: Launch) -> None:
    tui = launch()
    tui.wait_drawn()
    tui.type_slowly("Repeat these lines: roses are red")
    tui.press("ctrl+j")
    tui.type_slowly("violets are blue")
    shown = send_and_wait(tui)
    assert user_messages(fake_home) == ["Repeat these lines: roses are red\nviolets are blue"]
    [first] = rows_with(shown, "roses are red")
    assert "violets" not in first, shown  # not run together on one row
    assert rows_with(shown, "violets are blue")


@MODES
def test_a_200_kb_paste_stays_responsive(fake_home: Paths, launch: Launch, bracketed: bool) -> None:
    lines = [f"log line {index:05d} {'x' * 30}" for index in range(4500)]  # rows unwrapped
    text = "\n".join(lines)
    assert len(text) > 200_000
    tui = launch()
    tui.wait_drawn()
    started = time.monotonic()
    tui.paste(text, bracketed=bracketed)
    tui.wait_for_screen("log line 04499")
    shown = time.monotonic()
    tui.type("Z")  # the next key shows at once after the paste
    tui.wait_for_screen(f"{'x' * 30}Z")
    echoed = time.monotonic()
    took = f"shown {shown - started:.2f} s, key {echoed - shown:.2f} s"
    print(f"\n200 KB paste ({bracketed=}): {took}")
    assert user_messages(fake_home) == []
    tui.press("ctrl+q")
    assert tui.finish(timeout=30) == 0


@MODES
def test_the_rename_dialog_takes_a_paste_whole_on_one_line(
    fake_home: Paths, launch: Launch, bracketed: bool
) -> None:
    fake_home.config_file.write_text('[keys]\n"sidebar.rename" = "f2"\n')
    tui = launch()
    tui.wait_drawn()
    tui.type("hello\r")
    tui.wait_for_screen(REPLIED)
    tui.press("ctrl+b", "ctrl+b")  # hide the sidebar, show it again: its list has focus
    tui.press("f2")
    tui.wait_for_screen("Rename session")
    tui.press("ctrl+u")  # the Input's "delete to the start": the old title goes
    tui.paste("New\x1bname\nsecond line", bracketed=bracketed)
    tui.wait_for_screen("New␛name second line")
    assert "Rename session" in tui.screen_text()  # neither ESC nor CR closed it
    tui.press("enter")
    tui.wait_for_screen(lambda screen: "Rename session" not in screen)
    [summary] = SessionStore(fake_home.sessions_dir).list()
    assert summary.title == "New␛name second line"
