"""The chat screen's keys for conversation branches: walk the siblings of a message
(`‹ 2/3 ›`) and fork a session from a message. The rules are the chat state's
(`chat.branches.switch_sibling`, `fork_at`); this draws what they changed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual.binding import Binding

from qwen_tui import conversation_tree as tree
from qwen_tui.actions import default_key
from qwen_tui.conversation import Message
from qwen_tui.store import StoreError

if TYPE_CHECKING:
    from qwen_tui.screens.chat_screen import ChatScreen

BRANCH_BINDINGS = [
    Binding(
        default_key("branch.previous"),
        "previous_branch",
        "Previous branch",
        id="branch.previous",
        priority=True,
    ),
    Binding(
        default_key("branch.next"), "next_branch", "Next branch", id="branch.next", priority=True
    ),
    Binding(default_key("session.fork"), "fork", "Fork session", id="session.fork", priority=True),
]
"""Priority: they work while the prompt box has the keyboard (where the user is)."""


class BranchKeys:
    """The actions of BRANCH_BINDINGS, mixed into the chat screen (only)."""

    async def action_previous_branch(self: ChatScreen) -> None:
        await walk(self, -1)

    async def action_next_branch(self: ChatScreen) -> None:
        await walk(self, +1)

    async def action_fork(self: ChatScreen) -> None:
        await fork(self)


def focused_message(screen: ChatScreen) -> Message | None:
    """The message the user moved the focus to (tab), if any."""
    from qwen_tui.widgets.message_view import MessageView  # loads with the first message

    focused = screen.focused
    return focused.message if isinstance(focused, MessageView) else None


async def walk(screen: ChatScreen, step: int) -> None:
    """Show the sibling `step` places away and the conversation under it."""
    if screen.busy() or not screen.writable():
        return
    chat = screen.chat
    focused = focused_message(screen)
    target = chat.branches.branch_target(focused)
    if target is None:
        keys = screen.app.effective_key("session.regenerate")
        screen.notify(
            f"No other replies or edits here yet: {keys} regenerates the last answer, "
            "and editing a message keeps the old one."
        )
        return
    try:
        switched = chat.branches.switch_sibling(target, step)
    except StoreError as error:
        screen.notify(str(error), title="Could not switch branches", severity="error")
        return
    if switched is None:
        _, count = tree.position(screen.session, target)
        screen.notify(f"{'First' if step < 0 else 'Last'} of the {count} here.")
        return
    if chat.editing is None:
        screen._set_editing(None)  # the edited message left the path (or no edit: a no-op)
    await screen.messages_view.show_session(screen.session)
    view = screen.messages_view.view_for(chat.branches.walked) if chat.branches.walked else None
    if focused is not None and view is not None:
        view.focus()
    screen.app.count_context(screen)
    screen.refresh_sessions()


async def fork(screen: ChatScreen) -> None:
    """Open a new session holding the conversation up to the focused (or last) message."""
    if screen.busy():
        return
    messages = screen.session.messages
    message = focused_message(screen) or (messages[-1] if messages else None)
    if message is None:
        screen.notify("Nothing to fork yet: send a message first.")
        return
    try:
        opened = screen.chat.branches.fork_at(message)
    except StoreError as error:
        screen.notify(str(error), title="Could not fork the session", severity="error")
        return
    await screen.show_session(opened)
    screen.prompt.focus()
    count = len(opened.session.messages)
    screen.notify(
        f"Forked: a new session with the first {count} message{'s' * (count != 1)}; "
        "the original is unchanged in the sidebar.",
        title="Fork",
    )
