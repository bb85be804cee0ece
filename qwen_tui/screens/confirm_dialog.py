"""A yes/no question; dismisses with True only on an explicit yes."""

from __future__ import annotations

import time

from textual import events, on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.screen import ModalScreen
from textual.widgets import Button, Static

from qwen_tui.visible_text import visible_text


class ConfirmDialog(ModalScreen[bool]):
    """The default (enter, escape, focus) is "no", and keys typed before the question was
    on screen are dropped: a burst of typing that opened it must not also answer it."""

    BINDINGS = [  # noqa: RUF012
        Binding("y", "answer(True)", "Yes", show=False),
        Binding("n,escape", "answer(False)", "No", show=False),
    ]

    def __init__(self, title: str, question: str, confirm_label: str = "Yes") -> None:
        super().__init__(classes="dialog")
        self._title = title
        self._question = question
        self._confirm_label = confirm_label
        self._shown_at: float | None = None
        """When the question was first drawn (monotonic, as Key.time); None before."""

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
        self.call_after_refresh(self._drawn)

    def _drawn(self) -> None:
        self._shown_at = time.monotonic()

    async def _on_key(self, event: events.Key) -> None:
        # Runs as the key bubbles up from the focused button, before any binding (the
        # dialog's y/n and the button's enter are checked once it reaches the app).
        if self._shown_at is None or event.time < self._shown_at:
            event.stop()
            event.prevent_default()
            return
        await super()._on_key(event)

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.action_answer(event.button.id == "confirm")

    def action_answer(self, answer: bool) -> None:
        # A key that reached the app before this dialog existed can still run its binding
        # here (bindings follow the focus of the screen on top): not an answer either.
        if self._shown_at is not None:
            self.dismiss(answer)
