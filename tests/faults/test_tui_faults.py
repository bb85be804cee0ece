"""The terminal app under faults: SIGKILL at random moments, SIGTERM and SIGHUP mid-reply,
and no network at start-up or while chatting.

The real `qwen-tui --session ID` runs in a pseudo-terminal (80x24, xterm-256color) with the
tiny Qwen2 model; the test types a question and enter as a terminal would. The TUI draws
rather than prints, so a partial reply on disk is checked against what the same greedy model
says to the same conversation, generated here with the shared tiny engine: it must be a prefix.

`make test` runs 5 kills; `make faults` runs 50.
"""

from __future__ import annotations

import os
import random
import signal
import threading
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qwen_tui.conversation import GenerationSettings, Message, Session
from qwen_tui.engine.base import Engine, TextChunk
from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore, StoreError
from tests.faults.asking import TINY_MODEL, make_session
from tests.faults.test_kill_loop import same_turns, temp_files, wait_for_save
from tests.faults.test_security import AUDIT, RecordingServer, recorder  # noqa: F401 (fixture)
from tests.faults.tui_process import TuiProcess, wait_for_session

LONG = GenerationSettings(temperature=0.0, max_new_tokens=1500)
"""Greedy, and long: the tiny models never stop early, so a reply runs ~6 s."""
DRAWN = b"search sessions"
"""On screen once the app has drawn its first frame (the sidebar's search box)."""
MODES = ("start-up", "generation", "save")


def tiny_tui_home(paths: Paths, settings: GenerationSettings = LONG) -> str:
    """A config for greedy replies with the tests' thread count, and a session to continue."""
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(
        f'[model]\ndefault = "{TINY_MODEL}"\nthreads = 2\n\n'
        f"[generation]\ntemperature = 0\nmax_new_tokens = {settings.max_new_tokens}\n"
    )
    session = make_session()
    session.settings = settings
    SessionStore(paths.sessions_dir).save(session)
    return session.id


def start_tui(session_id: str, env: dict[str, str] | None = None, prefix=("-m", "qwen_tui")):
    return TuiProcess("--session", session_id, prefix=prefix, env=env)


