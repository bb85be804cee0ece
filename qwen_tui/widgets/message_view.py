"""One message of the conversation: who said it, the Markdown text, and how the reply went."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
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
"""Streamed text reaches the Markdown widget at most this often (four times a second reads
as live text and spares slow SSH links)."""
STREAM_FLUSH_MAX_S = 1.0
"""...and at least this often, however costly the updates get."""
UI_CPU_SHARE = 0.025
"""While a reply streams, the UI thread aims at this share of one core. Every ms it runs is
taken from the model's threads on a small machine (2 cores, 2 compute threads). Each update
parses the new Markdown, mounts blocks and lays the screen out again: measured 6-11 ms on
the bench's 120x40 screen, more as the reply and the session grow. With that cost updates
are spaced out (StreamPacer); per-token updates cost 5-13 % of the decode speed."""


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


def with_line_breaks() -> MarkdownIt:
    """Markdown that keeps every line break (a person's message: Markdown would otherwise
    run lines typed with ctrl+j, or pasted, into one paragraph). Code blocks are untouched."""
    parser = MarkdownIt("gfm-like")
    parser.core.ruler.push("hard_breaks", _hard_breaks)
    return parser


def _hard_breaks(state: StateCore) -> None:
    # markdown-it's `breaks` option only changes its HTML output; Textual reads the tokens.
    for token in state.tokens:
        for child in token.children or ():
            if child.type == "softbreak":
                child.type = "hardbreak"


class StreamPacer:
    """How long to wait before the next update of streamed text.

    Measures the UI thread's CPU time (all of it, not only our updates) over each wait and
    scales the next one so the share of a core it uses approaches `UI_CPU_SHARE`, between
    `STREAM_FLUSH_S` and `STREAM_FLUSH_MAX_S`. The square root damps the noise of one wait.
    """

    def __init__(
        self,
        wall_clock: Callable[[], float] = time.monotonic,
        cpu_clock: Callable[[], float] = time.thread_time,
    ) -> None:
        self.interval = STREAM_FLUSH_S
        self._wall_clock, self._cpu_clock = wall_clock, cpu_clock
        self._mark: tuple[float, float] | None = None

    def next_interval(self) -> float:
        wall, cpu = self._wall_clock(), self._cpu_clock()
        if self._mark is not None and wall > self._mark[0]:
            share = (cpu - self._mark[1]) / (wall - self._mark[0])
            scaled = self.interval * math.sqrt(max(share, 0.0) / UI_CPU_SHARE)
            self.interval = min(STREAM_FLUSH_MAX_S, max(STREAM_FLUSH_S, scaled))
        self._mark = (wall, cpu)
        return self.interval


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
        self._pacer = StreamPacer()
        self._pending = False

    def compose(self) -> ComposeResult:
        yield Static(ROLE_LABELS.get(self.message.role, self.message.role), classes="role")
        breaks = with_line_breaks if self.message.role == "user" else None
        yield Markdown(visible_text(self.message.content), classes="body", parser_factory=breaks)
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
            self._flush_timer = self.set_timer(self._pacer.next_interval(), self._flush)

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
