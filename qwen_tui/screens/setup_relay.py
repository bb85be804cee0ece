"""The setup worker's progress as messages to the setup screen, a few a second at most.

Progress callbacks fire in the worker thread; the screen may only be touched from the UI
thread, so each (throttled by model_setup's ProgressThrottle) becomes a Textual message.
"""

from __future__ import annotations

import time
from collections.abc import Callable

from textual.message import Message
from textual.message_pump import MessagePump

from qwen_tui.model_setup.download_progress import DownloadProgress
from qwen_tui.model_setup.setup_job import REDRAW_EVERY_S, ProgressThrottle


class DownloadProgressed(Message):
    """Bytes, speed and ETA of the download running in the setup worker."""

    def __init__(self, progress: DownloadProgress) -> None:
        super().__init__()
        self.progress = progress


class StageChanged(Message):
    """The setup worker moved to another step (downloading, quantizing…) or along one."""

    def __init__(self, stage: str, fraction: float | None) -> None:
        super().__init__()
        self.stage = stage
        self.fraction = fraction


class ProgressRelay(ProgressThrottle):
    """The worker's throttled progress, posted to `target` as messages."""

    def __init__(
        self,
        target: MessagePump,
        every_s: float = REDRAW_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        super().__init__(
            lambda progress: target.post_message(DownloadProgressed(progress)),
            lambda stage, fraction: target.post_message(StageChanged(stage, fraction)),
            every_s,
            clock,
        )
