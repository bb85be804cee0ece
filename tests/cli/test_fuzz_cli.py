"""Fuzzing `qwen-tui ask` against generated hostile server replies, and `qwen-tui sessions`
over generated session titles: on a terminal, no ESC, BEL, other C0 or C1 byte from
outside text, no traceback, and every word the server sent is saved.

Runs the CLI in this process (tests/cli/in_process.py). Default: a few hundred cases;
`QWEN_TUI_FUZZ_EXAMPLES=2000` for the long run by hand (the counts are printed).
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterator

import pytest
from hypothesis import HealthCheck, given, settings

from qwen_tui.conversation import Message, Session
from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from qwen_tui.well_formed import well_formed
from tests.cli.in_process import Ran, examples, run_main
from tests.remote.hostile import hostile_answers, hostile_text, raw_controls, streamed_text
from tests.remote.sse_server import Answer, ReplayServer

TALLY: Counter[str] = Counter()


@pytest.fixture(scope="module", autouse=True)
def report() -> Iterator[None]:
    yield
    print(f"\nCLI fuzz: {dict(TALLY)}")


@pytest.fixture
def server(paths: Paths) -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        paths.config_file.parent.mkdir(parents=True, exist_ok=True)
        paths.config_file.write_text(
            f'[[remotes]]\nname = "lab"\nbase_url = "{replay.base_url}"\nmodel = "smollm2"\n'
        )
        yield replay


def check_terminal_output(ran: Ran) -> None:
    assert b"Traceback" not in ran.stderr, ran.stderr.decode(errors="replace")
    assert raw_controls(ran.stdout) == [], ran.stdout
    assert raw_controls(ran.stderr) == [], ran.stderr


def fuzz(default: int) -> settings:
    return settings(
        max_examples=examples(default),
        deadline=None,
        database=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@fuzz(200)
@given(answer=hostile_answers())
def test_hostile_replies_never_reach_the_terminal_raw_and_lose_no_word(
    server: ReplayServer, paths: Paths, answer: Answer
) -> None:
    server.answer_only(answer)
    ran = run_main("ask", "--model", "remote:lab", "--new-session", "hi")
    TALLY["replies"] += 1
    check_terminal_output(ran)
    assert ran.status in (0, 1), ran.stderr
    TALLY[f"exit {ran.status}"] += 1
    found = re.search(rb"^session (\S+) \(continue", ran.stderr, re.MULTILINE)
    assert found, ran.stderr
    reply = SessionStore(paths.sessions_dir).load(found.group(1).decode()).messages[-1]
    expected = streamed_text(answer)
    if expected is not None:
        assert reply.content == well_formed(expected)
        TALLY["replies checked word for word"] += 1


@fuzz(100)
@given(title=hostile_text, content=hostile_text, model=hostile_text)
def test_sessions_lists_hostile_titles_with_controls_visible(
    paths: Paths, title: str, content: str, model: str
) -> None:
    store = SessionStore(paths.sessions_dir)
    session = Session(title=title, model=model)
    session.messages = [Message("user", content)]
    store.save(session)
    ran = run_main("sessions")
    TALLY["session listings"] += 1
    check_terminal_output(ran)
    assert ran.status == 0
    store.delete(session.id)
