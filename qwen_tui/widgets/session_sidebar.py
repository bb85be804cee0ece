"""The sessions sidebar: a search box over a list of sessions, newest first."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TYPE_CHECKING

from rich.text import Text
from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.message import Message
from textual.timer import Timer
from textual.widgets import Input, ListItem, ListView, Static

from qwen_tui.actions import default_key
from qwen_tui.visible_text import one_line
from qwen_tui.widgets.keys_in_order import KeysInOrder

if TYPE_CHECKING:
    from qwen_tui.store import SessionSummary

SEARCH_DELAY_S = 0.25
"""Wait this long after the last keystroke before searching (search reads session files)."""


def relative_time(timestamp: float, now: float) -> str:
    """`just now`, `5 min ago`, `3 h ago`, `2 d ago`, then the date."""
    seconds = max(0.0, now - timestamp)
    if seconds < 60:
        return "just now"
    if seconds < 3600:
        return f"{int(seconds // 60)} min ago"
    if seconds < 86400:
        return f"{int(seconds // 3600)} h ago"
    if seconds < 7 * 86400:
        return f"{int(seconds // 86400)} d ago"
    return time.strftime("%Y-%m-%d", time.localtime(timestamp))


class SessionItem(ListItem):
    """One row: the title (never parsed as markup) and when it was last used."""

    def __init__(self, summary: SessionSummary, now: float, current: bool) -> None:
        super().__init__(classes="-current" if current else "")
        self.summary = summary
        self._now = now

    def compose(self) -> ComposeResult:
        yield Static(self._title(), classes="title")
        yield Static(self._when(self._now), classes="when", markup=False)

    def _title(self) -> Text:
        return Text(one_line(self.summary.title) or "(untitled)")

    def _when(self, now: float) -> str:
        count = self.summary.message_count
        # A fork keeps its parent's title: the mark tells the two apart.
        fork = "⑂ fork · " if self.summary.forked_from else ""
        return (
            f"{fork}{relative_time(self.summary.updated, now)} · "
            f"{count} msg{'' if count == 1 else 's'}"
        )

    def update(self, summary: SessionSummary, now: float) -> None:
        old, self.summary = self.summary, summary
        if summary.title != old.title:
            for title in self.query(".title").results(Static):
                title.update(self._title())
        self.refresh_time(now)

    def refresh_time(self, now: float) -> None:
        # The row may be mid-removal (the list was rebuilt) when the minute timer fires.
        for when in self.query(".when").results(Static):
            when.update(self._when(now))


class SessionList(ListView):
    """The list part; its keys act on the highlighted session.

    No printable key is a command here: a user who thinks the prompt has focus types a
    sentence, and "today" once meant delete + yes. Printable keys go on to the prompt
    (`text_target`) instead; the commands are keys nobody types by accident.
    """

    BINDINGS = [  # noqa: RUF012 (Textual reads class-level BINDINGS)
        Binding(default_key("sidebar.rename"), "rename", "Rename", id="sidebar.rename"),
        Binding(default_key("sidebar.delete"), "delete", "Delete", id="sidebar.delete"),
        Binding(default_key("sidebar.new"), "new", "New", id="sidebar.new"),
        Binding(default_key("sidebar.search"), "search", "Search", id="sidebar.search"),
        Binding("escape", "leave", "Back to the prompt", show=False),
    ]

    def __init__(self, text_target: str, *, id: str | None = None) -> None:
        super().__init__(id=id)
        self.text_target = text_target
        """Selector of the widget printable keys go to (the prompt)."""

    def _on_key(self, event: events.Key) -> None:
        if event.is_printable:
            # Our bindings run after this handler (they bubble to the app): stopping the
            # key here means no printable key can ever reach a list command.
            event.stop()
            event.prevent_default()
            target = self.screen.query_one(self.text_target)
            self.screen.set_focus(target)
            target.post_message(events.Key(event.key, event.character))

    def action_leave(self) -> None:
        self.screen.set_focus(self.screen.query_one(self.text_target))

    @property
    def highlighted_summary(self) -> SessionSummary | None:
        item = self.highlighted_child
        return item.summary if isinstance(item, SessionItem) else None

    def action_rename(self) -> None:
        if (summary := self.highlighted_summary) is not None:
            self.post_message(SessionSidebar.RenameRequested(summary))

    def action_delete(self) -> None:
        if (summary := self.highlighted_summary) is not None:
            self.post_message(SessionSidebar.DeleteRequested(summary))

    def action_new(self) -> None:
        self.post_message(SessionSidebar.NewRequested())

    def action_search(self) -> None:
        self.screen.query_one("#session-search").focus()


class SearchBox(KeysInOrder, Input):
    """The search box; escape clears the search and goes back to the prompt."""

    BINDINGS = [Binding("escape", "leave", "Back to the prompt", show=False)]  # noqa: RUF012

    def action_leave(self) -> None:
        self.value = ""
        sidebar = self.query_ancestor(SessionSidebar)
        self.screen.set_focus(self.screen.query_one(sidebar.text_target))


class SessionSidebar(Vertical):
    """Search box and session list; asks its screen to open, rename, delete or create."""

    class OpenRequested(Message):
        def __init__(self, summary: SessionSummary) -> None:
            super().__init__()
            self.summary = summary

    class RenameRequested(OpenRequested):
        pass

    class DeleteRequested(OpenRequested):
        pass

    class NewRequested(Message):
        pass

    class SearchChanged(Message):
        def __init__(self, query: str) -> None:
            super().__init__()
            self.query = query

    def __init__(
        self, clock: Callable[[], float], *, text_target: str, id: str | None = None
    ) -> None:
        """`text_target`: selector of the widget that gets what is typed in the list, and
        focus back when the search box or the list is left with escape."""
        super().__init__(id=id)
        self._clock = clock
        self.text_target = text_target
        self._search_timer: Timer | None = None
        self.current_id: str | None = None

    def compose(self) -> ComposeResult:
        yield SearchBox(placeholder="ctrl+f search sessions", id="session-search", compact=True)
        yield SessionList(self.text_target, id="session-list")

    def on_mount(self) -> None:
        self.set_interval(60, self._refresh_times)  # relative times age; once a minute is enough

    @property
    def query_text(self) -> str:
        return self.query_one("#session-search", Input).value.strip()

    @property
    def session_list(self) -> SessionList:
        return self.query_one(SessionList)

    async def show(self, summaries: list[SessionSummary]) -> None:
        """Show `summaries`, keeping the highlight on the current session.

        Rows are rebuilt only when the sessions or their order changed; otherwise (the
        common case: the current session got a message) the rows are updated in place.
        """
        session_list = self.session_list
        now = self._clock()
        items = list(session_list.query_children(SessionItem))
        if [item.summary.id for item in items] == [s.id for s in summaries]:
            for item, summary in zip(items, summaries, strict=True):
                item.update(summary, now)
            return
        await session_list.clear()
        await session_list.extend(SessionItem(s, now, s.id == self.current_id) for s in summaries)
        ids = [s.id for s in summaries]
        if self.current_id in ids:
            session_list.index = ids.index(self.current_id)

    def mark_current(self, session_id: str) -> None:
        self.current_id = session_id
        for index, item in enumerate(self.session_list.query_children(SessionItem)):
            current = item.summary.id == session_id
            item.set_class(current, "-current")
            if current:
                self.session_list.index = index

    def _refresh_times(self) -> None:
        now = self._clock()
        for item in self.session_list.query_children(SessionItem):
            item.refresh_time(now)

    @on(Input.Changed, "#session-search")
    def _search_changed(self) -> None:
        if self._search_timer is not None:
            self._search_timer.stop()
        self._search_timer = self.set_timer(SEARCH_DELAY_S, self._post_search)

    @on(Input.Submitted, "#session-search")
    def _search_submitted(self) -> None:
        self.session_list.focus()

    def _post_search(self) -> None:
        self.post_message(self.SearchChanged(self.query_text))

    @on(ListView.Selected, "#session-list")
    def _selected(self, event: ListView.Selected) -> None:
        event.stop()
        if isinstance(event.item, SessionItem):
            self.post_message(self.OpenRequested(event.item.summary))
