"""The terminal goes away: the app saves the session (a partial reply marked stopped) and its
process is gone within 2 s, every time.

Ways a user's terminal goes away, each through the real process on a pty:
- ssh-drop: the pty is the app's controlling terminal and its master closes (sshd or tmux
  going away): the kernel sends SIGHUP and SIGCONT, reads give EOF, writes EIO;
- pty-closed: the master closes but nothing sends a signal (no controlling terminal, e.g.
  started through `setsid`): only EOF/EIO on the terminal says so;
- SIGHUP: the signal alone, the terminal still there;
- parent-gone: the process that started the app dies (SIGKILL), the terminal stays.

Before the fix, pty-closed left the process running for good with its input thread spinning
on EOF (~90 % of a core), and after ssh-drop Textual restarted application mode on the
kernel's SIGCONT.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, field

import psutil
import pytest

from qwen_tui.conversation import Message, Session
from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore, StoreError
from tests.faults.asking import make_session
from tests.faults.test_kill_loop import same_turns
from tests.faults.test_tui_faults import tiny_tui_home
from tests.terminal.conftest import FAKE_APP, FAKE_MODEL, Launch
from tests.terminal.fake_app import DELAY_ENV, WORDS_ENV
from tests.terminal.tui_process import TuiProcess, wait_for_session

WAYS = ("ssh-drop", "pty-closed", "SIGHUP", "parent-gone")
MOMENTS = ("start-up", "idle", "mid-reply")
EXIT_LIMIT_S = 2.0
PARENT = "import subprocess, sys; sys.exit(subprocess.call([sys.executable, *sys.argv[1:]]))"
"""A parent process between the terminal and the app (what a shell is), for parent-gone."""


def start(launch: Launch, way: str, args: tuple[str, ...], fake: bool) -> tuple[TuiProcess, int]:
    """The app on a pty, started for `way`; returns it and the app's own pid."""
    module = FAKE_APP if fake else ("-m", "qwen_tui")
    if way != "parent-gone":
        tui = launch(*args, prefix=module, controlling_terminal=way == "ssh-drop")
        return tui, tui.pid
    tui = launch(*module, *args, prefix=("-c", PARENT))
    deadline = time.monotonic() + 30
    while not (children := psutil.Process(tui.pid).children()):
        assert time.monotonic() < deadline, "the parent never started the app"
        time.sleep(0.01)
    return tui, children[0].pid


def hang_up(way: str, tui: TuiProcess) -> None:
    if way in ("ssh-drop", "pty-closed"):
        tui.hang_up_terminal()
    elif way == "SIGHUP":
        tui.signal(signal.SIGHUP)
    else:
        tui.signal(signal.SIGKILL)  # the parent; the app is re-parented to PID 1


def gone(tui: TuiProcess, pid: int) -> Callable[[], bool]:
    """Whether the app has exited, every thread of it (only then are its files closed)."""
    if pid == tui.pid:
        return lambda: tui.process.poll() is not None  # waitpid: the whole process
    return lambda: dead(pid)  # re-parented: PID 1 reaps it, in its own time


def dead(pid: int) -> bool:
    try:
        process = psutil.Process(pid)
        return process.status() == psutil.STATUS_ZOMBIE and process.num_threads() == 1
    except psutil.NoSuchProcess:
        return True


def seconds_until(condition: Callable[[], bool], limit: float = 15) -> float | None:
    """How long until `condition` holds; None if it never does within `limit`."""
    started = time.monotonic()
    while not condition():
        if time.monotonic() - started > limit:
            return None
        time.sleep(0.005)
    return time.monotonic() - started


def replying_after(count: int) -> Callable[[Session], bool]:
    """A new reply (after the first `count` messages) has text on disk: it is streaming."""

    def replying(session: Session) -> bool:
        last = session.messages[-1]
        return len(session.messages) > count and last.role == "assistant" and bool(last.content)

    return replying


@dataclass
class HangUpFigures:
    runs: int = 0
    survivors: int = 0
    lost: list[str] = field(default_factory=list)
    exit_s: dict[str, list[float]] = field(default_factory=dict)
    """Seconds from the hang-up to the process gone, by moment."""
    cases: Counter = field(default_factory=Counter)

    def slowest(self, *moments: str) -> float:
        return max((s for m in moments or MOMENTS for s in self.exit_s.get(m, [])), default=0.0)

    def table(self) -> str:
        cases = ", ".join(f"{k} {v}" for k, v in sorted(self.cases.items()))
        exits = ", ".join(
            f"{moment} mean {sum(times) / len(times):.2f} s max {max(times):.2f} s"
            for moment, times in self.exit_s.items()
        )
        return (
            f"runs {self.runs} ({cases}): survivors {self.survivors}, lost {len(self.lost)} "
            f"{self.lost[:3]}; exit after the hang-up: {exits}"
        )


