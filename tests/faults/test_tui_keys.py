"""Keys typed at a real terminal: the real `qwen-tui` in a pseudo-terminal (80x24), keys sent
as the terminal sends them, the FakeEngine answering (see fake_engine_tui.py)."""

from __future__ import annotations

import time

from qwen_tui.conversation import Message, Session
from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.faults.tui_process import TuiProcess, wait_for_session
from tests.tui.conftest import install_fake_model

TAB, DOWN, ENTER = "\t", "\x1b[B", "\r"
DRAWN = b"search sessions"
FAKE_TUI = ("-m", "tests.faults.fake_engine_tui")


def saved_session(store: SessionStore, title: str, updated: float) -> Session:
    session = Session(title=title)
    session.messages += [Message("user", f"about {title}"), Message("assistant", "noted")]
    session.updated = updated
    store.save(session)
    return session


def start(*args: str) -> TuiProcess:
    tui = TuiProcess(*args, prefix=FAKE_TUI, env=None)
    deadline = time.monotonic() + 60
    while DRAWN not in tui.output:
        assert tui.process.poll() is None, bytes(tui.output).decode("utf-8", "replace")
        assert time.monotonic() < deadline, "the app never drew its screen"
        time.sleep(0.02)
    time.sleep(0.5)  # the first frame is drawn before the sidebar's list is filled
    return tui


def test_a_sentence_typed_with_the_session_list_focused_goes_to_the_prompt(paths: Paths):
    install_fake_model(paths, "demo")
    store = SessionStore(paths.sessions_dir)
    first = saved_session(store, "Travel plans", updated=1000.0)
    second = saved_session(store, "Recipes", updated=2000.0)
    tui = start("--session", second.id)
    try:
        # Tab, tab: the list has focus; down: the older session is highlighted. Then the
        # user, believing the prompt has focus, types at normal speed and in a burst.
        tui.type(TAB + TAB + DOWN)
        time.sleep(0.3)
        for word in ("today ", "Germany "):
            for character in word:
                tui.type(character)
                time.sleep(0.05)
        tui.type("dry")  # one burst: d, r, y
        time.sleep(0.3)
        tui.type(ENTER)
        sent = wait_for_session(
            store,
            second.id,
            lambda s: any(m.content == "today Germany dry" for m in s.messages),
            tui,
        )
        assert sent.title == "Recipes"
        assert store.load(first.id).title == "Travel plans"
        assert store.load(first.id).messages == first.messages
        assert store.path_for(first.id).exists()
    finally:
        tui.process.kill()
        tui.finish()
