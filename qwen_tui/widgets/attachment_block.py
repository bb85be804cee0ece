"""One attachment under a user message: a single line until the user opens it."""

from __future__ import annotations

from rich.text import Text
from textual import events
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.widgets import Static

from qwen_tui.attachment import Attachment

SHOWN_CHARS = 20_000
"""Open, at most this much of the text is drawn (a Static of megabytes takes seconds)."""


class AttachmentBlock(Vertical, can_focus=True):
    """`▶ file notes.txt · 12 lines`; enter or a click shows the text (plain, never markup)."""

    DEFAULT_CSS = """
    AttachmentBlock { height: auto; }
    AttachmentBlock > .attachment-title { height: 1; color: $text-muted; }
    AttachmentBlock:focus > .attachment-title { text-style: reverse; }
    AttachmentBlock > .attachment-text {
        height: auto; max-height: 20; overflow-y: auto; padding: 0 0 0 2; display: none;
    }
    AttachmentBlock.-open > .attachment-text { display: block; }
    """

    BINDINGS = [  # noqa: RUF012
        Binding("enter,space", "toggle", "Open/close attachment", show=False),
    ]

    def __init__(self, attachment: Attachment) -> None:
        super().__init__()
        self.attachment = attachment

    def compose(self) -> ComposeResult:
        yield Static(self._title(), classes="attachment-title", markup=False)
        text = self.attachment.text
        if len(text) > SHOWN_CHARS:
            text = text[:SHOWN_CHARS] + f"\n[… {len(text) - SHOWN_CHARS:,} more characters]"
        # A Text, not a str: nothing in a file or a command's output is read as markup.
        yield Static(Text(text), classes="attachment-text")

    @property
    def is_open(self) -> bool:
        return self.has_class("-open")

    def _title(self) -> Text:
        arrow = "▼" if self.is_open else "▶"
        return Text(f"{arrow} 📎 {self.attachment.title()}")

    def action_toggle(self) -> None:
        self.toggle_class("-open")
        self.query_one(".attachment-title", Static).update(self._title())

    def on_click(self, event: events.Click) -> None:
        event.stop()  # the message under it would take the click as its own
        self.action_toggle()
