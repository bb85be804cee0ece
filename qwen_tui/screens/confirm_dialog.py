"""A yes/no question; dismisses with True only on an explicit yes."""

from __future__ import annotations

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from qwen_tui.screens.key_safe_modal import KeySafeModal
from qwen_tui.visible_text import visible_text


class ConfirmDialog(KeySafeModal[bool]):
    """The default (enter, escape, focus) is "no"; keys typed before the question was on
    screen answer nothing (see KeySafeModal)."""

    BINDINGS = [  # noqa: RUF012
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n,escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, title: str, question: str, confirm_label: str = "Yes") -> None:
        super().__init__()
        self._title = title
        self._question = question
        self._confirm_label = confirm_label

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static(visible_text(self._title), classes="dialog-title", markup=False)
            yield Static(visible_text(self._question), markup=False)
            yield Static("y confirms, n or escape cancels", classes="dialog-hint")
            with Horizontal(classes="dialog-buttons"):
                yield Button(self._confirm_label, variant="error", id="confirm", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        self.query_one("#cancel", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.answer(event.button.id == "confirm")

    def action_answer(self, answer: bool) -> None:
        self.answer(answer)
