"""SIGKILL `qwen-tui ask --session ID` at random moments; nothing on disk may suffer.

Each run continues the same session with a new question and is killed during start-up
(imports, model load), during generation, or while it is writing the session file (the test
watches for the save's temp file and kills on sight). After every kill:
- every session file parses and loads (no problems reported);
- no user message is missing: all earlier turns are intact, and the killed run's question is
  on disk whenever the run had started answering (the question is saved before the load);
- the partial reply on disk is a prefix of what the process streamed to stdout;
- the session's lock is free (the kernel dropped it with the process) and the partial reply
  is reported as interrupted.

`make test` runs 6 kills; `make faults` runs 60 and prints the figures.
"""

from __future__ import annotations

import os
import random
import signal
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from qwen_tui.conversation import Message
from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore, StoreError
from tests.faults.asking import LONG_REPLY, AskProcess, make_session

# A multi-megabyte field makes each save take tens of milliseconds, so that kills aimed at a
# save land inside it; the title is the one field the model never reads.
BIG_TITLE = "A session with a very long title. " * 250_000  # 8.5 MB
MODES = ("generation", "start-up", "save")  # generation first: it measures the start-up


@dataclass
class KillFigures:
    runs: int = 0
    killed: int = 0
    finished_first: int = 0
    """Runs that ended on their own before the kill came (their files are checked too)."""
    landed: Counter = field(default_factory=Counter)
    """Where the kills landed: start-up (nothing streamed yet), generation, save (a temp
    file of the save was left behind)."""
    corrupted_files: int = 0
    lost_messages: int = 0
    not_a_prefix: int = 0
    stale_locks: int = 0
    not_reported_interrupted: int = 0
    streamed_bytes: int = 0
    kept_bytes: int = 0
    """Of the bytes streamed by runs killed during generation, how many were on disk."""
    seconds: float = 0.0

    def table(self) -> str:
        kept = self.kept_bytes / self.streamed_bytes if self.streamed_bytes else 0.0
        rows = [
            ("runs", self.runs),
            ("SIGKILLs survived", self.killed),
            ("  in start-up / generation / save", "{start-up} / {generation} / {save}"),
            ("runs that finished before the kill", self.finished_first),
            ("session files corrupted", self.corrupted_files),
            ("messages lost", self.lost_messages),
            ("partial replies not a prefix of the stream", self.not_a_prefix),
            ("stale locks", self.stale_locks),
            ("partial replies not reported interrupted", self.not_reported_interrupted),
            ("streamed text on disk after a kill", f"{kept:.0%}"),
            ("wall time", f"{self.seconds:.0f} s"),
        ]
        landed = {mode: self.landed[mode] for mode in MODES}
        return "\n".join(f"{name:<44} {str(value).format(**landed)}" for name, value in rows)

    @property
    def failures(self) -> int:
        return (
            self.corrupted_files
            + self.lost_messages
            + self.not_a_prefix
            + self.stale_locks
            + self.not_reported_interrupted
        )


def temp_files(folder: Path, session_id: str) -> set[str]:
    return {p.name for p in folder.glob(f".{session_id}.json.*.tmp")}


def wait_for_save(folder: Path, session_id: str, nth: int, process: AskProcess) -> None:
    """Return as soon as the nth save of this run has its temp file on disk."""
    seen = temp_files(folder, session_id)
    new: set[str] = set()
    deadline = time.monotonic() + 40
    while len(new) < nth and time.monotonic() < deadline and process.process.poll() is None:
        new |= temp_files(folder, session_id) - seen
        time.sleep(0.001)


def kill_at(mode: str, process: AskProcess, rng: random.Random, paths: Paths, sid: str) -> None:
    if mode == "start-up":
        # Imports and the model load: somewhere before the first token came in earlier runs.
        time.sleep(rng.uniform(0.0, 0.9 * min(FIRST_TOKEN_S, default=1.5)))
    elif mode == "generation":
        started = time.monotonic()
        if process.stdout.wait_for(timeout=60):
            FIRST_TOKEN_S.append(time.monotonic() - started)
        time.sleep(rng.uniform(0.0, 5.0))
    else:
        wait_for_save(paths.sessions_dir, sid, rng.randint(1, 3), process)
    process.signal(signal.SIGKILL)


FIRST_TOKEN_S: list[float] = []
"""Seconds from start to the first streamed byte, measured by the generation-mode runs."""


