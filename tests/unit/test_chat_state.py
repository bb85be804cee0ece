"""The chat's rules without a terminal: a real store in a temporary folder and, where a reply is
streamed, a tiny real model (never a mocked engine)."""

from __future__ import annotations

import errno
import json
import os
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from qwen_tui import conversation_tree as tree
from qwen_tui.chat import reply_lifecycle
from qwen_tui.chat.reply import ReplyStream
from qwen_tui.chat.state import ChatState, open_new_session
from qwen_tui.config import Config
from qwen_tui.conversation import (
    GenerationSettings,
    GenerationStats,
    Message,
    Session,
    StopReason,
)
from qwen_tui.engine.base import Engine, TextChunk
from qwen_tui.store import OpenSession, SessionLockedError, SessionStore, StoreError

SHORT = GenerationSettings(temperature=0.0, max_new_tokens=12)


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


@pytest.fixture
def chat(store: SessionStore) -> ChatState:
    return ChatState(store, open_new_session(Config()))


def on_disk(store: SessionStore, session: Session) -> dict[str, Any]:
    return json.loads(store.path_for(session.id).read_text())


@pytest.fixture
def disk_full(monkeypatch: pytest.MonkeyPatch) -> Callable[[bool], None]:
    """Saving fails as on a full disk (fsync raises ENOSPC) while switched on."""
    real_fsync = os.fsync

    def fsync(fd: int) -> None:
        raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))

    def switch(full: bool) -> None:
        monkeypatch.setattr(os, "fsync", fsync if full else real_fsync)

    return switch


# ---------------------------------------------------------------- which session, its lock


def test_a_new_session_leaves_no_file_until_its_first_prompt_locks_and_saves_it(
    chat: ChatState, store: SessionStore
) -> None:
    session = chat.session
    assert chat.opened.lock is None and not store.path_for(session.id).exists()
    sent = chat.send("hello there")
    assert chat.opened.lock is not None, "the first save locks the new session"
    assert store.holder(session.id) is not None
    assert on_disk(store, session)["messages"][0]["content"] == "hello there"
    assert sent.message is session.messages[-1] and session.title == "hello there"
    # A second qwen-tui opening it now only gets to read it.
    with SessionStore(store.dir).open(session.id) as other:
        assert other.read_only


def test_showing_another_session_releases_the_lock_of_the_one_before(
    chat: ChatState, store: SessionStore
) -> None:
    first = chat.session
    chat.send("first")
    chat.show(open_new_session(Config()))
    with SessionStore(store.dir).open(first.id) as other:
        assert not other.read_only, "the session left behind must be free for others"


def test_a_new_id_someone_else_locked_is_not_saved_over(
    chat: ChatState, store: SessionStore
) -> None:
    session = chat.session
    taken = SessionStore(store.dir).open_new(Session(id=session.id))
    with taken, pytest.raises(SessionLockedError):
        chat.send("mine")
    assert session.messages == [] and not store.path_for(session.id).exists()


def test_sessions_changed_sees_another_process_saving(chat: ChatState, store: SessionStore) -> None:
    chat.send("make the folder")
    chat.sessions_changed()
    assert not chat.sessions_changed()
    SessionStore(store.dir).save(Session(title="from ask --new-session"))
    assert chat.sessions_changed()
    assert not chat.sessions_changed()


def test_deleting_the_shown_session_says_so_and_a_never_saved_one_is_no_error(
    chat: ChatState, store: SessionStore
) -> None:
    assert chat.delete(chat.session.id), "a new session has no file: nothing to remove"
    chat.send("to be deleted")
    other = Session(title="other")
    store.save(other)
    assert not chat.delete(other.id)
    assert chat.delete(chat.session.id)
    assert not store.path_for(chat.session.id).exists()


# ---------------------------------------------------------------- saving and failures


