"""The questions asked before a session changes from the sidebar or the palette: rename,
delete, its system prompt and settings. Each answer goes through the chat's rules
(`ChatState`), which undo a change that could not be saved."""

from __future__ import annotations

from functools import partial
from typing import TYPE_CHECKING

from qwen_tui.conversation import Session
from qwen_tui.screens.confirm_dialog import ConfirmDialog
from qwen_tui.screens.settings_dialog import SessionSettings, SettingsDialog
from qwen_tui.screens.text_input_dialog import TextInputDialog
from qwen_tui.store import SessionSummary, StoreError
from qwen_tui.visible_text import one_line

if TYPE_CHECKING:
    from qwen_tui.screens.chat_screen import ChatScreen


def ask_rename(screen: ChatScreen, summary: SessionSummary) -> None:
    def rename(title: str | None) -> None:
        screen.prompt.focus()
        if title is None:
            return
        is_current = summary.id == screen.session.id
        session = screen.session if is_current else _load(screen, summary.id)
        if session is None:
            return
        renamed = partial(screen.chat.rename, session, title)
        if screen.save_with(session, renamed, "Could not rename the session"):
            screen.refresh_sessions()

    screen.app.push_screen(TextInputDialog("Rename session", summary.title), rename)


def _load(screen: ChatScreen, session_id: str) -> Session | None:
    try:
        return screen.app.store.load(session_id)
    except StoreError as error:
        screen.notify(str(error), title="Could not open the session", severity="error")
        return None


def ask_delete(screen: ChatScreen, summary: SessionSummary) -> None:
    """The session shown cannot be deleted while a reply streams or another qwen-tui has it."""
    if summary.id == screen.session.id and (screen.busy() or not screen.writable()):
        return
    title = one_line(summary.title) or "(untitled)"
    question = f"Delete “{title}” ({summary.message_count} messages)? This removes its file."

    async def delete(confirmed: bool | None) -> None:
        screen.prompt.focus()
        if confirmed:
            await _delete(screen, summary.id, title)

    screen.app.push_screen(ConfirmDialog("Delete session", question, "Delete"), delete)


async def _delete(screen: ChatScreen, session_id: str, title: str) -> None:
    try:
        was_shown = screen.chat.delete(session_id)
    except StoreError as error:
        screen.notify(str(error), title="Could not delete the session", severity="error")
        return
    screen.notify(f"Deleted “{title}”.")
    if was_shown:
        await screen.show_session(screen.app.open_new_session())
    else:
        screen.refresh_sessions()


def ask_settings(screen: ChatScreen, session: Session) -> None:
    dialog = SettingsDialog(session.system_prompt, session.settings)
    screen.app.push_screen(dialog, lambda result: apply_settings(screen, session, result))


def apply_settings(
    screen: ChatScreen, session: Session, result: SessionSettings | None, notice: str = ""
) -> None:
    """The dialog's (or a preset's) system prompt and sampling become `session`'s; the
    dialog may also have asked to keep them as the defaults or as a preset."""
    screen.prompt.focus()
    if result is None:
        return
    change = partial(screen.chat.change_settings, session, result.system_prompt, result.generation)
    if not screen.save_with(session, change, "Could not save the settings"):
        return
    if session is screen.session:
        screen.messages_view.refresh_system_line()
        screen.app.count_context(screen)
    kept = screen.app.keep_settings(result)
    screen.notify(notice or kept or "Settings saved with this session.")
