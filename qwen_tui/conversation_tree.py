"""A session's conversation as a tree: other replies and earlier edits kept as branches.

`Session.messages` stays the active path (what is shown, sent to the model, exported and
continued by `ask --session`), so code that only reads the conversation never sees the tree.
Every other message is in `Session.branches` with its `parent` id. On the path the parent
is implicit (the message before), so code that appends to the path needs no bookkeeping.

Siblings (the messages that share a parent) are ordered by creation: `‹ 2/3 ›` keeps its
numbering as the user walks them. Walking down into a branch follows, at each message, the
child that was on the active path most recently: `branches` is kept in the order messages
left the path, so that is the child nearest its end. Plain data, no I/O.
"""

from __future__ import annotations

from dataclasses import replace

from qwen_tui.conversation import Message, Session, new_message_id


def parent_id(session: Session, message: Message) -> str | None:
    """The id of the message `message` follows (None: it starts the conversation)."""
    for index, on_path in enumerate(session.messages):
        if on_path is message:
            return session.messages[index - 1].id if index else None
    return message.parent


def siblings(session: Session, message: Message) -> list[Message]:
    """`message` and the messages that share its parent, oldest first."""
    parent = parent_id(session, message)
    found = [m for m in session.branches if m.parent == parent]
    on_path = _path_child(session, parent)
    if on_path is not None:
        found.append(on_path)
    if not any(m is message for m in found):
        found.append(message)
    return sorted(found, key=lambda m: (m.created, m.id))


def _path_child(session: Session, parent: str | None) -> Message | None:
    """The message on the active path that follows `parent` (None: the first one)."""
    if parent is None:
        return session.messages[0] if session.messages else None
    for index, on_path in enumerate(session.messages[:-1]):
        if on_path.id == parent:
            return session.messages[index + 1]
    return None


def position(session: Session, message: Message) -> tuple[int, int]:
    """(1-based place of `message` among its siblings, how many there are)."""
    group = siblings(session, message)
    return next(i for i, m in enumerate(group, 1) if m is message), len(group)


def path_index(session: Session, message: Message) -> int:
    """Where `message` is on the active path; ValueError if it is not there."""
    for index, on_path in enumerate(session.messages):
        if on_path is message:
            return index
    raise ValueError("the message is not on the active path")


def leave_path(session: Session, message: Message) -> list[Message]:
    """`message` (on the active path) and everything after it leave the path for
    `branches`, keeping their place in the tree. Returns them, in path order."""
    index = path_index(session, message)
    gone = session.messages[index:]
    for offset, moved in enumerate(gone, index):
        moved.parent = session.messages[offset - 1].id if offset else None
    del session.messages[index:]
    session.branches.extend(gone)
    return gone


def switch_to(session: Session, sibling: Message) -> tuple[list[Message], list[Message]]:
    """Make `sibling` (off the path, sharing a parent with a message on it) part of the
    active path, followed by its most recently shown descendants. Returns (the messages
    that left the path, the ones that joined it)."""
    parent = sibling.parent
    index = (
        0
        if parent is None
        else 1 + next(i for i, m in enumerate(session.messages) if m.id == parent)
    )
    joined = [sibling]
    while children := [m for m in session.branches if m.parent == joined[-1].id]:
        joined.append(children[-1])
    left = leave_path(session, session.messages[index]) if index < len(session.messages) else []
    session.branches = [m for m in session.branches if not any(m is j for j in joined)]
    session.messages.extend(joined)
    return left, joined


def fork(session: Session, message: Message, new_session: Session) -> Session:
    """`new_session` (its own id and times) made a copy of this session's active path up to
    and including `message`, with its title, model, system prompt and settings. The copies
    get new ids: the two sessions share no message."""
    index = path_index(session, message)
    new_session.title = session.title
    new_session.model = session.model
    new_session.system_prompt = session.system_prompt
    new_session.settings = session.settings
    new_session.forked_from = session.id
    new_session.messages = [
        replace(m, id=new_message_id(), parent=None) for m in session.messages[: index + 1]
    ]
    return new_session