def test_a_prompt_that_cannot_be_saved_leaves_the_session_as_it_was(
    chat: ChatState, store: SessionStore, disk_full: Callable[[bool], None]
) -> None:
    chat.send("first")
    before = on_disk(store, chat.session)
    disk_full(True)
    with pytest.raises(StoreError):
        chat.send("second")
    disk_full(False)
    assert [m.content for m in chat.session.messages] == ["first"]
    assert chat.session.title == "first"
    assert on_disk(store, chat.session) == before
    assert chat.unsaved is None, "a prompt that failed is still in the prompt box"


def test_a_reply_that_cannot_be_saved_is_kept_as_unsaved_until_a_save_works(
    chat: ChatState, store: SessionStore, disk_full: Callable[[bool], None]
) -> None:
    chat.send("question")
    chat.replies.start_reply("tiny", None)
    disk_full(True)
    finished = chat.replies.finish(GenerationStats(generated_tokens=3, stop_reason=StopReason.EOS))
    assert finished is not None and isinstance(finished.save_error, StoreError)
    assert chat.unsaved is chat.session and "space" in chat.unsaved_error
    disk_full(False)
    chat.save(chat.session, conversation=True)
    assert chat.unsaved is None and chat.unsaved_error == ""
    assert on_disk(store, chat.session)["messages"][-1]["stats"]["generated_tokens"] == 3


def test_rename_and_settings_are_undone_when_the_save_fails(
    chat: ChatState, disk_full: Callable[[bool], None]
) -> None:
    chat.send("hello")
    session = chat.session
    disk_full(True)
    with pytest.raises(StoreError):
        chat.rename(session, "new title")
    with pytest.raises(StoreError):
        chat.change_settings(session, "be brief", SHORT)
    assert session.title == "hello"
    assert session.system_prompt == Config().system_prompt and session.settings != SHORT
    assert chat.unsaved is None, "settings and titles are not a conversation to ask about"
    disk_full(False)
    chat.change_settings(session, "be brief", SHORT)
    assert (session.system_prompt, session.settings) == ("be brief", SHORT)


# ---------------------------------------------------------------- edit and regenerate


def answer(chat: ChatState, text: str) -> None:
    """A finished reply (what the model said is not what these tests are about)."""
    chat.replies.start_reply("tiny", None)
    assert chat.reply is not None
    chat.reply.content = text
    chat.replies.finish(GenerationStats(stop_reason=StopReason.EOS))


def conversation(chat: ChatState, *turns: str) -> list[Message]:
    """User/assistant turns saved in the session shown."""
    for index, text in enumerate(turns):
        if index % 2 == 0:
            chat.send(text)
        else:
            answer(chat, text)
    return chat.session.messages


def test_sending_an_edit_replaces_the_edited_prompt_and_everything_after_it(
    chat: ChatState, store: SessionStore
) -> None:
    messages = conversation(chat, "q1", "a1", "q2", "a2")
    edited = chat.last_user_message()
    assert edited is not None and edited.content == "q2"
    chat.editing = edited
    sent = chat.send("q2, better")
    assert [m.content for m in sent.replaced] == ["q2", "a2"]
    assert [m.content for m in messages] == ["q1", "a1", "q2, better"]
    assert chat.editing is None
    assert [m["content"] for m in on_disk(store, chat.session)["messages"]] == [
        "q1",
        "a1",
        "q2, better",
    ]


def test_an_edit_that_cannot_be_saved_keeps_the_old_turns_and_the_edit(
    chat: ChatState, disk_full: Callable[[bool], None]
) -> None:
    messages = conversation(chat, "q1", "a1")
    chat.editing = messages[0]
    disk_full(True)
    with pytest.raises(StoreError):
        chat.send("q1 again")
    assert [m.content for m in chat.session.messages] == ["q1", "a1"]
    assert chat.editing is not None, "escape still leaves the edit; enter tries again"


