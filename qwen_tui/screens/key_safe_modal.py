"""A modal screen that takes no answer from keys typed before it was drawn."""

from __future__ import annotations

import time
from typing import TypeVar

from textual import events
from textual.screen import ModalScreen

Result = TypeVar("Result")


class KeySafeModal(ModalScreen[Result]):
    """A burst of typing that opened a question must not also answer it: keys created
    before the first frame of the dialog are dropped, and `answer()` ignores bindings that
    run before it (a key can reach the app while the screen below still had focus)."""

    def __init__(self, classes: str = "dialog") -> None:
        super().__init__(classes=classes)
        self._shown_at: float | None = None
        """When the dialog was first drawn (monotonic, as Key.time); None before."""

    def on_mount(self) -> None:  # Textual calls the subclasses' on_mount too
        self.call_after_refresh(self._drawn)

    def _drawn(self) -> None:
        self._shown_at = time.monotonic()

    @property
    def drawn(self) -> bool:
        return self._shown_at is not None

    def _on_key(self, event: events.Key) -> None:
        # Runs as the key bubbles up from the focused widget, before any binding (bindings
        # are checked once the key reaches the app). Textual calls the base classes' key
        # handlers after this one unless the default is prevented.
        if self._shown_at is None or event.time < self._shown_at:
            event.stop()
            event.prevent_default()

    def answer(self, result: Result) -> None:
        if self.drawn:
            self.dismiss(result)