def same_turns(before: list[Message], after: list[Message]) -> int:
    """How many of the turns that were on disk before are missing or changed now.

    Their flags may change (an interrupted reply is settled by the next run), not text.
    """
    kept = [(m.role, m.content) for m in after[: len(before)]]
    return sum(1 for i, m in enumerate(before) if i >= len(kept) or kept[i] != (m.role, m.content))


def check_run(
    paths: Paths,
    sid: str,
    before: list[Message],
    prompt: str,
    streamed: bytes,
    status: int,
    figures: KillFigures,
) -> None:
    store = SessionStore(paths.sessions_dir)
    listed = store.list()
    if store.problems or [s.id for s in listed] != [sid]:
        figures.corrupted_files += 1
        return
    try:
        after = store.load(sid).messages
    except StoreError:
        figures.corrupted_files += 1
        return
    figures.lost_messages += same_turns(before, after)
    new = after[len(before) :]
    if streamed and not new:
        figures.lost_messages += 1  # it answered, so its question had been saved
    if new and (new[0].role, new[0].content) != ("user", prompt):
        figures.lost_messages += 1
    reply = new[1] if len(new) > 1 else None
    if reply is not None:
        on_disk = reply.content.encode()
        if not streamed.startswith(on_disk) or reply.role != "assistant":
            figures.not_a_prefix += 1
        if status == 0 and (reply.incomplete or streamed != on_disk + b"\n"):
            figures.not_a_prefix += 1
    if store.holder(sid) is not None:
        figures.stale_locks += 1
        return
    with store.open(sid) as opened:
        if opened.read_only:
            figures.stale_locks += 1
        if reply is not None and reply.incomplete and reply not in opened.interrupted:
            figures.not_reported_interrupted += 1
    if status != 0 and streamed:
        figures.streamed_bytes += len(streamed)
        figures.kept_bytes += len(reply.content.encode()) if reply else 0


def run_kill_loop(paths: Paths, runs: int, seed: int) -> KillFigures:
    rng = random.Random(seed)
    session = make_session(title=BIG_TITLE)
    SessionStore(paths.sessions_dir).save(session)
    sid = session.id
    figures = KillFigures()
    started = time.monotonic()
    for index in range(runs):
        mode = MODES[index % len(MODES)] if index < len(MODES) else rng.choice(MODES)
        before = SessionStore(paths.sessions_dir).load(sid).messages
        temps_before = temp_files(paths.sessions_dir, sid)
        prompt = f"Question {index}: tell me a very long story."
        process = AskProcess("--session", sid, *LONG_REPLY, prompt)
        kill_at(mode, process, rng, paths, sid)
        status = process.finish()
        streamed = process.stdout.join()
        figures.runs += 1
        if status == -signal.SIGKILL:
            figures.killed += 1
            if temp_files(paths.sessions_dir, sid) - temps_before:
                figures.landed["save"] += 1
            else:
                figures.landed["generation" if streamed else "start-up"] += 1
        else:
            assert status == 0, process.stderr.text
            figures.finished_first += 1
        check_run(paths, sid, before, prompt, streamed, status, figures)
    figures.seconds = time.monotonic() - started
    return figures


def report(figures: KillFigures, seed: int) -> None:
    print(f"\nSIGKILL loop (seed {seed}, pid {os.getpid()}):\n{figures.table()}")


@pytest.mark.slow
def test_sigkill_at_random_moments_loses_nothing(tiny_home: Paths) -> None:
    seed = 1234
    figures = run_kill_loop(tiny_home, runs=6, seed=seed)
    report(figures, seed)
    assert figures.failures == 0, figures.table()
    assert figures.killed >= 4 and figures.landed["start-up"] and figures.landed["save"]


@pytest.mark.faults
def test_sigkill_loop_long(tiny_home: Paths) -> None:
    seed = int(os.environ.get("QWEN_TUI_FAULT_SEED", time.time_ns() % 100_000))
    runs = int(os.environ.get("QWEN_TUI_FAULT_RUNS", "60"))
    figures = run_kill_loop(tiny_home, runs=runs, seed=seed)
    report(figures, seed)
    assert figures.failures == 0, figures.table()
    assert figures.killed >= 50 or runs < 55
    assert all(figures.landed[mode] for mode in MODES), figures.table()