def test_regenerate_replaces_only_the_last_answer(chat: ChatState) -> None:
    assert not chat.can_regenerate(), "nothing sent yet"
    conversation(chat, "q1", "a1", "q2")
    assert chat.can_regenerate() and chat.drop_last_answer() is None, "q2 has no answer yet"
    answer(chat, "a2")
    messages = chat.session.messages
    assert messages[-1].content == "a2"
    dropped = chat.drop_last_answer()
    assert dropped is not None and dropped.content == "a2"
    assert [m.content for m in messages] == ["q1", "a1", "q2"]


def test_no_edit_starts_while_a_reply_streams(chat: ChatState) -> None:
    conversation(chat, "q1")
    chat.replies.start_reply("tiny", None)
    assert chat.last_user_message() is None
    chat.replies.stop_and_save()
    assert chat.last_user_message() is chat.session.messages[0]


# ---------------------------------------------------------------- a reply from a real model


def stream(engine: Engine, chat: ChatState, step_s: float) -> tuple[ReplyStream, list[int]]:
    """Run a reply the way the worker and the UI do, `step_s` apart per piece; the token
    count on disk after each take."""
    conversation = chat.replies.start_reply(engine.info.name, 40)
    streaming = chat.replies.streaming
    assert streaming is not None
    saved_counts, now = [], streaming.started
    for event in engine.generate(conversation, chat.session.settings, streaming.cancel):
        if not isinstance(event, TextChunk):
            break
        streaming.incoming.put(event.text)
        now += step_s
        chat.replies.take(streaming, now)
        stats = on_disk(chat.store, chat.session)["messages"][-1]["stats"]
        saved_counts.append(stats["generated_tokens"])
    return streaming, saved_counts


