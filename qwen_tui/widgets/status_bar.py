"""One line at the bottom: model, state, speed of the current reply, context and memory use."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from qwen_tui.visible_text import one_line

STATE_STYLES = {
    "none": "bold",
    "loading": "italic",
    "ready": "",
    "generating": "bold",
    "error": "bold reverse",
}


def format_bytes(count: int) -> str:
    if count >= 1 << 30:
        return f"{count / (1 << 30):.1f} GB"
    return f"{count / (1 << 20):.0f} MB"


class StatusBar(Widget):
    """Reads nothing itself: the chat screen sets these fields."""

    model_name: reactive[str] = reactive("")
    low_bit: reactive[str] = reactive("")
    state: reactive[str] = reactive("none")
    """none / loading / ready / generating / error."""
    tok_s: reactive[float | None] = reactive(None)
    ttft_s: reactive[float | None] = reactive(None)
    context_used: reactive[int | None] = reactive(None)
    context_size: reactive[int] = reactive(0)
    rss_bytes: reactive[int] = reactive(0)
    unsaved: reactive[bool] = reactive(False)
    """A save of the conversation failed and has not succeeded since."""

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        if self.model_name:
            text.append(one_line(self.model_name), style="bold")
            if self.low_bit:
                text.append(f" ({one_line(self.low_bit)})")
        elif self.state == "none":
            text.append("no model installed", style="bold")
        else:
            text.append("no model", style="bold")
        if self.state != "none":
            text.append(" │ ")
            text.append(self.state, style=STATE_STYLES.get(self.state, ""))
        if self.unsaved:
            text.append(" │ ")
            text.append("unsaved", style="bold reverse")
        for part in self._numbers():
            text.append(" │ ")
            text.append(part)
        return text

    def _numbers(self) -> list[str]:
        parts = []
        if self.tok_s is not None:
            parts.append(f"{self.tok_s:.1f} tok/s")
        if self.ttft_s is not None:
            parts.append(f"TTFT {self.ttft_s:.2f} s")
        if self.context_used is not None and self.context_size:
            parts.append(f"ctx {self.context_used}/{self.context_size}")
        if self.rss_bytes:
            parts.append(f"RAM {format_bytes(self.rss_bytes)}")
        return parts
