"""SIGTERM and SIGHUP (an SSH disconnect) make `qwen-tui ask` save what it has and exit."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import time

import pytest

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.faults.asking import LONG_REPLY, AskProcess, ask_argv


def assert_stopped_reply_saved(paths: Paths, session_id: str, printed: bytes | None) -> None:
    store = SessionStore(paths.sessions_dir)
    assert store.holder(session_id) is None
    question, reply = store.load(session_id).messages[-2:]
    assert question.content == "Tell me a long story."
    assert reply.role == "assistant" and reply.stopped and not reply.incomplete
    assert 0 < reply.stats.generated_tokens < 1500
    if printed is not None:
        assert printed.decode() == reply.content + "\n"


@pytest.mark.slow
@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGHUP], ids=["SIGTERM", "SIGHUP"])
def test_signal_mid_reply_saves_it_and_exits(
    tiny_home: Paths, session_id: str, signum: int
) -> None:
    process = AskProcess("--session", session_id, *LONG_REPLY, "Tell me a long story.")
    assert process.stdout.wait_for(timeout=60), process.stderr.text
    process.signal(signum)
    assert process.finish(timeout=30) == 130, process.stderr.text
    assert process.stderr.text == ""
    assert_stopped_reply_saved(tiny_home, session_id, process.stdout.join())


@pytest.mark.slow
def test_ssh_disconnect_terminal_gone_then_sighup(tiny_home: Paths, session_id: str) -> None:
    # The reply streams to a terminal; the connection drops: the terminal goes away (writes
    # now fail with EIO) and the process gets SIGHUP. It must still save and exit.
    master, slave = pty.openpty()
    process = subprocess.Popen(
        ask_argv("--session", session_id, *LONG_REPLY, "Tell me a long story."),
        stdin=subprocess.DEVNULL,
        stdout=slave,
        stderr=slave,
        start_new_session=True,  # its own terminal session, as under sshd
    )
    os.close(slave)
    try:
        assert os.read(master, 1024)  # the reply has started
    finally:
        os.close(master)
    process.send_signal(signal.SIGHUP)
    assert process.wait(timeout=30) == 130
    assert_stopped_reply_saved(tiny_home, session_id, printed=None)


@pytest.mark.slow
@pytest.mark.parametrize("delay", [0.0, 0.2, 0.4, 0.6, 0.8])
def test_sigterm_while_the_model_loads_exits_at_once(
    tiny_home: Paths, session_id: str, delay: float
) -> None:
    """At any moment of the load: a KeyboardInterrupt raised inside torch's or numpy's
    import used to end as an ImportError or a death by SIGINT (4 of 25 random moments)."""
    store = SessionStore(tiny_home.sessions_dir)
    process = AskProcess("--session", session_id, *LONG_REPLY, "Tell me a long story.")
    deadline = time.monotonic() + 60
    while store.load(session_id).messages[-1].content != "Tell me a long story.":
        alive = process.process.poll() is None
        assert alive and time.monotonic() < deadline, process.stderr.text
        time.sleep(0.005)
    time.sleep(delay)
    process.signal(signal.SIGTERM)  # the question is saved; the model is loading
    signalled = time.monotonic()
    assert process.finish(timeout=30) == 130, process.stderr.text
    assert time.monotonic() - signalled < 5
    assert process.stdout.join() == b""
    assert process.stderr.text == "\nqwen-tui: interrupted\n"
    assert store.holder(session_id) is None
    assert store.load(session_id).messages[-1].content == "Tell me a long story."
