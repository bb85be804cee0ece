"""Three lines under the setup screen's choices: what is happening, a bar, and the numbers.

Drawn with plain block characters (filled `█`, empty `░`) rather than colours, so the bar reads
the same with NO_COLOR, and without animation: an indeterminate step (quantizing) shows the
seconds it has taken instead of a moving bar, so nothing redraws many times a second over SSH.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from rich.text import Text
from textual.widget import Widget

from qwen_tui.model_setup.download_progress import DownloadProgress
from qwen_tui.units import clock_text, human_bytes
from qwen_tui.visible_text import one_line

FILLED, EMPTY = "█", "░"


def download_numbers(progress: DownloadProgress) -> str:
    """`file · 12.3 MB / 40.0 MB · 1.9 MB/s · ETA 0:14 · 3/7 files`."""
    parts = [
        one_line(progress.filename) or "listing files",
        f"{human_bytes(progress.done_bytes)} / {human_bytes(progress.total_bytes)}",
    ]
    if progress.bytes_per_s > 0:
        parts.append(f"{human_bytes(progress.bytes_per_s)}/s")
    if progress.eta_s is not None:
        parts.append(f"ETA {clock_text(progress.eta_s)}")
    parts.append(f"{progress.files_done}/{progress.files_total} files")
    return " · ".join(parts)


class SetupProgress(Widget):
    """Shows one setup step; the setup screen calls `start`, `download`, `stage`, `hide`."""

    DEFAULT_CSS = """
    SetupProgress {
        height: 3;
        display: none;
    }
    SetupProgress.-active {
        display: block;
    }
    """

    def __init__(
        self, *, id: str | None = None, clock: Callable[[], float] = time.monotonic
    ) -> None:
        super().__init__(id=id)
        self._clock = clock
        self.title = ""
        """What is being set up, e.g. `Downloading Qwen/Qwen2.5-0.5B-Instruct`."""
        self.fraction: float | None = None
        """Done so far (0-1), or None when the step cannot tell."""
        self.numbers = ""
        """Bytes, speed and ETA of a download; elapsed time of other steps."""
        self._stage_started = 0.0
        self._timed = False
        """The numbers line is the elapsed time (a step without byte counts)."""

    def on_mount(self) -> None:
        # Steps without a fraction show elapsed seconds: one redraw a second is enough.
        self.set_interval(1.0, self._tick)

    def start(self, title: str) -> None:
        self.title, self.fraction, self.numbers = title, None, ""
        self._stage_started, self._timed = self._clock(), False
        self.add_class("-active")
        self.refresh()

    def download(self, progress: DownloadProgress) -> None:
        total = progress.total_bytes
        self.fraction = progress.done_bytes / total if total else None
        self.numbers, self._timed = download_numbers(progress), False
        self.refresh()

    def stage(self, title: str, fraction: float | None) -> None:
        """A new step (quantizing, converting…) or a step's progress."""
        if title != self.title:
            self._stage_started = self._clock()
        self.title, self.fraction, self._timed = title, fraction, True
        self.numbers = self._elapsed()
        self.refresh()

    def hide(self) -> None:
        self.remove_class("-active")

    def _elapsed(self) -> str:
        return f"{clock_text(self._clock() - self._stage_started)} elapsed"

    def _tick(self) -> None:
        if self._timed and self.has_class("-active"):
            self.numbers = self._elapsed()
            self.refresh()

    def render(self) -> Text:
        text = Text(no_wrap=True, overflow="ellipsis")
        text.append(one_line(self.title), style="bold")
        text.append("\n")
        text.append(self._bar(self.size.width))
        text.append("\n")
        text.append(self.numbers, style="dim")
        return text

    def _bar(self, width: int) -> str:
        if self.fraction is None:
            return ""
        fraction = min(max(self.fraction, 0.0), 1.0)
        label = f" {int(fraction * 100):3d}%"
        cells = max(width - len(label), 0)
        filled = int(fraction * cells)
        return FILLED * filled + EMPTY * (cells - filled) + label
