"""The multi-line prompt box: enter sends, ctrl+j (or shift+enter) starts a new line."""

from __future__ import annotations

from pathlib import Path

from textual import events
from textual.message import Message
from textual.widgets import TextArea

from qwen_tui.context_sources import common_prefix, complete_path
from qwen_tui.visible_text import one_line, visible_text
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

    class RemoveAttachmentRequested(Message):
        """`backspace` in an empty prompt: drop the draft's last attachment."""

    allow_empty = False
    """Enter sends an empty prompt too (it has attachments)."""

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
            if self.text.strip() or self.allow_empty:
                self.post_message(self.Submitted(self, self.text))
        elif event.key in NEWLINE_KEYS:
            self._stop(event)
            self.replace("\n", *self.selection)
        elif event.key == "up" and not self.text:
            self._stop(event)
            self.post_message(self.EditLastRequested())
        elif event.key == "backspace" and not self.text and self.allow_empty:
            self._stop(event)
            self.post_message(self.RemoveAttachmentRequested())
        elif event.key == "tab" and self._complete_path():
            self._stop(event)

    async def _on_paste(self, event: events.Paste) -> None:
        # Pasted text keeps its line breaks but never raw control characters.
        self._stop(event)
        if self.read_only:
            return
        result = self.replace(visible_text(event.text), *self.selection)
        self.move_cursor(result.end_location)

    def _complete_path(self) -> bool:
        """Tab after `@fragment`: complete it to the longest name it can be (and list the
        choices when there are several). False when the cursor is not after an `@path`."""
        row, column = self.cursor_location
        before = self.document.get_line(row)[:column]
        word = before.rsplit(maxsplit=1)[-1] if before.strip() else ""
        if not word.startswith("@") or before.endswith((" ", "\t")):
            return False
        fragment = word[1:]
        names = complete_path(fragment, Path.cwd())
        if not names:
            self.notify(f"No file starts with {one_line(fragment)!r} here.", timeout=3)
            return True
        prefix = common_prefix(names)
        if len(prefix) > len(fragment):
            self.insert(prefix[len(fragment) :])
        if len(names) > 1:
            shown = "  ".join(one_line(name) for name in names[:20])
            more = f"  (+{len(names) - 20})" if len(names) > 20 else ""
            self.notify(shown + more, title="Files", timeout=5)
        return True

    def set_prompt(self, text: str) -> None:
        """Replace the contents and put the cursor at the end."""
        self.load_text(text)
        self.move_cursor(self.document.end)

    @staticmethod
    def _stop(event: events.Event) -> None:
        event.stop()
        event.prevent_default()
