"""Conversation branches without a terminal: regenerate and edit keep what they replace as
siblings, switching walks them (the conversation below follows), fork copies a path, and the
tree survives the store, a migration of real old files and an export."""

from __future__ import annotations

import json
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from qwen_tui import conversation_tree as tree
from qwen_tui.chat.state import ChatState, open_new_session
from qwen_tui.config import Config
from qwen_tui.conversation import GenerationStats, Message, Session, StopReason
from qwen_tui.store import SessionStore, StoreError, schema
from qwen_tui.store.export import session_markdown
from qwen_tui.store.session_reading import session_from_dict
from qwen_tui.store.session_writing import session_to_dict
from tests.unit import test_chat_state

disk_full = test_chat_state.disk_full  # the fixture: saves fail as on a full disk

FIXTURES = Path(__file__).parents[1] / "fixtures" / "sessions"
OLD_FILES = {
    "before_attachments.json": "20260101-120000-abcdef",
    "with_attachments_v1.json": "20261204-093000-a1b2c3",
}
"""Written by earlier releases (schema_version 1): before attachments (main at 8d7c07c) and
with attachments (main at 09426a4)."""


@pytest.fixture
def store(tmp_path: Path) -> SessionStore:
    return SessionStore(tmp_path / "sessions")


@pytest.fixture
def chat(store: SessionStore) -> ChatState:
    return ChatState(store, open_new_session(Config()))


def answer(chat: ChatState, text: str) -> Message:
    chat.replies.start_reply("tiny", None)
    reply = chat.reply
    assert reply is not None
    reply.content = text
    chat.replies.finish(GenerationStats(stop_reason=StopReason.EOS))
    return reply


def contents(messages: list[Message]) -> list[str]:
    return [m.content for m in messages]


def regenerated_twice(chat: ChatState) -> list[Message]:
    """q1 a1 q2 and three answers to q2, the last one shown."""
    chat.send("q1")
    answer(chat, "a1")
    chat.send("q2")
    replies = [answer(chat, "first")]
    for text in ("second", "third"):
        assert chat.drop_last_answer() is replies[-1]
        replies.append(answer(chat, text))
    return replies


def reloaded(store: SessionStore, session: Session) -> Session:
    return SessionStore(store.dir).load(session.id)


# ---------------------------------------------------------------- regenerate and walk


def test_regenerating_twice_keeps_three_replies_and_switching_walks_them(
    chat: ChatState, store: SessionStore
) -> None:
    first, second, third = regenerated_twice(chat)
    session = chat.session
    assert contents(session.messages) == ["q1", "a1", "q2", "third"]
    assert [tree.position(session, m) for m in (first, second, third)] == [(1, 3), (2, 3), (3, 3)]
    assert tree.position(session, session.messages[2]) == (1, 1)
    assert chat.branches.branch_target() is third
    assert chat.branches.switch_sibling(third, +1) is None, "the last of three"
    for expected in ("second", "first"):
        switched = chat.branches.switch_sibling(chat.branches.branch_target(), -1)
        assert switched is not None and switched.index == 3
        assert contents(session.messages) == ["q1", "a1", "q2", expected]
        # Saved: the next start (and `ask --session`) continues the branch shown.
        assert contents(reloaded(store, session).messages) == contents(session.messages)
    assert chat.branches.switch_sibling(first, -1) is None, "the first of three"
    assert contents(reloaded(store, session).branches) == ["third", "second"]


def test_the_prompt_sent_is_the_active_path_only(chat: ChatState) -> None:
    first, _, _ = regenerated_twice(chat)
    chat.branches.switch_sibling(chat.branches.branch_target(), -2)
    chat.send("q3")
    sent = chat.replies.start_reply("tiny", None)
    assert contents(sent) == [chat.session.system_prompt, "q1", "a1", "q2", "first", "q3"]
    assert first in chat.session.messages


def test_an_edit_keeps_the_old_prompt_and_its_answers_as_a_branch(chat: ChatState) -> None:
    chat.send("q1")
    answer(chat, "a1")
    chat.send("q2")
    answer(chat, "a2")
    chat.send("q3")
    answer(chat, "a3")
    edited = chat.session.messages[2]
    chat.editing = edited
    sent = chat.send("q2, better")
    answer(chat, "a2 again")
    session = chat.session
    assert contents(sent.replaced) == ["q2", "a2", "q3", "a3"]
    assert contents(session.messages) == ["q1", "a1", "q2, better", "a2 again"]
    assert tree.position(session, sent.message) == (2, 2)
    # Going back to the old prompt brings back the turns that followed it.
    switched = chat.branches.switch_sibling(sent.message, -1)
    assert switched is not None and contents(switched.joined) == ["q2", "a2", "q3", "a3"]
    assert contents(session.messages) == ["q1", "a1", "q2", "a2", "q3", "a3"]
    assert contents(switched.left) == ["q2, better", "a2 again"]
    chat.branches.switch_sibling(edited, +1)
    assert contents(session.messages) == ["q1", "a1", "q2, better", "a2 again"]


