"""The chat screen's sidebar: shown or hidden, its list kept current, its requests carried out."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwen_tui.messages import SessionsListed
from qwen_tui.store import StoreError
from qwen_tui.widgets.session_sidebar import SessionSidebar

if TYPE_CHECKING:
    from qwen_tui.screens.chat_screen import ChatScreen

SIDEBAR_MIN_WIDTH = 60
"""Below this terminal width the sidebar hides itself (ctrl+b still shows it)."""


class ChatSidebar:
    """Mixed into ChatScreen (only): the sidebar's size rules, ctrl+b, and open, new,
    rename and delete from the list."""

    def _place_sidebar(self: ChatScreen) -> None:
        shown = self._sidebar_wanted and self.size.width >= SIDEBAR_MIN_WIDTH
        if shown != self.sidebar.display:
            self.sidebar.display = shown

    def action_toggle_sidebar(self: ChatScreen) -> None:
        self._sidebar_wanted = not self.sidebar.display
        self.sidebar.display = self._sidebar_wanted
        if self._sidebar_wanted:
            self.sidebar.session_list.focus()
        elif self.sidebar.has_focus_within or self.focused is None:
            self.prompt.focus()

    def _watch_sessions_folder(self: ChatScreen) -> None:
        """Sessions written by another process appear in the list."""
        if self.chat.sessions_changed():
            self.refresh_sessions()

    def refresh_sessions(self: ChatScreen) -> None:
        """Re-read the sidebar's list (in a worker: it reads the session files)."""
        self.app.list_sessions(self.sidebar.query_text, self)

    async def on_sessions_listed(self: ChatScreen, message: SessionsListed) -> None:
        if self.app.return_code is not None:
            return  # quitting: the sidebar may be unmounted already
        for problem in message.problems:
            self.notify(problem, title="Damaged session file", severity="warning", timeout=15)
        if message.query != self.sidebar.query_text:
            return  # an older search; a newer one is on its way
        summaries = message.summaries
        if not message.query and all(s.id != self.session.id for s in summaries):
            summaries = [self.chat.unsaved_summary(), *summaries]
        await self.sidebar.show(summaries)

    def on_session_sidebar_search_changed(
        self: ChatScreen, message: SessionSidebar.SearchChanged
    ) -> None:
        self.refresh_sessions()

    async def on_session_sidebar_open_requested(
        self, message: SessionSidebar.OpenRequested
    ) -> None:
        is_current = message.summary.id == self.session.id
        if is_current and not self.opened.read_only:
            self.prompt.focus()
            return
        if self.busy():
            return
        if is_current:
            self.opened.close()  # to take over a read-only session, let go of it first
        try:
            opened = self.app.store.open(message.summary.id)
        except StoreError as error:
            self.notify(str(error), title="Could not open the session", severity="error")
            self.refresh_sessions()
            return
        await self.show_session(opened)
        self.prompt.focus()

    async def action_new_session(self: ChatScreen) -> None:
        """Show a new empty session; it is saved with its first message."""
        if self.busy():
            return
        if self.session.messages or self.opened.read_only:  # else it already is a new one
            await self.show_session(self.app.open_new_session())
        self.prompt.focus()

    async def on_session_sidebar_new_requested(self: ChatScreen) -> None:
        await self.action_new_session()

    def on_session_sidebar_rename_requested(
        self: ChatScreen, message: SessionSidebar.RenameRequested
    ) -> None:
        from qwen_tui.screens.session_questions import ask_rename

        ask_rename(self, message.summary)

    def on_session_sidebar_delete_requested(
        self: ChatScreen, message: SessionSidebar.DeleteRequested
    ) -> None:
        from qwen_tui.screens.session_questions import ask_delete

        ask_delete(self, message.summary)
