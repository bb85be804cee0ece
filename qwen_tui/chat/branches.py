"""Branches of the session shown: a reply or an edit kept as a sibling, walking siblings,
forking a session from a message. Each change is saved, or undone and raised as StoreError."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qwen_tui import conversation_tree as tree
from qwen_tui.conversation import Message, Session
from qwen_tui.store import OpenSession, StoreError

if TYPE_CHECKING:
    from qwen_tui.chat.state import ChatState


@dataclass
class Switched:
    """The active path took another branch at `index`: the screen redraws from there."""

    index: int
    left: list[Message]
    """What was shown from `index` on: now a branch."""
    joined: list[Message]
    """What is shown from `index` on now."""


class Branches:
    """The branch rules of `chat`'s session, and which message the user last walked to."""

    def __init__(self, chat: ChatState) -> None:
        self.chat = chat
        self.walked: Message | None = None
        """The message the user last switched to: the next switch acts on its siblings
        again, even if the branch it brought in has deeper ones."""

    def add_sibling(self, of: Message, replacement: Message) -> list[Message]:
        """`replacement` takes the place of `of` (on the active path); `of` and what
        followed it stay as a branch beside it. Saved; returns what left the path. On a
        failed save the session is as before and StoreError is raised."""
        session = self.chat.session
        kept = list(session.messages), list(session.branches)
        left = tree.leave_path(session, of)
        session.messages.append(replacement)
        session.updated = time.time()
        try:
            self.chat.save(session)
        except StoreError:
            session.messages, session.branches = kept
            raise
        return left

    def replace_reply(self, message: Message, text: str) -> Message:
        """The one way an edited reply is saved: a reply with `text` takes the place of
        `message` (an answer on the active path, not the one streaming), which stays as a
        sibling branch with the turns that followed it (they answered its old text): the
        edited reply is then the last one, the one continue goes on from. Returns it. On a
        failed save the session is as before and StoreError is raised."""
        if message.role != "assistant" or not any(m is message for m in self.chat.session.messages):
            raise ValueError("only a reply of the session shown can be edited")
        if message is self.chat.reply:
            raise ValueError("a reply cannot be edited while it is being generated")
        edited = Message("assistant", text)
        self.add_sibling(message, edited)
        self.walked = None
        return edited

    def branch_target(self, focused: Message | None = None) -> Message | None:
        """The message whose siblings a switch walks: the focused one, else the one last
        switched to, else the last one on the active path that has siblings."""
        session = self.chat.session
        parents = {m.parent for m in session.branches}
        with_siblings = [
            m
            for i, m in enumerate(session.messages)
            if (session.messages[i - 1].id if i else None) in parents
        ]
        for candidate in (focused, self.walked):
            if any(m is candidate for m in with_siblings):
                return candidate
        return with_siblings[-1] if with_siblings else None

    def switch_sibling(self, message: Message, step: int) -> Switched | None:
        """Show the sibling `step` places from `message` (on the active path) and the
        branch under it; saved, so `ask --session` and the next start continue it. None
        when there is no sibling that far. On a failed save nothing changes (raises)."""
        session = self.chat.session
        group = tree.siblings(session, message)
        place = next(i for i, m in enumerate(group) if m is message) + step
        if not 0 <= place < len(group) or step == 0:
            return None
        index = tree.path_index(session, message)
        left, joined = tree.switch_to(session, group[place])
        try:
            self.chat.save(session)
        except StoreError:
            tree.switch_to(session, message)
            raise
        self.walked = group[place]
        if any(m is self.chat.editing for m in left):
            self.chat.editing = None  # its turn is not shown now: the text is sent as a new one
        return Switched(index, left, joined)

    def fork_at(self, message: Message) -> OpenSession:
        """A new session holding the active path up to `message`, saved and locked, to be
        shown next. Raises StoreError (nothing is left behind then)."""
        store = self.chat.store
        forked = tree.fork(self.chat.session, message, Session())
        opened = store.open_new(forked)
        try:
            store.save(forked)
        except StoreError:
            opened.close()
            raise
        return opened