def test_walking_back_into_a_branch_follows_the_reply_shown_there_last(chat: ChatState) -> None:
    chat.send("q1")
    replies = [answer(chat, "a")]
    chat.drop_last_answer()
    replies.append(answer(chat, "b"))
    chat.branches.switch_sibling(replies[1], -1)  # "a" shown last under q1
    first_prompt = chat.session.messages[0]
    chat.editing = first_prompt
    chat.send("q1, edited")
    chat.branches.switch_sibling(chat.session.messages[0], -1)
    assert contents(chat.session.messages) == ["q1", "a"]


def test_the_switch_key_stays_on_the_message_walked_even_with_deeper_siblings(
    chat: ChatState,
) -> None:
    chat.send("q1")
    answer(chat, "a1")
    chat.editing = chat.session.messages[0]
    chat.send("q1 b")
    answer(chat, "b1")
    chat.drop_last_answer()
    answer(chat, "b2")
    assert contents(chat.session.messages) == ["q1 b", "b2"]
    assert chat.branches.branch_target().content == "b2", "the deepest message with siblings"
    chat.branches.switch_sibling(chat.session.messages[0], -1)
    chat.branches.switch_sibling(
        chat.branches.branch_target(), +1
    )  # back: still the prompts, not b1/b2
    assert contents(chat.session.messages) == ["q1 b", "b2"]
    assert chat.branches.branch_target(focused=chat.session.messages[1]).content == "b2"


def test_a_switch_that_cannot_be_saved_changes_nothing(
    chat: ChatState, disk_full: Callable[[bool], None]
) -> None:
    regenerated_twice(chat)
    disk_full(True)
    with pytest.raises(StoreError):
        chat.branches.switch_sibling(chat.branches.branch_target(), -1)
    assert contents(chat.session.messages) == ["q1", "a1", "q2", "third"]
    assert sorted(contents(chat.session.branches)) == ["first", "second"]


def test_add_sibling_puts_a_replacement_beside_a_message(
    chat: ChatState, store: SessionStore
) -> None:
    chat.send("q1")
    reply = answer(chat, "a1")
    left = chat.branches.add_sibling(reply, Message("assistant", "a1, edited by hand"))
    assert left == [reply]
    assert contents(reloaded(store, chat.session).messages) == ["q1", "a1, edited by hand"]
    assert tree.position(chat.session, chat.session.messages[-1]) == (2, 2)


# ---------------------------------------------------------------- fork


def test_fork_opens_a_new_session_holding_the_path_up_to_a_message(
    chat: ChatState, store: SessionStore
) -> None:
    regenerated_twice(chat)
    parent = chat.session
    opened = chat.branches.fork_at(parent.messages[1])
    forked = opened.session
    assert forked.id != parent.id and opened.lock is not None
    assert contents(forked.messages) == ["q1", "a1"] and forked.branches == []
    assert forked.forked_from == parent.id and forked.title == parent.title
    assert not any(m.id == p.id for m in forked.messages for p in parent.messages)
    summaries = {s.id: s for s in SessionStore(store.dir).list()}
    assert summaries[forked.id].forked_from == parent.id
    assert summaries[parent.id].message_count == 4
    assert contents(reloaded(store, parent).messages) == ["q1", "a1", "q2", "third"]
    opened.close()


# ---------------------------------------------------------------- on disk


def test_a_session_with_branches_round_trips_as_schema_2(
    chat: ChatState, store: SessionStore
) -> None:
    regenerated_twice(chat)
    chat.branches.switch_sibling(chat.branches.branch_target(), -1)
    data = json.loads(store.path_for(chat.session.id).read_text())
    assert data["schema_version"] == schema.SCHEMA_VERSION == 2
    path, branches = data["messages"], data["branches"]
    assert [m["parent"] for m in path] == [None, path[0]["id"], path[1]["id"], path[2]["id"]]
    assert [(b["content"], b["parent"]) for b in branches] == [
        ("first", path[2]["id"]),
        ("third", path[2]["id"]),
    ]
    again = reloaded(store, chat.session)
    assert again == chat.session and again.branches == chat.session.branches
    assert session_to_dict(again) == data


