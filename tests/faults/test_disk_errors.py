"""Full disk and read-only data folder: a failed save says so, keeps the conversation in
memory and retries at the next save point; nothing half-written replaces a good file.

Two ways to fill the disk: a real tiny tmpfs mounted over the sessions folder (needs root;
skipped with the reason otherwise) and ENOSPC injected into the writes of a real process.
"""

from __future__ import annotations

import errno
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.faults.asking import LONG_REPLY, AskProcess

INJECT = str(Path(__file__).with_name("inject_write_error.py"))
RETRYING = b"(will retry; the conversation is kept in memory)"


def leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.endswith(".tmp"))


def assert_complete_reply_saved(paths: Paths, session_id: str, process: AskProcess) -> None:
    store = SessionStore(paths.sessions_dir)
    question, reply = store.load(session_id).messages[-2:]
    assert question.content == "Tell me a long story."
    assert not reply.incomplete and reply.content.encode() + b"\n" == process.stdout.join()
    assert leftovers(paths.sessions_dir) == []


# ---------------------------------------------------------------- injected ENOSPC


@pytest.mark.slow
def test_disk_full_is_told_once_then_a_later_save_works(
    tiny_home: Paths, session_id: str, tmp_path: Path
) -> None:
    flag = tmp_path / "disk-full"
    flag.touch()
    before = tiny_home.sessions_dir.joinpath(f"{session_id}.json").read_bytes()
    process = AskProcess(
        "--session",
        session_id,
        *LONG_REPLY,
        "Tell me a long story.",
        prefix=[INJECT, str(flag), "ENOSPC"],
    )
    assert process.stderr.wait_for(RETRYING, timeout=60), process.stderr.text
    assert process.stdout.wait_for(timeout=60)  # streaming, with the question still unsaved
    assert tiny_home.sessions_dir.joinpath(f"{session_id}.json").read_bytes() == before
    flag.unlink()  # space again
    assert process.finish() == 0, process.stderr.text
    assert process.stderr.text == (
        f"qwen-tui: could not save session {session_id}: disk full (No space left on device) "
        "(will retry; the conversation is kept in memory)\n"
        f"qwen-tui: saved session {session_id} after all\n"
    )
    assert_complete_reply_saved(tiny_home, session_id, process)


@pytest.mark.slow
def test_disk_full_to_the_end_prints_the_reply_and_exits_1(
    tiny_home: Paths, session_id: str, tmp_path: Path
) -> None:
    flag = tmp_path / "disk-full"
    flag.touch()
    path = tiny_home.sessions_dir / f"{session_id}.json"
    before = path.read_bytes()
    process = AskProcess(
        "--session",
        session_id,
        "--max-tokens",
        "300",
        "Tell me a long story.",
        prefix=[INJECT, str(flag), "ENOSPC"],
    )
    assert process.finish() == 1
    printed = process.stdout.join()
    assert len(printed) > 300  # the whole reply, although it could not be saved
    assert process.stderr.text == (
        f"qwen-tui: could not save session {session_id}: disk full (No space left on device) "
        "(will retry; the conversation is kept in memory)\n"
        f"qwen-tui: the reply above was NOT saved to {path} (could not save session "
        f"{session_id}: disk full (No space left on device)); copy it from here if you need it\n"
    )
    assert path.read_bytes() == before  # the good file was never touched
    assert leftovers(tiny_home.sessions_dir) == []


# ---------------------------------------------------------------- a real tiny filesystem


def mount(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(["mount", *args], capture_output=True, text=True)


@pytest.fixture
def tiny_disk(tiny_home: Paths) -> Iterator[Path]:
    """A 256 KiB tmpfs mounted over the sessions folder (root only)."""
    folder = tiny_home.sessions_dir
    folder.mkdir(parents=True, exist_ok=True)
    if os.geteuid() != 0:
        pytest.skip("mounting a tmpfs needs root")
    mounted = mount("-t", "tmpfs", "-o", "size=256k,mode=0700", "tmpfs", str(folder))
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here: {mounted.stderr.strip()}")
    try:
        yield folder
    finally:
        if subprocess.run(["umount", str(folder)], capture_output=True).returncode != 0:
            subprocess.run(["umount", "-l", str(folder)], check=True)


def fill(folder: Path) -> Path:
    filler = folder / "filler.bin"
    fd = os.open(filler, os.O_WRONLY | os.O_CREAT, 0o600)
    try:
        while True:
            os.write(fd, b"\0" * 4096)
    except OSError as error:
        assert error.errno == errno.ENOSPC
    finally:
        os.close(fd)
    return filler


@pytest.mark.slow
def test_real_full_disk_then_read_only_disk(
    tiny_home: Paths, tiny_disk: Path, session_id: str
) -> None:
    path = tiny_disk / f"{session_id}.json"
    before = path.read_bytes()
    filler = fill(tiny_disk)
    process = AskProcess("--session", session_id, *LONG_REPLY, "Tell me a long story.")
    assert process.stderr.wait_for(b"disk full (No space left on device)", timeout=60)
    assert path.read_bytes() == before and leftovers(tiny_disk) == []
    assert process.stdout.wait_for(timeout=60)
    filler.unlink()
    assert process.finish() == 0, process.stderr.text
    assert process.stderr.text.endswith(f"saved session {session_id} after all\n")
    assert_complete_reply_saved(tiny_home, session_id, process)

    saved = path.read_bytes()
    assert mount("-o", "remount,ro", str(tiny_disk)).returncode == 0
    process = AskProcess("--session", session_id, "--max-tokens", "50", "And now?")
    assert process.finish() == 1
    assert len(process.stdout.join()) > 50
    errors = process.stderr.text
    assert f"could not lock session {session_id}: read-only file system" in errors
    assert f"could not save session {session_id}: read-only file system" in errors
    assert "NOT saved" in errors and "Traceback" not in errors
    assert path.read_bytes() == saved
    listing = subprocess.run(
        [sys.executable, "-m", "qwen_tui", "sessions"], capture_output=True, text=True
    )
    assert listing.returncode == 0 and session_id in listing.stdout, listing.stderr
