"""`qwen-tui ask --model remote:lab` against a hostile OpenAI-compatible server (ours,
tests/remote/hostile.py): nothing the server sends reaches the terminal raw, invalid text
becomes U+FFFD and never breaks a turn, every word of a reply is printed and saved."""

from __future__ import annotations

import os
import pty
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.remote.hostile import REPLY_MODES, raw_controls, reply_mode
from tests.remote.sse_server import Answer, ReplayServer, token_events


@dataclass
class Ran:
    status: int
    stdout: bytes
    stderr: bytes


def remote_config(paths: Paths, server: ReplayServer) -> None:
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(
        f'[[remotes]]\nname = "lab"\nbase_url = "{server.base_url}"\nmodel = "smollm2"\n'
    )


def run_cli(*args: str, stdin: bytes | None = None, tty: bool = False) -> Ran:
    """The real `qwen-tui` process; with `tty`, stdout is a pseudo-terminal (stderr a pipe)."""
    command = [sys.executable, "-m", "qwen_tui", *args]
    if not tty:
        done = subprocess.run(command, input=stdin, capture_output=True, timeout=120)
        return Ran(done.returncode, done.stdout, done.stderr)
    main, child = pty.openpty()
    process = subprocess.Popen(
        command, stdin=subprocess.DEVNULL, stdout=child, stderr=subprocess.PIPE
    )
    os.close(child)
    out = bytearray()
    while True:
        try:
            data = os.read(main, 65536)
        except OSError:  # EIO: the child closed its end
            break
        if not data:
            break
        out += data
    os.close(main)
    err = process.stderr.read() if process.stderr else b""
    return Ran(process.wait(timeout=60), bytes(out), err)


@pytest.fixture
def server(paths: Paths) -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        remote_config(paths, replay)
        yield replay


def sessions(paths: Paths) -> SessionStore:
    return SessionStore(paths.sessions_dir)


@pytest.mark.parametrize("mode", REPLY_MODES)
def test_nothing_a_server_sends_reaches_the_terminal_raw(
    server: ReplayServer, paths: Paths, mode: str
) -> None:
    server.answer(reply_mode(mode))
    ran = run_cli("ask", "--model", "remote:lab", "hi", tty=True)
    assert b"Traceback" not in ran.stderr, ran.stderr.decode(errors="replace")
    assert raw_controls(ran.stderr) == [], ran.stderr
    # The pty turns \n into \r\n on output: that CR is the terminal's, not the server's.
    assert raw_controls(ran.stdout.replace(b"\r\n", b"\n")) == [], ran.stdout
    assert ran.status in (0, 1), ran.stderr


def test_error_body_is_shown_with_its_controls_visible(server: ReplayServer) -> None:
    server.answer(Answer(status=500, error="boom \x1b]0;pwned-by-error\x07\x1b[2J"))
    ran = run_cli("ask", "--model", "remote:lab", "hi")
    assert ran.status == 1
    said = ran.stderr.decode()
    assert "server error (500): boom ␛]0;pwned-by-error␇␛[2J" in said


def test_error_event_in_the_stream_is_shown_with_its_controls_visible(
    server: ReplayServer,
) -> None:
    server.answer(reply_mode("error_event", "\x1b]0;pwned\x07\x9b2J"))
    ran = run_cli("ask", "--model", "remote:lab", "hi")
    assert ran.status == 1 and ran.stdout.startswith(b"Par")
    assert (
        "reported an error after 1 token (the partial reply is kept): oops ␛]0;pwned␇\\x9b2J"
        in (ran.stderr.decode())
    )


def test_a_pipe_gets_the_reply_verbatim_and_the_session_keeps_it(
    server: ReplayServer, paths: Paths
) -> None:
    attack = "\x1b]0;t\x07\x1b[2J"
    server.answer(Answer(token_events(["A", attack, "B"])))
    ran = run_cli("ask", "--model", "remote:lab", "hi")
    assert ran.status == 0, ran.stderr
    assert ran.stdout.decode() == f"A{attack}B\n"
    (summary,) = sessions(paths).list()
    assert sessions(paths).load(summary.id).messages[-1].content == f"A{attack}B"


def test_a_lone_surrogate_in_a_reply_becomes_a_replacement_character(
    server: ReplayServer, paths: Paths
) -> None:
    server.answer(Answer(token_events(["S", "\ud800", "S"])))
    ran = run_cli("ask", "--model", "remote:lab", "hi")
    assert ran.status == 0, ran.stderr.decode(errors="replace")
    assert ran.stdout.decode() == "S\ufffdS\n"
    (summary,) = sessions(paths).list()
    assert sessions(paths).load(summary.id).messages[-1].content == "S\ufffdS"


def test_non_utf8_stdin_does_not_poison_the_session(server: ReplayServer, paths: Paths) -> None:
    first = run_cli("ask", "--model", "remote:lab", "--new-session", stdin=b"caf\xe9 \x9b2J")
    assert first.status == 0, first.stderr.decode(errors="replace")
    (summary,) = sessions(paths).list()
    session = sessions(paths).load(summary.id)
    assert session.messages[0].content == "caf\ufffd \ufffd2J"
    server.answer(Answer(token_events(["again"])))
    second = run_cli("ask", "--model", "remote:lab", "--session", summary.id, "more")
    assert second.status == 0, second.stderr.decode(errors="replace")
    assert second.stdout == b"again\n"
    sent = server.chat_requests()[-1].json["messages"]
    assert sent[1]["content"] == "caf\ufffd \ufffd2J"
    listed = run_cli("sessions", tty=True)
    assert raw_controls(listed.stdout.replace(b"\r\n", b"\n")) == [], listed.stdout
    assert "caf\ufffd" in listed.stdout.decode()