def wait_drawn(tui: TuiProcess, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while DRAWN not in tui.output:
        assert tui.process.poll() is None, bytes(tui.output).decode("utf-8", "replace")
        assert time.monotonic() < deadline, "the app never drew its screen"
        time.sleep(0.02)


def greedy_reply_starts_with(engine: Engine, session: Session, upto: int, partial: str) -> bool:
    """Whether the model's greedy reply to the first `upto` messages starts with `partial`."""
    messages = session.chat_messages()[: upto + 1]  # + the system prompt
    cancel = threading.Event()
    text = ""
    for event in engine.generate(messages, session.settings, cancel):
        if isinstance(event, TextChunk):
            text += event.text
            if len(text) >= len(partial):
                cancel.set()  # enough to compare: the rest would only cost time
    return text.startswith(partial)


# ---------------------------------------------------------------- SIGKILL


@dataclass
class KillFigures:
    runs: int = 0
    killed: int = 0
    landed: Counter = field(default_factory=Counter)
    """Where the kills landed, judged from the disk: start-up (the question not saved yet),
    load (saved, no reply yet), generation (a partial reply), save (a temp file left)."""
    failures: list[str] = field(default_factory=list)

    def table(self) -> str:
        where = ", ".join(f"{k} {v}" for k, v in sorted(self.landed.items()))
        return (
            f"runs {self.runs}, SIGKILLs {self.killed} ({where}), "
            f"failures {len(self.failures)}: {self.failures[:5]}"
        )


def replying(session: Session) -> bool:
    """A partial reply is on disk (the chat saves one every 2 s while it streams)."""
    last = session.messages[-1]
    return last.role == "assistant" and last.incomplete and bool(last.content)


def kill_at(mode: str, tui: TuiProcess, rng: random.Random, folder: Path, sid: str, prompt: str):
    if mode == "start-up":
        time.sleep(rng.uniform(0.0, 3.0))  # imports, first frame, the model load
    else:
        wait_drawn(tui)
        tui.type(prompt + "\r")
        if mode == "generation":
            # once a partial reply is on disk (saves come every 2 s), somewhere after it
            wait_for_session(SessionStore(folder), sid, replying, tui)
            time.sleep(rng.uniform(0.0, 3.0))
        else:
            wait_for_save(folder, sid, rng.randint(1, 3), tui)  # type: ignore[arg-type]
    tui.signal(signal.SIGKILL)


def check_run(
    store: SessionStore,
    sid: str,
    before: list[Message],
    prompt: str,
    engine: Engine,
    figures: KillFigures,
) -> str:
    """Check the invariants after one kill; returns where the kill landed."""
    listed = store.list()
    if store.problems or [s.id for s in listed] != [sid]:
        figures.failures.append(f"unreadable: {store.problems}")
        store.problems.clear()
        return "?"
    try:
        after = store.load(sid)
    except StoreError as error:
        figures.failures.append(f"unreadable: {error}")
        return "?"
    if lost := same_turns(before, after.messages):
        figures.failures.append(f"{lost} earlier messages lost or changed")
    new = after.messages[len(before) :]
    if not new:
        return "start-up"
    if (new[0].role, new[0].content) != ("user", prompt) or len(new) > 2:
        figures.failures.append(f"not the question asked: {new}")
    if store.holder(sid) is not None:
        figures.failures.append("the lock outlived the process")
    if len(new) == 1:
        return "load"
    reply = new[1]
    if reply.role != "assistant" or not reply.content:
        figures.failures.append(f"an empty or misplaced reply: {reply}")
    elif not greedy_reply_starts_with(engine, after, len(before) + 1, reply.content):
        figures.failures.append(f"not a prefix of the model's reply: {reply.content[:80]!r}")
    return "generation"


def run_kill_loop(paths: Paths, engine: Engine, runs: int, seed: int) -> KillFigures:
    rng = random.Random(seed)
    sid = tiny_tui_home(paths)
    store = SessionStore(paths.sessions_dir)
    figures = KillFigures()
    for index in range(runs):
        mode = MODES[index % len(MODES)] if index < len(MODES) else rng.choice(MODES)
        before = store.load(sid).messages
        temps = temp_files(paths.sessions_dir, sid)
        prompt = f"Question {index}: tell me a very long story."
        tui = start_tui(sid)
        kill_at(mode, tui, rng, paths.sessions_dir, sid, prompt)
        status = tui.finish()
        figures.runs += 1
        figures.killed += status == -signal.SIGKILL
        landed = check_run(store, sid, before, prompt, engine, figures)
        if temp_files(paths.sessions_dir, sid) - temps:
            landed = "save"
        figures.landed[landed] += 1
    return figures


@pytest.mark.slow
def test_sigkill_of_the_tui_at_random_moments_loses_nothing(tiny_home: Paths, tiny_engine) -> None:
    figures = run_kill_loop(tiny_home, tiny_engine("qwen2"), runs=5, seed=4321)
    print(f"\nTUI SIGKILL loop: {figures.table()}")
    assert figures.failures == [], figures.table()
    assert figures.killed == 5 and figures.landed["generation"], figures.table()


@pytest.mark.faults
def test_sigkill_of_the_tui_loop_long(tiny_home: Paths, tiny_engine) -> None:
    seed = int(os.environ.get("QWEN_TUI_FAULT_SEED", time.time_ns() % 100_000))
    runs = int(os.environ.get("QWEN_TUI_FAULT_RUNS", "50"))
    figures = run_kill_loop(tiny_home, tiny_engine("qwen2"), runs=runs, seed=seed)
    print(f"\nTUI SIGKILL loop (seed {seed}): {figures.table()}")
    assert figures.failures == [], figures.table()
    assert figures.killed >= min(runs, 50) - 2, figures.table()
    assert figures.landed["generation"] and figures.landed["start-up"], figures.table()


# ---------------------------------------------------------------- SIGTERM, SIGHUP


@pytest.mark.slow
@pytest.mark.parametrize(
    ("signum", "terminal_gone"),
    [(signal.SIGTERM, False), (signal.SIGHUP, False), (signal.SIGHUP, True)],
    ids=["SIGTERM", "SIGHUP", "SSH-disconnect"],
)
def test_signal_mid_reply_saves_it_stopped_and_exits(
    tiny_home: Paths, tiny_engine, signum: int, terminal_gone: bool
) -> None:
    sid = tiny_tui_home(tiny_home)
    store = SessionStore(tiny_home.sessions_dir)
    tui = start_tui(sid)
    wait_drawn(tui)
    tui.type("Tell me a long story.\r")
    wait_for_session(store, sid, replying, tui)
    if terminal_gone:
        tui.hang_up_terminal()  # writes to the terminal now fail with EIO
    tui.signal(signum)
    assert tui.finish(timeout=30) == 130, bytes(tui.output[-3000:]).decode("utf-8", "replace")
    assert store.holder(sid) is None
    saved = store.load(sid)
    question, reply = saved.messages[-2:]
    assert question.content == "Tell me a long story."
    assert reply.stopped and not reply.incomplete and reply.content
    assert 0 < reply.stats.generated_tokens < LONG.max_new_tokens
    assert greedy_reply_starts_with(
        tiny_engine("qwen2"), saved, len(saved.messages) - 1, reply.content
    )
    assert saved.model == TINY_MODEL


# ---------------------------------------------------------------- network


def answered(session: Session) -> bool:
    last = session.messages[-1]
    return last.role == "assistant" and not last.incomplete and last.stats is not None


@pytest.mark.slow
def test_no_network_from_the_tui_at_start_up_or_while_chatting(
    tiny_home: Paths,
    recorder: RecordingServer,  # noqa: F811 (the fixture imported above)
    tmp_path: Path,
) -> None:
    sid = tiny_tui_home(tiny_home, GenerationSettings(temperature=0.0, max_new_tokens=8))
    audit_log = tmp_path / "network.log"
    audit_log.touch()
    proxies = ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY")
    env = {
        **os.environ,
        "HF_ENDPOINT": recorder.url,  # where the hub would be asked
        **{name: recorder.url for name in proxies},
        **{name.lower(): recorder.url for name in proxies},
    }
    env.pop("NO_PROXY", None)
    env.pop("no_proxy", None)
    tui = start_tui(sid, env, prefix=(AUDIT, str(audit_log)))
    wait_drawn(tui)
    tui.type("hello\r")
    store = SessionStore(tiny_home.sessions_dir)
    done = wait_for_session(store, sid, lambda s: len(s.messages) == 4 and answered(s), tui)
    assert done.messages[-2].content == "hello"
    tui.type("\x11")  # ctrl+q
    assert tui.finish(timeout=30) == 0
    assert recorder.requests == []
    assert audit_log.read_text() == ""  # not even a DNS lookup