def test_an_old_release_refuses_a_session_with_branches_instead_of_dropping_them(
    chat: ChatState, monkeypatch: pytest.MonkeyPatch
) -> None:
    regenerated_twice(chat)
    data = session_to_dict(chat.session)
    # What a release that knows schema_version 1 only runs when it reads the file.
    monkeypatch.setattr(schema, "SCHEMA_VERSION", 1)
    monkeypatch.setattr(schema, "MIGRATIONS", {})
    with pytest.raises(ValueError, match=r"schema_version 2 is newer .* upgrade qwen-tui"):
        session_from_dict(data)


@pytest.mark.parametrize("name", OLD_FILES)
def test_real_old_files_migrate_to_a_tree_and_are_written_back_unchanged(
    store: SessionStore, name: str
) -> None:
    original = (FIXTURES / name).read_bytes()
    store.dir.mkdir(parents=True, exist_ok=True)
    copy = store.path_for(OLD_FILES[name])
    shutil.copyfile(FIXTURES / name, copy)
    session = store.load(OLD_FILES[name])
    old = json.loads(original)["messages"]
    assert contents(session.messages) == [m["content"] for m in old]
    assert [len(m.attachments) for m in session.messages] == [
        len(m.get("attachments", [])) for m in old
    ]
    assert session.branches == [] and session.forked_from == ""
    migrated = schema.migrate(json.loads(original))
    assert [m["parent"] for m in migrated["messages"]] == [
        None,
        *(m["id"] for m in migrated["messages"][:-1]),
    ]
    store.save(session)
    assert copy.read_bytes() == original, "no branches: the layout older releases read"
    assert list(store.dir.glob("*.bak")) == []


def test_an_old_file_with_attachments_keeps_them_when_it_gains_branches(
    store: SessionStore,
) -> None:
    store.dir.mkdir(parents=True, exist_ok=True)
    session_id = OLD_FILES["with_attachments_v1.json"]
    shutil.copyfile(FIXTURES / "with_attachments_v1.json", store.path_for(session_id))
    with store.open(session_id) as opened:
        chat = ChatState(store, opened)
        before = [a.label for a in chat.session.messages[0].attachments]
        chat.editing = chat.session.messages[2]
        chat.send("and after that?")
        again = reloaded(store, chat.session)
    assert json.loads(store.path_for(session_id).read_text())["schema_version"] == 2
    assert [a.label for a in again.messages[0].attachments] == before == ["notes.txt", "!ls"]
    assert contents(again.branches) == ["and then?", "Nothing more."]


def tree_data(**changes: object) -> dict:
    session = Session(id="s1")
    session.add("user", "q")
    session.add("assistant", "a")
    session.branches.append(Message("assistant", "b", parent=session.messages[0].id))
    data = session_to_dict(session)
    for where, value in changes.items():
        kind, index, key = where.split("__")
        data[kind][int(index)][key] = value
    return data


@pytest.mark.parametrize(
    ("changes", "error"),
    [
        ({"messages__1__parent": None}, "messages[1].parent: expected"),
        ({"messages__0__parent": "x"}, "messages[0].parent: expected None"),
        ({"branches__0__id": "SAME", "messages__0__id": "SAME"}, "is used twice"),
        ({"branches__0__parent": "nowhere"}, "branches[0].parent: no message has id"),
        ({"branches__0__parent": "loop", "branches__0__id": "loop"}, "go round in a loop"),
        ({"branches__0__id": 7}, "branches[0].id: expected a string"),
    ],
)
def test_a_damaged_tree_is_refused_naming_the_field(changes: dict, error: str) -> None:
    data = tree_data(**changes)
    if "messages__0__id" in changes:
        data["messages"][1]["parent"] = "SAME"
    with pytest.raises(ValueError, match=error.replace("[", r"\[").replace("]", r"\]")):
        session_from_dict(data)


def test_export_writes_the_active_path(chat: ChatState) -> None:
    regenerated_twice(chat)
    chat.branches.switch_sibling(chat.branches.branch_target(), -1)
    text = session_markdown(chat.session)
    assert "second" in text and "first" not in text and "third" not in text


def test_switching_the_edited_prompt_away_ends_the_edit(chat: ChatState) -> None:
    chat.send("q1")
    answer(chat, "a1")
    chat.editing = chat.session.messages[0]
    chat.send("q1 b")
    answer(chat, "b1")
    chat.editing = chat.session.messages[0]  # editing "q1 b" again, then walks away from it
    chat.branches.switch_sibling(chat.session.messages[0], -1)
    assert chat.editing is None
    chat.send("new turn")
    assert contents(chat.session.messages) == ["q1", "a1", "new turn"]


def test_search_finds_text_in_other_branches(chat: ChatState, store: SessionStore) -> None:
    regenerated_twice(chat)
    assert [s.id for s in SessionStore(store.dir).search("SECOND")] == [chat.session.id]
