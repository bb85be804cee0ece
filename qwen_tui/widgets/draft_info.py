"""The line over the prompt box: what is attached to the draft, and its size in tokens."""

from __future__ import annotations

from dataclasses import dataclass

from rich.text import Text
from textual.widgets import Static


@dataclass(frozen=True)
class DraftCount:
    """What the chat screen counted for the draft."""

    draft_tokens: int
    """The draft with its attachments (and @files), as the model would read it."""
    total_tokens: int
    """The conversation plus the draft."""
    room: int
    """Tokens a prompt may take in this model's window (the reply keeps its share); 0 when
    no model is known."""
    estimated: bool = False
    """No tokenizer yet (the model is loading): characters / 4."""
    notes: tuple[str, ...] = ()
    """Problems with @files in the draft (missing, binary), said before sending."""
    files: tuple[str, ...] = ()
    """The @files of the draft that will be attached."""


class DraftInfo(Static):
    """Hidden while the draft is empty and nothing is attached."""

    DEFAULT_CSS = """
    DraftInfo { height: auto; max-height: 4; padding: 0 1; color: $text-muted; display: none; }
    DraftInfo.-over { color: $text-error; }
    """

    def __init__(self, *, id: str | None = None) -> None:
        super().__init__(id=id, markup=False)
        self.attached: list[str] = []
        self.count: DraftCount | None = None

    def show(self, attached: list[str], count: DraftCount | None, hint: str = "") -> None:
        self.attached, self.count = attached, count
        over = count is not None and 0 < count.room < count.draft_tokens
        self.set_class(over, "-over")
        text = Text()
        for title in [*attached, *(count.files if count else ())]:
            text.append(f"📎 {title}\n")
        if hint:
            text.append(hint + "\n")
        if count is not None:
            about = "~" if count.estimated else ""
            text.append(f"draft {about}{count.draft_tokens:,} tokens")
            room = f"/{count.room:,}" if count.room else ""
            text.append(f" · with the conversation {about}{count.total_tokens:,}{room}")
            if over:
                text.append(" · too big: sending offers to cut the attachments")
            for note in count.notes:
                text.append(f"\n⚠ {note}")
        if attached:
            text.append("\n(backspace in an empty prompt drops the last 📎)")
        text.rstrip()
        self.update(text)
        self.display = bool(attached or hint or (count and count.draft_tokens))
