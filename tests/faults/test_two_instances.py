"""Two qwen-tuis on one data folder (two SSH logins): never a silent lost update.

The first to open a session for writing holds its lock; the second opens it read-only (the
TUI) or refuses to add to it (`ask`, exit 2), naming the holder. Real processes hold the
locks here; SIGKILL shows that a dead holder never leaves a stale lock.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_tui.conversation import Message, StopReason
from qwen_tui.paths import Paths
from qwen_tui.store import (
    SessionChangedError,
    SessionLockedError,
    SessionStore,
)
from tests.faults.asking import LONG_REPLY, AskProcess, ask_argv, make_session

# A second process that opens a session like the TUI will, then adds a turn for each line
# it reads, until its stdin closes.
HOLDER = """
import sys
from pathlib import Path
from qwen_tui.store import SessionStore
store = SessionStore(Path(sys.argv[1]))
opened = store.open(sys.argv[2])
print("read-only" if opened.read_only else "writing", flush=True)
for line in sys.stdin:
    opened.session.add("user", line.strip())
    store.save(opened.session)
    print("saved", flush=True)
"""

# A process that locks a session (which may not exist yet) and holds it until killed.
LOCK_ONLY = """
import sys
from pathlib import Path
from qwen_tui.store import SessionStore
lock = SessionStore(Path(sys.argv[1])).lock(sys.argv[2])
print("locked", flush=True)
sys.stdin.read()
"""


class Holder:
    def __init__(self, folder: Path, session_id: str) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", HOLDER, str(folder), session_id],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self.state = self.read()
        self.pid = self.process.pid

    def read(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.readline().strip()

    def add(self, text: str) -> None:
        assert self.process.stdin is not None
        self.process.stdin.write(text + "\n")
        self.process.stdin.flush()
        assert self.read() == "saved"

    def leave(self) -> None:
        """Close the session and exit normally."""
        assert self.process.stdin is not None
        self.process.stdin.close()
        assert self.process.wait(30) == 0

    def kill(self) -> None:
        self.process.kill()
        self.process.wait(30)


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    store = SessionStore(tmp_path / "sessions")
    store.save(make_session("s1"))
    return store


@pytest.fixture
def holder(store: SessionStore) -> Iterator[Holder]:
    held = Holder(store.dir, "s1")
    assert held.state == "writing"
    yield held
    held.kill()


def test_lock_file_names_the_holder_and_is_private(store: SessionStore, holder: Holder) -> None:
    lock_file = store.lock_path_for("s1")
    assert stat.S_IMODE(lock_file.stat().st_mode) == 0o600
    recorded = json.loads(lock_file.read_text())
    assert recorded["pid"] == holder.pid and recorded["host"] == socket.gethostname()
    writer = store.holder("s1")
    assert writer is not None and writer.pid == holder.pid and not writer.is_this_process


def test_second_instance_opens_read_only_and_cannot_write(
    store: SessionStore, holder: Holder
) -> None:
    before = store.path_for("s1").read_bytes()
    with store.open("s1") as opened:
        assert opened.read_only and opened.lock is None
        assert opened.notice == (
            f"session s1 is open in another qwen-tui (pid {holder.pid}): opened read-only"
        )
        opened.session.add("user", "lost?")
        busy = f"could not save session s1: .*pid {holder.pid}"
        with pytest.raises(SessionLockedError, match=busy):
            store.save(opened.session)
        with pytest.raises(SessionLockedError, match="could not delete"):
            store.delete("s1")
    assert store.path_for("s1").read_bytes() == before


def test_sigkill_never_leaves_a_stale_lock(store: SessionStore, holder: Holder) -> None:
    holder.kill()
    assert store.holder("s1") is None
    with store.open("s1") as opened:
        assert not opened.read_only and opened.notice is None
        assert store.holder("s1").is_this_process


def test_takeover_after_the_writer_left_reloads_instead_of_overwriting(
    store: SessionStore,
) -> None:
    other = Holder(store.dir, "s1")
    try:
        with store.open("s1") as stale:
            assert stale.read_only
        other.add("written by the other instance")
    finally:
        other.leave()
    # The other instance is gone; the copy read while it wrote is out of date.
    stale.session.add("user", "written here")
    with pytest.raises(SessionChangedError, match="open it again"):
        store.save(stale.session)
    with store.open("s1") as fresh:
        assert [m.content for m in fresh.session.messages][-1] == "written by the other instance"
        fresh.session.add("user", "written here")
        store.save(fresh.session)
    contents = [m.content for m in store.load("s1").messages]
    assert contents[-2:] == ["written by the other instance", "written here"]


def test_stores_without_locks_still_never_overwrite_each_other(store: SessionStore) -> None:
    mine, theirs = store.load("s1"), SessionStore(store.dir)
    changed = theirs.load("s1")
    changed.add("user", "theirs")
    theirs.save(changed)
    mine.add("user", "mine")
    with pytest.raises(SessionChangedError):
        store.save(mine)
    assert store.load("s1").messages[-1].content == "theirs"


def test_one_process_holds_a_session_once(store: SessionStore) -> None:
    with store.open("s1") as first:
        assert first.lock is not None and first.lock.held
        with SessionStore(store.dir).open("s1") as second:
            assert second.read_only
            assert second.notice == "session s1 is already open in this qwen-tui: opened read-only"
    with store.open("s1") as again:
        assert not again.read_only


def test_a_lock_taken_in_one_thread_is_released_in_another(store: SessionStore) -> None:
    opened = store.open("s1")
    closer = threading.Thread(target=opened.close)
    closer.start()
    closer.join()
    assert store.holder("s1") is None
    with store.open("s1") as again:
        assert not again.read_only


def test_probes_never_make_a_free_session_look_busy(store: SessionStore) -> None:
    # Listing probes every session's lock (a shared flock); an open racing a probe waits.
    stop = threading.Event()

    def probe() -> None:
        other = SessionStore(store.dir)
        while not stop.is_set():
            other.holder("s1")

    prober = threading.Thread(target=probe)
    prober.start()
    try:
        for _ in range(200):
            with store.open("s1") as opened:
                assert not opened.read_only, opened.notice
    finally:
        stop.set()
        prober.join()


def test_new_sessions_are_locked_and_deleting_removes_the_lock_file(store: SessionStore) -> None:
    session = make_session("s2")
    with store.open_new(session) as opened:
        assert store.holder("s2").is_this_process
        store.save(opened.session)
    assert store.holder("s2") is None
    store.delete("s2")
    assert not store.lock_path_for("s2").exists()
    assert sorted(p.name for p in store.dir.iterdir()) == ["s1.json"]


def test_lock_files_do_not_outlive_their_sessions(store: SessionStore) -> None:
    with store.open_new(make_session("never-saved")):
        assert store.lock_path_for("never-saved").exists()
    assert not store.lock_path_for("never-saved").exists()
    # A process killed before its new session's first save leaves a lock file behind;
    # listing removes those a day old, unless someone holds them.
    day_ago = time.time() - 25 * 3600
    orphan, recent = store.lock_path_for("orphan"), store.lock_path_for("recent")
    orphan.touch()
    recent.touch()
    os.utime(orphan, (day_ago, day_ago))
    ghost = store.lock_path_for("ghost")
    holder = subprocess.Popen(
        [sys.executable, "-c", LOCK_ONLY, str(store.dir), "ghost"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert holder.stdout.readline() == "locked\n"
        os.utime(ghost, (day_ago, day_ago))
        store.list()
    finally:
        holder.kill()
        holder.wait()
    assert not orphan.exists() and recent.exists() and ghost.exists()


def test_incomplete_reply_of_a_gone_process_is_interrupted(store: SessionStore) -> None:
    session = store.load("s1")
    partial = Message("assistant", "Once upon a ti", incomplete=True)
    session.messages += [Message("user", "Tell a story"), partial]
    store.save(session)
    assert store.list()[0].incomplete
    with store.open("s1") as opened:
        (interrupted,) = opened.interrupted
        assert interrupted.content == "Once upon a ti" and interrupted.incomplete
        assert opened.settle_interrupted() == [interrupted]
        assert not interrupted.incomplete and interrupted.content == "Once upon a ti"
        assert interrupted.stats.stop_reason is StopReason.STOPPED
        assert interrupted.error is None  # cut short: stopped, not failed
        store.save(opened.session)
    assert not store.list()[0].incomplete


def test_a_live_reply_of_another_process_is_not_interrupted(store: SessionStore) -> None:
    session = store.load("s1")
    session.messages += [
        Message("user", "Tell a story"),
        Message("assistant", "Once", incomplete=True),
    ]
    store.save(session)
    holder = Holder(store.dir, "s1")
    try:
        with store.open("s1") as opened:
            assert opened.read_only and opened.interrupted == []
    finally:
        holder.kill()


# ---------------------------------------------------------------- with `qwen-tui ask`


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qwen_tui", *args], capture_output=True, text=True, timeout=120
    )


@pytest.mark.slow
def test_ask_on_a_session_another_ask_is_writing(tiny_home: Paths, session_id: str) -> None:
    first = AskProcess("--session", session_id, *LONG_REPLY, "Tell me a long story.")
    try:
        assert first.stdout.wait_for(timeout=60), first.stderr.text
        store = SessionStore(tiny_home.sessions_dir)
        deadline = time.monotonic() + 30
        while not store.list()[0].incomplete:  # the reply is saved from its first token on
            assert time.monotonic() < deadline, first.stderr.text
            time.sleep(0.01)
        first.signal(signal.SIGSTOP)  # mid-reply for as long as the test needs; lock held
        second = subprocess.run(
            ask_argv("--session", session_id, "Intruder"),
            capture_output=True,
            text=True,
            timeout=60,
        )
        assert second.returncode == 2, second.stderr
        assert second.stderr == (
            f"qwen-tui: session {session_id} is open in another qwen-tui (pid {first.pid}): "
            "not adding to it; try again when it is done, or use --new-session\n"
        )
        assert second.stdout == ""
        listing = run_cli("sessions")
        assert f"[reply being written by pid {first.pid}]" in listing.stdout
    finally:
        first.signal(signal.SIGKILL)
        first.finish()
    listing = run_cli("sessions")
    assert listing.returncode == 0 and "[interrupted reply]" in listing.stdout
    messages = SessionStore(tiny_home.sessions_dir).load(session_id).messages
    assert "Intruder" not in [m.content for m in messages]
    assert os.environ.get("QWEN_TUI_HOME")  # the children used this test's folder