def test_a_session_poisoned_by_an_older_release_still_works(
    server: ReplayServer, paths: Paths
) -> None:
    """Files written before this fix hold lone surrogates as JSON escapes: they load as
    U+FFFD, so the next turn can be sent and saved."""
    from qwen_tui.store.session_writing import dumps, session_to_dict
    from tests.faults.asking import make_session

    session = make_session()
    data = session_to_dict(session)
    data["messages"][0]["content"] = "caf\udce9"
    data["title"] = "caf\udce9 \udc9b"
    paths.sessions_dir.mkdir(parents=True, exist_ok=True)
    sessions(paths).path_for(session.id).write_bytes(dumps(data))
    ran = run_cli("ask", "--model", "remote:lab", "--session", session.id, "next")
    assert ran.status == 0, ran.stderr.decode(errors="replace")
    assert server.chat_requests()[-1].json["messages"][1]["content"] == "caf\ufffd"
    listed = run_cli("sessions", tty=True)
    assert raw_controls(listed.stdout.replace(b"\r\n", b"\n")) == [], listed.stdout


def test_a_huge_reply_is_printed_and_saved_whole(server: ReplayServer, paths: Paths) -> None:
    server.answer(reply_mode("huge_reply"))
    ran = run_cli("ask", "--model", "remote:lab", "hi")
    assert ran.status == 0, ran.stderr.decode(errors="replace")
    expected = "".join(f"para {i}\n\n" for i in range(20_000))
    assert ran.stdout.decode() == expected + "\n"
    (summary,) = sessions(paths).list()
    assert sessions(paths).load(summary.id).messages[-1].content == expected


def test_config_key_with_controls_is_shown_visible(paths: Paths) -> None:
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text('"\\u001b]0;pwned-config\\u0007" = 1\n')
    ran = run_cli("ask", "hi")
    assert ran.status == 2
    assert raw_controls(ran.stderr) == [] and "␛]0;pwned-config␇" in ran.stderr.decode()


def test_file_names_with_controls_are_shown_visible(paths: Paths) -> None:
    paths.sessions_dir.mkdir(parents=True, exist_ok=True)
    (paths.sessions_dir / "x\x1b]0;pwned\x07.json").write_text("{}")
    ran = run_cli("sessions")
    assert ran.status == 0
    assert raw_controls(ran.stderr) == [] and "␛]0;pwned␇" in ran.stderr.decode()


# ---------------------------------------------------------------- interrupted


def wait_for(condition, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.05)


def start_ask(*args: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "qwen_tui", "ask", "--model", "remote:lab", *args]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.PIPE)


def saved_reply(paths: Paths):
    summaries = sessions(paths).list()
    if not summaries:
        return None
    messages = sessions(paths).load(summaries[0].id).messages
    return messages[-1] if messages[-1].role == "assistant" else None


def test_a_killed_reply_keeps_its_count_and_is_stopped_not_failed(
    server: ReplayServer, paths: Paths
) -> None:
    server.answer(
        Answer(token_events([f"w{n} " for n in range(400)]), between_s=0.02),
        Answer(token_events(["next"])),
    )
    process = start_ask("hi")
    try:
        wait_for(lambda: (r := saved_reply(paths)) is not None and r.stats is not None)
    finally:
        process.kill()
        process.wait()
    (summary,) = sessions(paths).list()
    ran = run_cli("ask", "--model", "remote:lab", "--session", summary.id, "go on")
    assert ran.status == 0, ran.stderr.decode(errors="replace")
    killed = sessions(paths).load(summary.id).messages[1]
    assert killed.stopped and killed.error is None and not killed.incomplete
    assert killed.stats.generated_tokens == len(killed.content.split()) > 0


def test_new_session_interrupted_while_loading_still_prints_its_id(
    server: ReplayServer, paths: Paths
) -> None:
    server.models_delay_s = 60  # `ask` waits in load_remote's check
    process = start_ask("--new-session", "hi")
    try:
        wait_for(lambda: bool(sessions(paths).list()) and bool(server.requests))
        process.send_signal(signal.SIGINT)
        _out, err = process.communicate(timeout=60)
    finally:
        process.kill()
    (summary,) = sessions(paths).list()
    assert process.returncode == 130
    said = err.decode()
    assert f"session {summary.id} (continue: qwen-tui ask --session {summary.id})" in said
    assert said.rstrip().endswith("qwen-tui: interrupted")


def test_paths_with_controls_are_shown_visible(tmp_path, monkeypatch) -> None:
    home = tmp_path / "home\x1b]0;pwned\x07"
    monkeypatch.setenv("QWEN_TUI_HOME", str(home))
    doctor = run_cli("doctor")
    assert doctor.status == 0 and "home␛]0;pwned␇" in doctor.stdout.decode()
    missing = run_cli("import", str(tmp_path / "model\x1b[2J.gguf"))
    assert missing.status == 3 and "model␛[2J.gguf" in missing.stderr.decode()
    for ran in (doctor, missing):
        assert raw_controls(ran.stdout) == [] and raw_controls(ran.stderr) == []