@pytest.mark.slow
def test_a_streaming_reply_is_saved_at_once_then_every_partial_save_s(
    chat: ChatState, store: SessionStore, tiny_engine: Callable[[str], Engine]
) -> None:
    engine = tiny_engine("qwen2")
    chat.session.settings = GenerationSettings(temperature=0.0, max_new_tokens=24)
    chat.send("count")
    step = reply_lifecycle.PARTIAL_SAVE_S / 4
    streaming, saved_counts = stream(engine, chat, step)
    # Random weights: how many pieces come out is not fixed, only that there are several.
    assert len(saved_counts) == streaming.chunks >= 6, "the tiny model should say more"
    # The first piece is saved at once, then one save per PARTIAL_SAVE_S (4 pieces here):
    # on disk after pieces 1..8: 1 1 1 1 5 5 5 5, then 9 ...
    assert saved_counts == [1 + (n // 4) * 4 for n in range(len(saved_counts))]
    reply = on_disk(store, chat.session)["messages"][-1]
    assert reply["incomplete"] is True and reply["role"] == "assistant"
    assert streaming.message.content.startswith(reply["content"]), "as far as it had got"
    assert streaming.ttft_s is not None and streaming.tok_s(streaming.started + 10) is not None
    assert streaming.context_used == 40 + streaming.chunks


@pytest.mark.slow
def test_a_finished_reply_is_saved_whole_with_its_stats(
    chat: ChatState, store: SessionStore, tiny_engine: Callable[[str], Engine]
) -> None:
    engine = tiny_engine("qwen2")
    chat.session.settings = SHORT
    chat.send("hi")
    conversation = chat.replies.start_reply(engine.info.name, None)
    streaming = chat.replies.streaming
    assert streaming is not None and conversation[0].role == "system"
    assert conversation[-1].content == "hi", "the reply itself is not sent to the model"
    events = list(engine.generate(conversation, SHORT, streaming.cancel))
    for event in events[:-1]:
        assert isinstance(event, TextChunk)
        streaming.incoming.put(event.text)  # the UI never took them: finish does
    finished = chat.replies.finish(events[-1].stats)
    assert finished is not None and finished.save_error is None
    text = "".join(e.text for e in events[:-1] if isinstance(e, TextChunk))
    assert finished.rest == text and finished.stream.message.content == text
    assert chat.replies.streaming is None and chat.replies.finish(events[-1].stats) is None
    reply = on_disk(store, chat.session)["messages"][-1]
    assert reply["content"] == text and reply["incomplete"] is False
    assert reply["stats"]["generated_tokens"] == events[-1].stats.generated_tokens > 0
    assert on_disk(store, chat.session)["model"] == engine.info.name


@pytest.mark.slow
def test_stop_ends_the_reply_as_stopped_and_quitting_saves_how_far_it_got(
    chat: ChatState, store: SessionStore, tiny_engine: Callable[[str], Engine]
) -> None:
    engine = tiny_engine("qwen2")
    chat.session.settings = GenerationSettings(temperature=0.0, max_new_tokens=200)
    chat.send("go on")
    conversation = chat.replies.start_reply(engine.info.name, None)
    streaming = chat.replies.streaming
    assert streaming is not None
    events = engine.generate(conversation, chat.session.settings, streaming.cancel)
    for _ in range(3):
        event = next(events)
        assert isinstance(event, TextChunk)
        streaming.incoming.put(event.text)
    assert chat.replies.stop() and streaming.cancel.is_set()
    last = list(events)[-1]
    assert last.stats.stop_reason is StopReason.STOPPED
    # Quitting before the UI saw the end: what was streamed is saved, marked stopped.
    chat.replies.stop_and_save()
    assert not chat.replies.stop() and chat.replies.streaming is None
    reply = on_disk(store, chat.session)["messages"][-1]
    assert reply["incomplete"] is False
    assert reply["stats"]["stop_reason"] == "stopped"
    assert reply["stats"]["generated_tokens"] == streaming.chunks == 3


def test_a_failing_partial_save_is_reported_once_per_reply(
    chat: ChatState, disk_full: Callable[[bool], None]
) -> None:
    chat.send("q")
    chat.replies.start_reply("tiny", None)
    streaming = chat.replies.streaming
    assert streaming is not None
    disk_full(True)
    errors = []
    for step in range(4):
        streaming.incoming.put("piece ")
        taken = chat.replies.take(
            streaming, streaming.started + step * reply_lifecycle.PARTIAL_SAVE_S
        )
        assert taken is not None and taken.text == "piece "
        errors.append(taken.save_error)
    assert isinstance(errors[0], StoreError) and errors[1:] == [None, None, None]
    assert chat.unsaved is chat.session
    disk_full(False)
    streaming.incoming.put("more")
    chat.replies.take(streaming, streaming.started + 10 * reply_lifecycle.PARTIAL_SAVE_S)
    assert chat.unsaved is None, "a partial save that works clears the unsaved mark"


def test_pieces_of_a_reply_that_is_over_are_not_taken(chat: ChatState) -> None:
    chat.send("q")
    chat.replies.start_reply("tiny", None)
    streaming = chat.replies.streaming
    assert streaming is not None
    chat.replies.stop_and_save()
    streaming.incoming.put("late")
    assert chat.replies.take(streaming, streaming.started + 1) is None
    assert chat.session.messages[-1].content == ""


def test_live_stats_refresh_at_most_every_live_stats_s(chat: ChatState) -> None:
    chat.send("q")
    chat.replies.start_reply("tiny", None)
    streaming = chat.replies.streaming
    assert streaming is not None
    start, step = streaming.started, reply_lifecycle.LIVE_STATS_S / 3
    refreshes = []
    for index in range(1, 8):
        streaming.incoming.put("x")
        taken = chat.replies.take(streaming, start + reply_lifecycle.LIVE_STATS_S + index * step)
        assert taken is not None
        refreshes.append(taken.live_stats)
        assert taken.first is (index == 1)
    assert refreshes == [True, False, False, True, False, False, True]


def test_a_prompt_waits_for_the_model_and_interrupted_replies_settle_on_the_next_turn(
    chat: ChatState, store: SessionStore
) -> None:
    conversation(chat, "q1")
    chat.replies.start_reply("tiny", None)
    assert chat.reply is not None
    chat.reply.content = "half an answer"
    streaming = chat.replies.streaming
    assert streaming is not None
    streaming.incoming.put("")  # one piece: the first take saves it as it is
    chat.replies.take(streaming, streaming.started)
    # The process dies here; the next qwen-tui opens the session and sends a new prompt.
    chat.opened.close()
    reopened = SessionStore(store.dir).open(chat.session.id)
    later = ChatState(SessionStore(store.dir), reopened)
    assert [m.content for m in reopened.interrupted] == ["half an answer"]
    sent = later.send("q2")
    assert [m.content for m in sent.settled] == ["half an answer"]
    assert later.session.messages[1].stopped and not later.session.messages[1].incomplete
    assert later.wait_for_model() is sent.message and later.pending is sent.message
    assert later.clear_pending() is sent.message and later.pending is None
    later.close()


def test_a_session_read_only_here_says_who_writes_it(chat: ChatState, store: SessionStore) -> None:
    chat.send("mine")
    other = ChatState(SessionStore(store.dir), SessionStore(store.dir).open(chat.session.id))
    assert other.opened.read_only
    text = other.read_only_text()
    assert text.startswith("Read-only") and "(this qwen-tui)" in text  # the writer, named
    other.close()
    summary = ChatState(store, OpenSession(Session(), None)).unsaved_summary()
    assert summary.title == "New session" and summary.message_count == 0


# ---------------------------------------------------------------- editing and continuing a reply


def answered(chat: ChatState, *turns: tuple[str, str]) -> list[Message]:
    """The session with these (prompt, reply) turns, saved."""
    for prompt, reply in turns:
        chat.send(prompt)
        chat.session.messages.append(Message("assistant", reply))
    chat.save(chat.session)
    return chat.session.messages


def test_an_edited_reply_is_a_sibling_of_the_old_text(
    chat: ChatState, store: SessionStore, disk_full: Callable[[bool], None]
) -> None:
    first, first_reply, second, last_reply = answered(chat, ("q1", "a1"), ("q2", "a2"))
    edited = chat.branches.replace_reply(last_reply, "a2, edited\x1b[31m")
    assert chat.session.messages == [first, first_reply, second, edited]
    assert edited.content == "a2, edited\x1b[31m" and last_reply.content == "a2"
    assert tree.siblings(chat.session, edited) == [last_reply, edited]
    saved = store.load(chat.session.id)
    assert [m.content for m in saved.messages] == ["q1", "a1", "q2", "a2, edited\x1b[31m"]
    assert [m.content for m in saved.branches] == ["a2"]
    # An earlier answer: the turns after it answered its old text, they go with it.
    again = chat.branches.replace_reply(first_reply, "a1, edited")
    assert chat.session.messages == [first, again]
    assert chat.replies.reply_to_continue() is again
    assert tree.position(chat.session, again) == (2, 2)


def test_an_edit_that_cannot_be_saved_or_is_not_a_reply_changes_nothing(
    chat: ChatState, disk_full: Callable[[bool], None]
) -> None:
    messages = answered(chat, ("q1", "a1"))
    before = list(messages)
    disk_full(True)
    with pytest.raises(StoreError):
        chat.branches.replace_reply(messages[-1], "lost")
    assert chat.session.messages == before and chat.session.branches == []
    disk_full(False)
    with pytest.raises(ValueError, match="reply"):
        chat.branches.replace_reply(messages[0], "a prompt is edited from the prompt box")
    chat.replies.start_reply("tiny", None)
    with pytest.raises(ValueError, match="being generated"):
        chat.branches.replace_reply(chat.session.messages[-1], "no")


def test_only_the_last_reply_continues_and_not_while_one_streams(chat: ChatState) -> None:
    assert chat.replies.reply_to_continue() is None
    messages = answered(chat, ("q1", "a1"))
    assert chat.replies.reply_to_continue() is messages[-1]
    chat.send("q2")
    assert chat.replies.reply_to_continue() is None, "a prompt waits for its own reply"
    with pytest.raises(ValueError):
        chat.replies.continue_reply("tiny", None)
    chat.replies.start_reply("tiny", None)
    assert chat.replies.reply_to_continue() is None


def test_a_continued_reply_drops_the_numbers_of_its_last_generation(chat: ChatState) -> None:
    [_prompt, reply] = answered(chat, ("q", "cut short"))
    reply.stats = GenerationStats(generated_tokens=2, stop_reason=StopReason.STOPPED)
    chat.replies.continue_reply("tiny", None)
    assert reply.stats is None and reply.incomplete and not reply.stopped
    assert chat.reply is reply


def continue_with(engine: Engine, chat: ChatState, pieces: int | None = None) -> list[Message]:
    """Continue the last reply through `engine` as the worker and the UI do; stop after
    `pieces` pieces if given. The conversation the engine was asked to continue."""
    conversation = chat.replies.continue_reply(engine.info.name, None)
    streaming = chat.replies.streaming
    assert streaming is not None
    events = engine.generate(conversation, chat.session.settings, streaming.cancel)
    for count, event in enumerate(events, 1):
        if not isinstance(event, TextChunk):
            chat.replies.finish(event.stats)
            break
        streaming.incoming.put(event.text)
        chat.replies.take(streaming, streaming.started + count)
        if count == pieces:
            chat.replies.stop()
    return conversation


@pytest.mark.slow
def test_continue_appends_to_the_edited_reply_with_no_new_turn(
    chat: ChatState, store: SessionStore, tiny_engine: Callable[[str], Engine]
) -> None:
    engine = tiny_engine("qwen2")
    chat.session.settings = GenerationSettings(temperature=0.0, max_new_tokens=6)
    [_prompt, old] = answered(chat, ("Tell me about the terminal.", "It was a"))
    reply = chat.branches.replace_reply(old, "The terminal is")

    conversation = continue_with(engine, chat)
    assert [m.role for m in conversation] == ["system", "user", "assistant"]
    assert conversation[-1].content == "The terminal is"
    fed = engine.fit(conversation, chat.session.settings).ids  # type: ignore[attr-defined]
    assert fed == engine.format.encode_continuation(conversation)  # type: ignore[attr-defined]
    assert len(chat.session.messages) == 2 and chat.session.messages[-1] is reply
    assert reply.content.startswith("The terminal is") and len(reply.content) > 15
    assert not reply.incomplete and reply.stats is not None
    assert reply.stats.prompt_tokens == len(fed) and reply.stats.generated_tokens == 6
    saved = on_disk(store, chat.session)["messages"]
    assert [m["content"] for m in saved] == ["Tell me about the terminal.", reply.content]
    assert saved[-1]["stats"]["stop_reason"] == "max_tokens"


@pytest.mark.slow
def test_a_stopped_continuation_keeps_the_text_and_what_came(
    chat: ChatState, store: SessionStore, tiny_engine: Callable[[str], Engine]
) -> None:
    engine = tiny_engine("qwen2")
    chat.session.settings = GenerationSettings(temperature=0.0, max_new_tokens=200)
    [_prompt, reply] = answered(chat, ("go on", "One, two, "))  # as a stop may keep it
    conversation = continue_with(engine, chat, pieces=2)
    assert conversation[-1].content == "One, two,", "no prompt ends in a lone space token"
    saved = on_disk(store, chat.session)["messages"][-1]
    assert saved["content"] == reply.content and reply.content.startswith("One, two,")
    assert len(reply.content) > len("One, two,")
    assert saved["incomplete"] is False and saved["stats"]["stop_reason"] == "stopped"
    # ... and it continues again, from what it kept.
    assert chat.replies.reply_to_continue() is reply
