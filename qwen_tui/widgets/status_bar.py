"""One line at the bottom: model, state, speed of the current reply, context and memory use."""

from __future__ import annotations

from rich.text import Text
from textual.reactive import reactive
from textual.widget import Widget

from qwen_tui.stats_text import rate_text, ttft_text
from qwen_tui.units import GB, human_bytes
from qwen_tui.visible_text import one_line

STATE_STYLES = {
    "none": "bold",
    "loading": "italic",
    "ready": "",
    "generating": "bold",
    "error": "bold reverse",
}


def ram_text(count: int) -> str:
    """`300 MB`, `1.2 GB`: whole MB below a GB (the figure changes every second; decimals
    would only flicker)."""
    return human_bytes(count, "GB" if count >= GB else "MB", digits=1 if count >= GB else 0)


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
        """The model on the left; when the line is too narrow, the model's name is shortened
        first, then the numbers least needed (TTFT, then tok/s) are left out."""
        state = Text()
        if self.state != "none":
            state.append(" │ ")
            state.append(self.state, style=STATE_STYLES.get(self.state, ""))
        if self.unsaved:
            state.append(" │ ")
            state.append("unsaved", style="bold reverse")
        numbers = self._numbers()
        width = self.size.width or 200
        for droppable in ("ttft", "tok/s"):
            if len(self._model()) + len(state) + self._length(numbers) <= width:
                break
            numbers.pop(droppable, None)
        model = self._model()
        room = width - len(state) - self._length(numbers)
        if len(model) > room:
            model.truncate(max(room, 8), overflow="ellipsis")
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append_text(model)
        text.append_text(state)
        for part in numbers.values():
            text.append(" │ ")
            text.append(part)
        return text

    def _model(self) -> Text:
        text = Text()
        if self.model_name:
            text.append(one_line(self.model_name), style="bold")
            if self.low_bit:
                text.append(f" ({one_line(self.low_bit)})")
        elif self.state == "none":
            text.append("no model installed", style="bold")
        else:
            text.append("no model", style="bold")
        return text

    @staticmethod
    def _length(numbers: dict[str, str]) -> int:
        return sum(len(" │ ") + len(part) for part in numbers.values())

    def _numbers(self) -> dict[str, str]:
        parts = {}
        if self.tok_s is not None:
            parts["tok/s"] = rate_text(self.tok_s)
        if self.ttft_s is not None:
            parts["ttft"] = ttft_text(self.ttft_s)
        if self.context_used is not None and self.context_size:
            used, size = self.context_used, self.context_size
            # More than fits: the oldest turns are left out of the prompt, not a bigger window.
            parts["ctx"] = f"ctx {used}/{size}" if used <= size else f"ctx >{size}"
        if self.rss_bytes:
            parts["ram"] = f"RAM {ram_text(self.rss_bytes)}"
        return parts
