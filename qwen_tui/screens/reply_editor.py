"""Edits an answer's Markdown text; the old text stays as a branch, and the model can go on
from the end of the new one."""

from __future__ import annotations

from dataclasses import dataclass

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static, TextArea

from qwen_tui.screens.key_safe_modal import KeySafeModal
from qwen_tui.visible_text import visible_text
from qwen_tui.widgets.keys_in_order import KeysInOrder


@dataclass(frozen=True)
class EditedReply:
    """What the editor returns."""

    text: str
    then_continue: bool = False
    """Also generate more of it, from the end of the text."""


class ReplyText(KeysInOrder, TextArea):
    """The answer's text: keys in the order typed, pastes without raw control characters."""

    async def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()
        result = self.replace(visible_text(event.text), *self.selection)
        self.move_cursor(result.end_location)


class ReplyEditor(KeySafeModal[EditedReply | None]):
    """The answer's text in a text area; ctrl+s saves, escape cancels. Keys typed before it
    was drawn save nothing (KeySafeModal)."""

    BINDINGS = [  # noqa: RUF012
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("ctrl+s", "save", "Save", show=False, priority=True),
    ]

    def __init__(self, text: str, *, later_messages: int = 0) -> None:
        """`later_messages`: how many messages follow this answer (they go with its old
        text into a branch when it is saved)."""
        super().__init__()
        # Model output may hold escape sequences: shown (and saved, if edited) as pictures.
        self._text = visible_text(text)
        self._later = later_messages

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box", id="reply-editor-box"):
            yield Static("Edit the answer", classes="dialog-title")
            yield ReplyText(self._text, id="reply-text", soft_wrap=True, compact=True)
            hint = "ctrl+s saves (the old text stays as a branch), escape cancels"
            if self._later:
                hint += (
                    f". The {self._later} message{'s' * (self._later != 1)} after this "
                    "answer go with its old text: this one becomes the last"
                )
            yield Static(hint, classes="dialog-hint", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="save", compact=True)
                yield Button("Save and continue", id="save-continue", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        text = self.query_one(ReplyText)
        text.focus()
        text.move_cursor(text.document.end)  # where continuing goes on

    @property
    def text(self) -> str:
        return self.query_one(ReplyText).text

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        self.answer(EditedReply(self.text))

    @on(Button.Pressed, "#save-continue")
    def _save_and_continue(self) -> None:
        self.answer(EditedReply(self.text, then_continue=True))

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.answer(None)
