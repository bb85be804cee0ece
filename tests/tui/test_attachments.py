"""`!command` and `@path` in the prompt, the draft's token count, and attachments as
collapsed blocks in the conversation, driven through the keyboard."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qwen_tui.attachment import Attachment
from qwen_tui.screens.confirm_dialog import ConfirmDialog
from qwen_tui.widgets.attachment_block import AttachmentBlock
from qwen_tui.widgets.draft_info import DraftInfo
from tests.tui.conftest import settle, wait_for
from tests.tui.fake_engine import FakeEngine


@pytest.fixture(autouse=True)
def in_tmp(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Commands run and @paths start where qwen-tui was started: here, a fresh folder."""
    monkeypatch.chdir(tmp_path)
    return tmp_path


def saved_messages(app) -> list[dict]:
    session = app.chat_screen.session
    return json.loads(app.store.path_for(session.id).read_text(encoding="utf-8"))["messages"]


def draft_info(app) -> str:
    return str(app.chat_screen.query_one(DraftInfo).render())


async def type_text(pilot, text: str) -> None:
    await pilot.press(*["space" if c == " " else c for c in text])


async def test_a_command_runs_after_confirmation_and_goes_with_the_next_message(make_app):
    engine = FakeEngine("ok")
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "!echo hi; echo warn >&2")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        # a command is not counted as text to send
        await wait_for(pilot, lambda: "enter asks before running" in draft_info(app))
        dialog = app.screen
        await wait_for(pilot, lambda: dialog.drawn)
        shown = " ".join(str(s.render()) for s in dialog.query("Static"))
        assert "$ echo hi; echo warn >&2" in shown  # the user sees what will run
        await pilot.press("y")
        await wait_for(pilot, lambda: app.chat_screen.attaching.pending)
        assert app.chat_screen.prompt.text == ""  # the command left the draft
        await wait_for(pilot, lambda: "echo hi" in draft_info(app))
        await type_text(pilot, "what is this")
        await pilot.press("enter")
        await settle(app, pilot)
        (attachment,) = saved_messages(app)[0]["attachments"]
        assert attachment["exit_status"] == 0
        assert attachment["text"] == "hi\n\n[stderr]\nwarn\n"
        asked = engine.calls[0][0][-1].content
        assert asked.startswith("what is this\n\n[Attachment 1: $ echo hi; echo warn >&2")
        assert not app.chat_screen.attaching.pending  # the next draft starts empty


