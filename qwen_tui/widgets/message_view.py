"""One message of the conversation: who said it, the Markdown text, and how the reply went."""

from __future__ import annotations

import math
import time
from collections.abc import Callable

from markdown_it import MarkdownIt
from markdown_it.rules_core import StateCore
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.timer import Timer
from textual.widgets import Markdown, Static
from textual.widgets.markdown import MarkdownStream

from qwen_tui.conversation import ROLE_LABELS, Message
from qwen_tui.stats_text import reply_stats_line
from qwen_tui.visible_text import one_line, visible_text
from qwen_tui.widgets.attachment_block import AttachmentBlock

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
RENDER_CHARS = 20_000
RENDER_COST = 200
"""How much of a message is rendered as Markdown, live and when it ends: at most this many
characters, and lines plus table cells (`markdown_cost`). Textual's Markdown costs per block
and per table cell, ~2-10 ms each: 20,000 short paragraphs froze the UI for minutes, a
200x500 table took gigabytes. The rest is counted under the rendered part and shown as
plain text on demand, RENDER_CHARS at a time (a TextArea or Log of 500 KB takes seconds)."""


def markdown_cost(text: str) -> int:
    """Roughly what rendering `text` costs: a block per line, a cell per `|`."""
    return text.count("\n") + text.count("|")


def rendered_part(text: str, chars: int = RENDER_CHARS, cost: int = RENDER_COST) -> str:
    """The head of `text` within both budgets, cut at a line end (a cut inside a table row
    reads worse); a first line longer than the cost budget is still shown, as far as
    `chars` allows."""
    if len(text) <= chars and markdown_cost(text) <= cost:
        return text
    head = text[: max(chars, 0)]
    end = spent = 0
    while (line_end := head.find("\n", end)) >= 0:
        spent += 1 + head.count("|", end, line_end)
        if spent > cost and end > 0:
            break
        end = line_end + 1
    if end == 0 and "\n" not in head:
        return head  # one long line (the cost of a line is its wrapping, bounded by chars)
    return head[:end]


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

    BINDINGS = [  # noqa: RUF012
        Binding("enter", "show_more", "Show more", show=False),
    ]

    def __init__(
        self,
        message: Message,
        *,
        show_stats: bool = True,
        branch: tuple[int, int] = (1, 1),
    ) -> None:
        super().__init__(classes=f"-{message.role}")
        self.message = message
        self.branch = branch
        """(place, count) among the message's siblings: `‹ 2/3 ›` when there are some."""
        self.show_stats = show_stats
        self._stream: MarkdownStream | None = None
        self._streaming = False
        self._unwritten = ""
        self._flush_timer: Timer | None = None
        self._pacer = StreamPacer()
        self._pending = False
        self._rendered = 0
        """Characters of the content shown so far (as Markdown, then as plain parts)."""
        self._spent = 0
        """The markdown_cost of what the Markdown widget got."""
        self._capped = False
        """The rendered part reached its budget while streaming: the rest is only counted."""

    def compose(self) -> ComposeResult:
        yield Static(self._role_line(), classes="role")
        head = rendered_part(self.message.content)
        self._rendered, self._spent = len(head), markdown_cost(head)
        breaks = with_line_breaks if self.message.role == "user" else None
        yield Markdown(visible_text(head), classes="body", parser_factory=breaks)
        for attachment in self.message.attachments:
            yield AttachmentBlock(attachment)
        yield Static(classes="more", markup=False)
        yield Static(classes="footer", markup=False)

    def _role_line(self) -> Text:
        line = Text(ROLE_LABELS.get(self.message.role, self.message.role))
        place, count = self.branch
        if count > 1:  # the branch keys (see actions.py) walk them
            line.append(f"  ‹ {place}/{count} ›", style="bold")
        return line

    @property
    def body(self) -> Markdown:
        return self.query_one(".body", Markdown)

    def start_streaming(self) -> None:
        """This reply is being generated now: an unfinished reply is not "interrupted"."""
        self._streaming = True
        self.refresh_footer()

    def append(self, text: str) -> None:
        """Add a streamed piece (already in `message.content`); it is shown with the others
        at the next flush."""
        self._streaming = True
        if not self._capped and self._rendered + len(self._unwritten) < RENDER_CHARS:
            self._unwritten += text  # (beyond RENDER_CHARS it would be cut anyway)
        if self._flush_timer is None:
            self._flush_timer = self.set_timer(self._pacer.next_interval(), self._flush)

    async def _flush(self) -> None:
        self._flush_timer = None
        text, self._unwritten = self._unwritten, ""
        if text and not self._capped:
            part = rendered_part(text, RENDER_CHARS - self._rendered, RENDER_COST - self._spent)
            self._capped = len(part) < len(text)
            text = part
        self._rendered += len(text)
        self._spent += markdown_cost(text)
        self._capped = self._capped or self._rendered < len(self.message.content)
        self._refresh_more()
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
        head = rendered_part(self.message.content)
        self._rendered, self._spent = len(head), markdown_cost(head)
        await self.query_children(".rest").remove()
        await self.body.update(visible_text(head))
        self.refresh_footer()

    def _refresh_more(self) -> None:
        more = self.query_one(".more", Static)
        hidden = len(self.message.content) - self._rendered
        more.display = hidden > 0
        if hidden > 0:
            more.update(
                f"▼ {hidden:,} more characters not shown here"
                + ("" if self._streaming else ": enter on this message shows the next part")
            )

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "show_more":  # only for a long message, once it is complete
            return not self._streaming and len(self.message.content) > self._rendered
        return True

    async def action_show_more(self) -> None:
        """The next part of a long message, as plain text (cheap to draw, whatever it is)."""
        rest = self.message.content[self._rendered :]
        part = rendered_part(rest, RENDER_CHARS, cost=len(rest)) or rest[:RENDER_CHARS]
        self._rendered += len(part)
        shown = Static(visible_text(part.rstrip("\n")), classes="rest", markup=False)
        await self.mount(shown, before=self.query_one(".more", Static))
        self._refresh_more()

    def set_pending(self, pending: bool) -> None:
        """Show that this prompt waits for the model to load."""
        self._pending = pending
        self.refresh_footer()

    def refresh_footer(self) -> None:
        self._refresh_more()
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
        text = Text(reply_stats_line(message.stats) if self.show_stats else "", style="dim")
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
