"""One message of the conversation: who said it, the Markdown text, and how the reply went."""

from __future__ import annotations

from rich.text import Text
from textual.app import ComposeResult
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from qwen_tui.conversation import GenerationStats, Message, StopReason
from qwen_tui.visible_text import one_line, visible_text

ROLE_LABELS = {"user": "You", "assistant": "Assistant", "system": "System"}

STREAM_FLUSH_S = 0.25
"""Streamed text reaches the Markdown widget at most this often. Each update lays the screen
out again (~3 ms of the UI thread), and on 2 cores every ms the UI takes is taken from the
model's threads: per token that cost 5-13 % of the decode speed, 10/s still ~7 %, 4/s ~2 %
(UI overhead in `make bench`). Four updates a second still reads as live text and spares
slow SSH links."""


def stats_line(stats: GenerationStats | None) -> str:
    """`42 tokens · TTFT 0.31 s · 12.5 tok/s` — the cost of one reply."""
    if stats is None:
        return ""
    parts = [f"{stats.generated_tokens} tokens"]
    if stats.ttft_s is not None:
        parts.append(f"TTFT {stats.ttft_s:.2f} s")
    if stats.decode_tok_s is not None:
        parts.append(f"{stats.decode_tok_s:.1f} tok/s")
    if stats.stop_reason is StopReason.MAX_TOKENS:
        parts.append("max tokens reached")
    if stats.dropped_turns:
        parts.append(f"{stats.dropped_turns} old turns left out")
    return " · ".join(parts)


class MessageView(Vertical, can_focus=True):
    """A user or assistant message; an assistant reply can be streamed into it."""

    def __init__(self, message: Message, *, show_stats: bool = True) -> None:
        super().__init__(classes=f"-{message.role}")
        self.message = message
        self.show_stats = show_stats
        self._stream: MarkdownStream | None = None
        self._streaming = False
        self._unwritten = ""
        self._flush_timer: Timer | None = None
        self._pending = False

    def compose(self) -> ComposeResult:
        yield Static(ROLE_LABELS.get(self.message.role, self.message.role), classes="role")
        yield Markdown(visible_text(self.message.content), classes="body")
        yield Static(classes="footer", markup=False)

    @property
    def body(self) -> Markdown:
        return self.query_one(".body", Markdown)

    def start_streaming(self) -> None:
        """This reply is being generated now: an unfinished reply is not "interrupted"."""
        self._streaming = True
        self.refresh_footer()

    def append(self, text: str) -> None:
        """Add a streamed piece; it is shown with the others at the next flush."""
        self._streaming = True
        self._unwritten += text
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(STREAM_FLUSH_S, self._flush)

    async def _flush(self) -> None:
        self._flush_timer = None
        text, self._unwritten = self._unwritten, ""
        if not text:
            return
        if self._stream is None:
            self._stream = Markdown.get_stream(self.body)
        await self._stream.write(visible_text(text))

    async def finish(self) -> None:
        """Stop streaming and render the whole text once (fixes half-open code fences)."""
        if self._flush_timer is not None:
            self._flush_timer.stop()
            self._flush_timer = None
        self._unwritten = ""  # the full update below shows it
        self._streaming = False
        if self._stream is not None:
            await self._stream.stop()
            self._stream = None
        await self.body.update(visible_text(self.message.content))
        self.refresh_footer()

    def set_pending(self, pending: bool) -> None:
        """Show that this prompt waits for the model to load."""
        self._pending = pending
        self.refresh_footer()

    def refresh_footer(self) -> None:
        footer = self.query_one(".footer", Static)
        text = self._footer()
        footer.update(text)
        footer.display = bool(text.plain)
        self.set_class(self.message.stopped, "-stopped")
        self.set_class(self.message.error is not None, "-error")

    def on_mount(self) -> None:
        self.refresh_footer()

    def _footer(self) -> Text:
        message = self.message
        text = Text(stats_line(message.stats) if self.show_stats else "", style="dim")
        marker = self._marker()
        if marker:
            if text:
                text.append(" · ", style="dim")
            text.append(marker, style="bold")
        return text

    def _marker(self) -> str:
        """How the reply went, when that is not simply "finished"."""
        message = self.message
        if self._pending:
            return "waiting for the model to load…"
        if message.error is not None:
            return f"✗ failed: {one_line(message.error)}"
        if message.stopped:
            return "■ stopped"
        if message.incomplete and not self._streaming:
            return "■ incomplete (interrupted)"
        return ""
