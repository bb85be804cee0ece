"""Asks for one line of text (a new title, a file path); None when cancelled."""

from __future__ import annotations

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import Input, Static

from qwen_tui.visible_text import one_line, visible_text
from qwen_tui.widgets.keys_in_order import KeysInOrder


class DialogInput(KeysInOrder, Input):
    """The dialog's line: backspaces typed in a burst apply where they were typed, and a
    paste is taken whole, on one line (Textual's Input keeps only the first line of a
    CR-separated paste from a terminal, and inserts control characters raw)."""

    def _on_paste(self, event: events.Paste) -> None:
        event.stop()
        event.prevent_default()
        text = one_line(event.text)
        if text:
            self.replace(text, *self.selection)


class TextInputDialog(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]  # noqa: RUF012

    def __init__(self, title: str, value: str = "", hint: str = "") -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._value = value
        self._hint = hint

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(visible_text(self._title), classes="dialog-title", markup=False)
            yield DialogInput(one_line(self._value), id="dialog-input", compact=True)
            hint = self._hint or "enter to confirm, escape to cancel"
            yield Static(visible_text(hint), classes="dialog-hint", markup=False)

    @on(Input.Submitted, "#dialog-input")
    def _submitted(self, event: Input.Submitted) -> None:
        value = event.value.strip()
        self.dismiss(value or None)

    def action_cancel(self) -> None:
        self.dismiss(None)
