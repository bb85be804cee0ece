"""The conversation: the system prompt line, then the messages, newest at the bottom.

Long sessions are rendered lazily: only the last `PAGE` messages are mounted when a session
opens; older ones are mounted a page at a time when the user reaches the top. The list is
anchored to the bottom while a reply streams in, and Textual releases the anchor as soon as the
user scrolls up, so reading older text is never interrupted.
"""

from __future__ import annotations

from rich.text import Text
from textual.containers import VerticalScroll
from textual.widgets import Static

from qwen_tui import conversation_tree as tree
from qwen_tui.conversation import Message, Session
from qwen_tui.visible_text import one_line
from qwen_tui.widgets.message_view import MessageView


class MessageList(VerticalScroll):
    """Scrollable list of `MessageView`s for one session."""

    PAGE = 6
    """Messages mounted at a time. Each costs ~20-60 ms (Markdown widgets and their styles),
    so a session opens with one page, plus more only while they do not fill the screen."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self._session: Session | None = None
        self._first_shown = 0
        """Index in session.messages of the oldest mounted message."""
        self._loading_older = False
        self.show_stats = True
        """Show tokens, TTFT and tok/s under replies (config [ui].show_stats)."""

    def compose(self):
        # Messages go between #older-messages and #notice, in the session's order.
        yield Static(id="system-line", markup=False)
        yield Static(id="older-messages", markup=False)
        yield Static(id="notice", markup=False)

    @property
    def views(self) -> list[MessageView]:
        return list(self.query_children(MessageView))

    def view_for(self, message: Message) -> MessageView | None:
        for view in self.query_children(MessageView):
            if view.message is message:
                return view
        return None

    async def show_session(self, session: Session) -> None:
        """Replace the list with `session`'s last messages and follow the bottom."""
        self._session = session
        self._first_shown = max(0, len(session.messages) - self.PAGE)
        with self.app.batch_update():
            await self.query_children(MessageView).remove()
            self.refresh_system_line()
            self._refresh_older_line()
            views = [self._view(m) for m in session.messages[self._first_shown :]]
            await self.mount_all(views, before="#notice")  # where add() puts new ones
        self.anchor()
        self.call_after_refresh(self._fill_screen)

    async def _fill_screen(self) -> None:
        """Mount older pages while the messages do not fill the screen (short messages);
        one page per refresh, so each check sees the layout of the page before."""
        if self._first_shown > 0 and self.virtual_size.height < self.size.height * 1.5:
            await self.load_older(keep_position=False)
            self.call_after_refresh(self._fill_screen)

    def refresh_system_line(self) -> None:
        prompt = self._session.system_prompt if self._session else ""
        line = Text("System: ", style="bold")
        line.append(one_line(prompt) or "(none)", style="italic")
        self.query_one("#system-line", Static).update(line)

    def show_notice(self, text: str) -> None:
        """A note under the conversation (e.g. no model installed); empty hides it."""
        notice = self.query_one("#notice", Static)
        notice.update(text)
        notice.display = bool(text)

    async def add(self, message: Message) -> MessageView:
        """Mount a new message at the bottom; the list follows unless the user scrolled up."""
        view = self._view(message)
        await self.mount(view, before="#notice")
        return view

    def _view(self, message: Message) -> MessageView:
        branch = tree.position(self._session, message) if self._session else (1, 1)
        return MessageView(message, show_stats=self.show_stats, branch=branch)

    async def remove_message(self, message: Message) -> None:
        view = self.view_for(message)
        if view is not None:
            await view.remove()

    def follow(self) -> None:
        """Jump to the bottom and keep following (after the user sends a prompt)."""
        self.anchor()

    def on_mount(self) -> None:
        self.query_one("#notice", Static).display = False
        self.query_one("#older-messages", Static).display = False

    def watch_scroll_y(self, old_value: float, new_value: float) -> None:
        super().watch_scroll_y(old_value, new_value)
        if new_value <= 0 and self._first_shown > 0 and not self._loading_older:
            self._loading_older = True
            self.call_later(self.load_older)

    async def load_older(self, keep_position: bool = True) -> None:
        """Mount the page of messages before the oldest shown (the user reached the top);
        `keep_position` keeps the message that was at the top where it was."""
        try:
            if self._session is None or self._first_shown == 0:
                return
            start = max(0, self._first_shown - self.PAGE)
            older = [self._view(m) for m in self._session.messages[start : self._first_shown]]
            first_view = self.views[0] if self.views else None
            self._first_shown = start
            self._refresh_older_line()
            await self.mount_all(older, after="#older-messages")
            if keep_position and first_view is not None:
                self.call_after_refresh(
                    self.scroll_to_widget, first_view, top=True, animate=False, immediate=True
                )
        finally:
            self._loading_older = False

    def _refresh_older_line(self) -> None:
        line = self.query_one("#older-messages", Static)
        line.update(f"▲ {self._first_shown} earlier messages: scroll up to show them")
        line.display = self._first_shown > 0