async def test_the_command_dialog_defaults_to_no(make_app):
    app = make_app(FakeEngine("ok"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "!touch ran")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await wait_for(pilot, lambda: app.screen.drawn)
        await pilot.press("enter")  # the focused button is Cancel
        await settle(app, pilot)
        assert not Path("ran").exists()
        assert app.chat_screen.prompt.text == "!touch ran"  # kept, to fix or send again
        assert not app.chat_screen.attaching.pending


async def test_a_yes_typed_with_the_enter_runs_nothing(make_app):
    import asyncio

    from textual import events

    app = make_app(FakeEngine("ok"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "!touch ran")
        app._driver.send_message(events.Key("enter", "\r"))
        while not isinstance(app.screen, ConfirmDialog):  # no pause: no frame drawn
            await asyncio.sleep(0)
        app._driver.send_message(events.Key("y", "y"))  # before the question was drawn
        await settle(app, pilot)
        await pilot.pause(0.2)
        assert isinstance(app.screen, ConfirmDialog)  # still asking
        await pilot.press("n")
        await settle(app, pilot)
        assert not Path("ran").exists()
        assert not app.chat_screen.attaching.pending


async def test_attachments_show_collapsed_and_open_on_enter(make_app):
    app = make_app(FakeEngine("ok"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.chat_screen.attaching.add(Attachment("file", "a.txt", "[bold]x[/bold] line\n"))
        await type_text(pilot, "look")
        await pilot.press("enter")
        await settle(app, pilot)
        block = app.chat_screen.query_one(AttachmentBlock)
        body = block.query_one(".attachment-text")
        assert not body.display or not block.is_open
        assert "▶" in str(block.query_one(".attachment-title").render())
        block.focus()
        await pilot.press("enter")
        assert block.is_open and body.display
        assert "[bold]x[/bold] line" in str(body.render())  # shown as text, not markup
        await pilot.click(block.query_one(".attachment-title"))
        assert not block.is_open


async def test_an_at_path_attaches_the_file_and_its_size_shows_first(make_app, in_tmp):
    (in_tmp / "notes.txt").write_text("alpha beta gamma delta\n")
    engine = FakeEngine("ok")
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "sum up @notes.txt")
        await wait_for(pilot, lambda: "draft" in draft_info(app))
        # FakeEngine counts words: "sum up @notes.txt", the header and the four of the file
        assert "tokens" in draft_info(app) and "/1,536" in draft_info(app)
        assert "📎 file notes.txt · 1 line (@ in the draft)" in draft_info(app)
        await pilot.press("enter")
        await settle(app, pilot)
        (message,) = [m for m in saved_messages(app) if m["role"] == "user"]
        assert message["content"] == "sum up @notes.txt"
        assert message["attachments"][0]["text"] == "alpha beta gamma delta\n"
        assert "alpha beta gamma delta" in engine.calls[0][0][-1].content


async def test_a_binary_file_is_refused_and_the_draft_kept(make_app, in_tmp):
    (in_tmp / "a.out").write_bytes(b"\x7fELF\x00\x00")
    engine = FakeEngine("ok")
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "what is @a.out")
        await wait_for(pilot, lambda: "binary" in draft_info(app))  # said before sending
        await pilot.press("enter")
        await settle(app, pilot)
        assert engine.calls == []
        assert app.chat_screen.prompt.text == "what is @a.out"
        assert any("binary" in str(n.message) for n in app._notifications)


@pytest.mark.parametrize("answer", ["y", "n"])
async def test_a_file_over_the_window_asks_to_cut_or_cancel(make_app, in_tmp, answer):
    (in_tmp / "big.log").write_text("word " * 5000)  # FakeEngine: a token a word; room 1,536
    engine = FakeEngine("ok")
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "@big.log")
        await pilot.press("enter")
        await wait_for(pilot, lambda: isinstance(app.screen, ConfirmDialog))
        await wait_for(pilot, lambda: app.screen.drawn)
        await pilot.press(answer)
        await settle(app, pilot)
        if answer == "n":
            assert engine.calls == [] and app.chat_screen.prompt.text == "@big.log"
            return
        sent = engine.calls[0][0]
        assert engine.count_tokens(sent) <= 1536
        (attachment,) = saved_messages(app)[0]["attachments"]
        assert attachment["truncated"] and "cut here to fit" in attachment["text"]


async def test_tab_completes_an_at_path(make_app, in_tmp):
    (in_tmp / "report-2026.txt").write_text("r")
    app = make_app(FakeEngine("ok"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "see @rep")
        await pilot.press("tab")
        assert app.chat_screen.prompt.text == "see @report-2026.txt"
        assert app.chat_screen.prompt.has_focus  # tab completed instead of moving focus


async def test_piped_text_waits_in_a_new_sessions_draft(make_app):
    piped = Attachment("stdin", "stdin", "error: disk full\n")
    engine = FakeEngine("ok")
    app = make_app(engine, piped=piped)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        assert app.chat_screen.attaching.pending == [piped]
        await wait_for(pilot, lambda: "piped stdin" in draft_info(app))
        await pilot.press("enter")  # an empty prompt sends what is attached
        await settle(app, pilot)
        assert "error: disk full" in engine.calls[0][0][-1].content


async def test_backspace_in_an_empty_prompt_removes_the_last_attachment(make_app):
    app = make_app(FakeEngine("ok"))
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        app.chat_screen.attaching.add(Attachment("stdin", "stdin", "x"))
        await pilot.pause()
        await pilot.press("backspace")
        assert app.chat_screen.attaching.pending == []


async def test_an_at_word_that_is_no_file_is_said_then_sent_as_text(make_app):
    engine = FakeEngine("ok")
    app = make_app(engine)
    async with app.run_test(size=(80, 24)) as pilot:
        await settle(app, pilot)
        await type_text(pilot, "why does @pytest.mark.skip fail")
        await wait_for(pilot, lambda: "no such file here" in draft_info(app))
        await pilot.press("enter")
        await settle(app, pilot)
        asked = engine.calls[0][0][-1]
        assert asked.content == "why does @pytest.mark.skip fail"  # code, not a path
