"""Asked on quit while a session could not be saved: what to do with it."""

from __future__ import annotations

from typing import Literal

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.widgets import Button, Static

from qwen_tui.screens.key_safe_modal import KeySafeModal
from qwen_tui.visible_text import visible_text

UnsavedChoice = Literal["retry", "save-as", "export", "quit"]


class UnsavedDialog(KeySafeModal[UnsavedChoice | None]):
    """Try again / save elsewhere / export / quit anyway; escape (None) stays in the app."""

    BINDINGS = [  # noqa: RUF012
        Binding("r", "answer('retry')", "Try again", show=False),
        Binding("s", "answer('save-as')", "Save elsewhere", show=False),
        Binding("e", "answer('export')", "Export", show=False),
        Binding("q", "answer('quit')", "Quit anyway", show=False),
        Binding("escape", "answer(None)", "Back", show=False),
    ]

    def __init__(self, title: str, error: str) -> None:
        super().__init__()
        self._title = title
        self._error = error

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static("Not saved", classes="dialog-title")
            yield Static(
                visible_text(
                    f"“{self._title}” could not be saved: {self._error}\n"
                    "Quitting now loses what is not on disk."
                ),
                markup=False,
            )
            yield Static(
                "r try again · s save elsewhere · e export Markdown · q quit anyway · escape back",
                classes="dialog-hint",
            )
            with Horizontal(classes="dialog-buttons"):
                yield Button("Try again", id="retry", compact=True)
                yield Button("Save elsewhere…", id="save-as", compact=True)
                yield Button("Export…", id="export", compact=True)
                yield Button("Quit anyway", variant="error", id="quit", compact=True)

    def on_mount(self) -> None:
        self.query_one("#retry", Button).focus()

    @on(Button.Pressed)
    def _pressed(self, event: Button.Pressed) -> None:
        self.answer(event.button.id)  # type: ignore[arg-type]  (the ids are the choices)

    def action_answer(self, choice: UnsavedChoice | None) -> None:
        self.answer(choice)