class HangUpRun:
    """One launch, one hang-up at `moment`, then the checks."""

    def __init__(self, store: SessionStore, sid: str, launch: Launch, fake: bool) -> None:
        self.store, self.sid, self.launch, self.fake = store, sid, launch, fake

    def __call__(
        self, way: str, moment: str, rng: random.Random, figures: HangUpFigures, index: int
    ) -> None:
        before = self.store.load(self.sid).messages
        prompt = f"Question {index}: tell me a very long story."
        tui, pid = start(self.launch, way, ("--session", self.sid), self.fake)
        sent = self._reach(moment, tui, rng, prompt, len(before))
        hang_up(way, tui)
        took = seconds_until(gone(tui, pid))
        figures.runs += 1
        figures.cases[f"{way}/{moment}"] += 1
        if took is None:
            figures.survivors += 1
            figures.lost.append(f"survived: {way}/{moment}")
            psutil.Process(pid).kill()
            seconds_until(gone(tui, pid))
        else:
            figures.exit_s.setdefault(moment, []).append(took)
        tui.kill()
        figures.lost += self._check(before, prompt, sent)

    def _reach(
        self, moment: str, tui: TuiProcess, rng: random.Random, prompt: str, count: int
    ) -> bool:
        """Get to `moment`; whether the prompt was sent (and saved) by then."""
        if moment == "start-up":
            time.sleep(rng.uniform(0.0, 2.5))  # imports, the first frame, the model load
            return False
        tui.wait_drawn()
        if moment == "idle":
            time.sleep(rng.uniform(0.0, 1.0))
            return False
        tui.type(prompt + "\r")
        wait_for_session(self.store, self.sid, replying_after(count), tui)
        time.sleep(rng.uniform(0.0, 1.5))
        return True

    def _check(self, before: list[Message], prompt: str, sent: bool) -> list[str]:
        try:
            after = self.store.load(self.sid)
        except StoreError as error:
            return [f"unreadable: {error}"]
        problems = []
        if lost := same_turns(before, after.messages):
            problems.append(f"{lost} earlier messages lost or changed")
        new = after.messages[len(before) :]
        if sent and (not new or (new[0].role, new[0].content) != ("user", prompt)):
            problems.append(f"the question sent is not saved: {new}")
        reply = new[1] if len(new) > 1 else None
        if sent and (reply is None or not reply.content):
            problems.append(f"the partial reply is not saved: {new}")
        elif reply is not None and (reply.incomplete or not reply.stopped):
            problems.append(f"the partial reply is not marked stopped: {reply}")
        if self.store.holder(self.sid) is not None:
            problems.append("the session lock outlived the process")
        return problems


def run_loop(run: HangUpRun, runs: int, seed: int) -> HangUpFigures:
    rng = random.Random(seed)
    figures = HangUpFigures()
    # every way and every moment among the first four runs, all twelve pairs in the first 12
    cases = [(WAYS[i % len(WAYS)], MOMENTS[i % len(MOMENTS)]) for i in range(12)]
    for index in range(runs):
        way, moment = cases[index] if index < len(cases) else rng.choice(cases)
        run(way, moment, rng, figures, index)
    return figures


# ---------------------------------------------------------------- each way, with the UI's engine


def fake_session(paths: Paths) -> str:
    session = make_session()
    SessionStore(paths.sessions_dir).save(session)
    return session.id


@pytest.mark.parametrize("way", WAYS)
def test_a_hang_up_mid_reply_saves_it_stopped_and_exits_within_2_s(
    fake_home: Paths, launch: Launch, monkeypatch: pytest.MonkeyPatch, way: str
) -> None:
    monkeypatch.setenv(WORDS_ENV, "5000")
    monkeypatch.setenv(DELAY_ENV, "0.01")  # a reply that runs for ~50 s
    sid = fake_session(fake_home)
    store = SessionStore(fake_home.sessions_dir)
    tui, pid = start(launch, way, ("--session", sid, "--model", FAKE_MODEL), fake=True)
    tui.wait_drawn()
    tui.type("Tell me a long story.\r")
    tui.wait_for_screen("word30")
    hang_up(way, tui)
    took = seconds_until(gone(tui, pid))
    assert took is not None, f"still running after a hang-up ({way})"
    assert took < EXIT_LIMIT_S
    saved = store.load(sid)
    question, reply = saved.messages[-2:]
    assert question.content == "Tell me a long story."
    assert reply.stopped and not reply.incomplete
    assert reply.content.startswith("word0 word1") and "word30" in reply.content
    assert store.holder(sid) is None


def test_an_idle_app_leaves_when_its_terminal_closes_without_a_signal(
    fake_home: Paths, launch: Launch
) -> None:
    """The reported bug: no SIGHUP, the pty gone; the input thread spun on EOF for good."""
    tui = launch()
    tui.wait_drawn()
    tui.hang_up_terminal()
    took = seconds_until(gone(tui, tui.pid))
    assert took is not None and took < EXIT_LIMIT_S
    assert tui.finish() == 130


# ---------------------------------------------------------------- the loop, with a real model


@pytest.fixture
def tiny_run(paths: Paths, tiny_quantized, install_into_home, launch: Launch) -> HangUpRun:
    install_into_home(tiny_quantized("qwen2"))
    sid = tiny_tui_home(paths)
    return HangUpRun(SessionStore(paths.sessions_dir), sid, launch, fake=False)


@pytest.mark.slow
def test_hang_ups_at_random_moments_leave_no_process_and_lose_nothing(tiny_run) -> None:
    figures = run_loop(tiny_run, runs=len(WAYS), seed=2024)
    print(f"\nhang-up loop: {figures.table()}")
    assert figures.survivors == 0 and figures.lost == [], figures.table()
    # during start-up the app can only notice once its terminal driver runs (imports first)
    assert figures.slowest("idle", "mid-reply") < EXIT_LIMIT_S, figures.table()


@pytest.mark.faults
def test_hang_up_loop_long(tiny_run) -> None:
    seed = int(os.environ.get("QWEN_TUI_FAULT_SEED", time.time_ns() % 100_000))
    runs = int(os.environ.get("QWEN_TUI_FAULT_RUNS", "24"))
    figures = run_loop(tiny_run, runs=runs, seed=seed)
    print(f"\nhang-up loop (seed {seed}): {figures.table()}")
    assert figures.survivors == 0 and figures.lost == [], figures.table()
    # during start-up the app can only notice once its terminal driver runs (imports first)
    assert figures.slowest("idle", "mid-reply") < EXIT_LIMIT_S, figures.table()
