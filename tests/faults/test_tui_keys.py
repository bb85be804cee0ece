"""Keys typed at a real terminal: the real `qwen-tui` in a pseudo-terminal (80x24), keys sent
as the terminal sends them, the FakeEngine answering (see fake_engine_tui.py)."""

from __future__ import annotations

import os
import time

import pyte

from qwen_tui.conversation import GenerationSettings, Message, Session
from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.faults.fake_engine_tui import scripted_reply
from tests.faults.tui_process import SIZE, TuiProcess, wait_for_session
from tests.tui.conftest import install_fake_model

TAB, DOWN, ENTER, CTRL_Q = "\t", "\x1b[B", "\r", "\x11"
DRAWN = b"search sessions"
FAKE_TUI = ("-m", "tests.faults.fake_engine_tui")


def saved_session(
    store: SessionStore, title: str, updated: float, *, unlimited: bool = False
) -> Session:
    """A saved session with one turn; `unlimited`: replies as long as the engine sends."""
    session = Session(title=title)
    if unlimited:
        session.settings = GenerationSettings(max_new_tokens=10**7)
    session.messages += [Message("user", f"about {title}"), Message("assistant", "noted")]
    session.updated = updated
    store.save(session)
    return session


def wait_for_output(tui: TuiProcess, text: bytes, timeout: float = 60, start: int = 0) -> None:
    deadline = time.monotonic() + timeout
    while text not in tui.output[start:]:
        assert tui.process.poll() is None, bytes(tui.output).decode("utf-8", "replace")
        assert time.monotonic() < deadline, f"{text!r} never appeared on the screen"
        time.sleep(0.02)


def start(*args: str, env: dict[str, str] | None = None) -> TuiProcess:
    tui = TuiProcess(*args, prefix=FAKE_TUI, env=env)
    wait_for_output(tui, DRAWN)
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


def test_quit_after_a_failed_save_asks_and_saves_once_the_disk_is_back(paths: Paths, tmp_path):
    install_fake_model(paths, "demo")
    store = SessionStore(paths.sessions_dir)
    session = saved_session(store, "Reply at risk", updated=1000.0)
    full = tmp_path / "disk-full"
    env = {
        **os.environ,
        "QWEN_TUI_FULL_DISK_FLAG": str(full),
        "QWEN_TUI_FAKE_REPLY": "words:400",
        "QWEN_TUI_FAKE_DELAY": "0.01",
    }
    tui = start("--session", session.id, env=env)
    try:
        tui.type("tell me\r")
        partial = wait_for_session(store, session.id, lambda s: len(s.messages) >= 3, tui)
        full.touch()  # the disk fills up mid-reply
        wait_for_output(tui, b"unsaved")  # the status bar says so
        time.sleep(4.5)  # the reply (4 s) ends and its final save fails, or ctrl+q stops it
        tui.type(CTRL_Q)
        wait_for_output(tui, b"Not saved")
        time.sleep(1)
        assert tui.process.poll() is None  # asked, did not quit
        full.unlink()
        tui.type("r")  # try again
        assert tui.finish(30) == 0
    finally:
        if tui.process.poll() is None:
            tui.process.kill()
            tui.finish()
    reply = store.load(session.id).messages[-1].content
    assert scripted_reply("words:400").startswith(reply)
    assert len(reply) > len(partial.messages[-1].content) + 100  # what only memory held


def flood_env(spec: str, delay: str) -> dict[str, str]:
    return {**os.environ, "QWEN_TUI_FAKE_REPLY": spec, "QWEN_TUI_FAKE_DELAY": delay}


def replying(session: Session) -> bool:
    last = session.messages[-1]
    return last.role == "assistant" and len(last.content) > 200


def test_a_huge_reply_is_on_disk_as_it_arrives_and_escape_and_ctrl_q_work(paths: Paths):
    install_fake_model(paths, "demo")
    store = SessionStore(paths.sessions_dir)
    session = saved_session(store, "Flood", updated=1000.0, unlimited=True)
    reply = scripted_reply("paragraphs:20000")
    tui = start("--session", session.id, env=flood_env("paragraphs:20000", "0.0002"))
    try:
        tui.type("flood me\r")
        wait_for_session(store, session.id, replying, tui)
        tui.type("\x1b")  # escape
        stopped = wait_for_session(store, session.id, lambda s: s.messages[-1].stopped, tui)
        assert reply.startswith(stopped.messages[-1].content)
        tui.type(CTRL_Q)
        assert tui.finish(30) == 0
    finally:
        if tui.process.poll() is None:
            tui.process.kill()
            tui.finish()


def test_sigkill_mid_flood_keeps_what_had_arrived(paths: Paths):
    install_fake_model(paths, "demo")
    store = SessionStore(paths.sessions_dir)
    session = saved_session(store, "Flood", updated=1000.0, unlimited=True)
    reply = scripted_reply("table:200x500")
    tui = start("--session", session.id, env=flood_env("table:200x500", "0.0002"))
    try:
        tui.type("flood me\r")
        wait_for_session(store, session.id, replying, tui)
    finally:
        tui.process.kill()  # SIGKILL
        tui.finish()
    kept = store.load(session.id).messages[-1].content
    assert len(kept) > 200 and reply.startswith(kept)


def screen_lines(tui: TuiProcess) -> list[str]:
    screen = pyte.Screen(SIZE[1], SIZE[0])
    pyte.ByteStream(screen).feed(bytes(tui.output))
    return screen.display


def test_fast_typing_with_backspaces_in_the_search_box_keeps_its_order(paths: Paths):
    install_fake_model(paths, "demo")
    store = SessionStore(paths.sessions_dir)
    for number, title in enumerate(("Red apples", "Blue sky", "Green grass")):
        saved_session(store, title, updated=1000.0 + number)
    tui = start()
    try:
        tui.type(TAB)  # prompt -> search box
        time.sleep(0.3)
        tui.type("r\x7fRed\x7f\x7f\x7fBlue")  # one burst, as over a slow SSH link
        deadline = time.monotonic() + 30
        while not screen_lines(tui)[0].startswith("Blue "):
            assert time.monotonic() < deadline, screen_lines(tui)[:3]
            time.sleep(0.1)
    finally:
        tui.process.kill()
        tui.finish()
