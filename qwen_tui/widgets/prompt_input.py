"""The multi-line prompt box: enter sends, ctrl+j (or shift+enter) starts a new line."""

from __future__ import annotations

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from qwen_tui.visible_text import visible_text
from qwen_tui.widgets.keys_in_order import KeysInOrder

NEWLINE_KEYS = ("ctrl+j", "shift+enter")
HINTS = (
    "Message (enter sends, ctrl+j new line, ctrl+p commands, f1 help)",
    "Message (enter sends, ctrl+j new line, f1 help)",
    "Message (enter sends, f1 help)",
    "Message (f1 help)",
)
"""The placeholder, longest first: the widest that fits is shown, so "f1 help" (where every
other key is listed) is never the part cut off on a narrow terminal."""


class PromptInput(KeysInOrder, TextArea):
    """A TextArea whose enter key submits instead of breaking the line; editing keys typed
    in one burst apply in the order they were typed (KeysInOrder)."""

    class Submitted(Message):
        """The user pressed enter on a non-blank prompt."""

        def __init__(self, prompt_input: PromptInput, text: str) -> None:
            super().__init__()
            self.prompt_input = prompt_input
            self.text = text

    class EditLastRequested(Message):
        """`up` in an empty prompt: bring back the last user message to edit and resend."""

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(
            id=id,
            soft_wrap=True,
            show_line_numbers=False,
            tab_behavior="focus",
            compact=True,
            placeholder=HINTS[0],
        )

    def on_resize(self, _event: events.Resize) -> None:
        # The text's width, less the cursor's cell at the end of a line.
        width = self.scrollable_content_region.width - 1
        self.placeholder = next((hint for hint in HINTS if len(hint) <= width), HINTS[-1])

    async def _on_key(self, event: events.Key) -> None:
        if event.key == "enter":
            self._stop(event)
            if self.text.strip():
                self.post_message(self.Submitted(self, self.text))
        elif event.key in NEWLINE_KEYS:
            self._stop(event)
            self.replace("\n", *self.selection)
        elif event.key == "up" and not self.text:
            self._stop(event)
            self.post_message(self.EditLastRequested())

    async def _on_paste(self, event: events.Paste) -> None:
        # Pasted text keeps its line breaks but never raw control characters.
        self._stop(event)
        if self.read_only:
            return
        result = self.replace(visible_text(event.text), *self.selection)
        self.move_cursor(result.end_location)

    def set_prompt(self, text: str) -> None:
        """Replace the contents and put the cursor at the end."""
        self.load_text(text)
        self.move_cursor(self.document.end)

    @staticmethod
    def _stop(event: events.Event) -> None:
        event.stop()
        event.prevent_default()
