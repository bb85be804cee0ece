"""Editing an answer (the old text kept as a branch) and continuing the last one: the chat
screen's side of it.

The rules are the chat state's (`chat.branches.replace_reply`: the old text stays as a
sibling branch; `chat.replies.reply_to_continue`, `continue_reply`); this module asks
with the editor dialog, says why something cannot be done, and redraws.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from functools import partial
from typing import TYPE_CHECKING

from qwen_tui import conversation_tree as tree
from qwen_tui.conversation import Message
from qwen_tui.engine.base import CONTINUE_NEEDS_LOCAL
from qwen_tui.screens.reply_editor import EditedReply, ReplyEditor
from qwen_tui.visible_text import visible_text
from qwen_tui.widgets.message_view import MessageView

if TYPE_CHECKING:
    from qwen_tui.screens.chat_screen import ChatScreen


def reply_to_edit(screen: ChatScreen) -> Message | None:
    """The focused answer, else the last one."""
    focused = screen.focused
    if isinstance(focused, MessageView) and focused.message.role == "assistant":
        return focused.message
    messages = screen.session.messages
    return next((m for m in reversed(messages) if m.role == "assistant"), None)


def edit_reply(screen: ChatScreen, then_continue: Callable[[], Awaitable[None]]) -> None:
    """Open the editor on an answer; save what comes back (and continue, if asked)."""
    if screen.busy() or not screen.writable():
        return
    message = reply_to_edit(screen)
    if message is None:
        screen.notify("No answer to edit yet.")
        return
    later = len(screen.session.messages) - 1 - tree.path_index(screen.session, message)

    async def edited(result: EditedReply | None) -> None:
        screen.prompt.focus()
        if result is None or screen.busy():
            return
        if result.text != visible_text(message.content) and not await _save(
            screen, message, result.text
        ):
            return
        if result.then_continue:
            await then_continue()

    screen.app.push_screen(ReplyEditor(message.content, later_messages=later), edited)


async def _save(screen: ChatScreen, message: Message, text: str) -> bool:
    session = screen.session
    save = partial(screen.chat.branches.replace_reply, message, text)
    if not screen.save_with(session, save, "Could not save the edited answer"):
        return False
    # The old text became a branch (with the turns after it): the path below is redrawn,
    # `‹ 2/2 ›` included, as a branch switch does.
    await screen.messages_view.show_session(screen.session)
    screen.app.count_context(screen)
    screen.refresh_sessions()
    return True


def can_continue(screen: ChatScreen) -> bool:
    """The last answer can be continued now; else say why not."""
    if screen.busy() or not screen.writable():
        return False
    if screen.chat.replies.reply_to_continue() is None:
        screen.notify(
            "Nothing to continue: continue adds to the last answer, and there is none "
            "after the last message."
        )
        return False
    engine = screen.app.engine
    if engine is None:
        keys = screen.app.effective_key("model.switch")
        screen.notify(
            f"Continue needs a model: wait for it to load, or press {keys} to choose one.",
            title="No model",
            severity="warning",
        )
        return False
    if not engine.continues_replies:
        screen.notify(CONTINUE_NEEDS_LOCAL, title="Cannot continue", severity="warning")
        return False
    return True
