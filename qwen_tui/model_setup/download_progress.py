"""Byte counts, speed, ETA and cancel for one download, reported as `DownloadProgress`.

The transfer code and the hub hook only say "a body starts at offset N", "N more bytes", "the
file holds N bytes on disk"; this module turns those into the numbers the CLI and the setup
screen show (throttled to PROGRESS_EVERY_S, speed over a sliding window) and raises `Cancelled`
between pieces once the cancel event is set.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

from qwen_tui.model_setup.download_errors import Cancelled
from qwen_tui.model_setup.hub_listing import RemoteFile

PROGRESS_EVERY_S = 0.1
SPEED_WINDOW_S = 5.0


@dataclass(frozen=True)
class DownloadProgress:
    filename: str
    file_bytes: int
    """Bytes of `filename` on disk, including what an earlier run fetched."""
    file_total: int
    done_bytes: int
    """Bytes of all selected files on disk."""
    total_bytes: int
    bytes_per_s: float
    """Speed over the last few seconds, counting only bytes fetched in this run."""
    eta_s: float | None
    files_done: int
    files_total: int


ProgressCallback = Callable[[DownloadProgress], None]


class Transfer:
    """Byte counts, speed and cancel for one `download_model` call."""

    def __init__(
        self,
        files: Sequence[RemoteFile],
        finished: set[str],
        callback: ProgressCallback | None,
        cancel: threading.Event,
    ) -> None:
        self.files = files
        self.finished = set(finished)
        self.callback = callback
        self.cancel = cancel
        self.total = sum(f.size for f in files)
        self.finished_bytes = sum(f.size for f in files if f.name in finished)
        self.current: RemoteFile | None = None
        self.file_bytes = 0
        self.fetched = 0
        """Bytes transferred in this run."""
        self.fetched_current = False
        """A body of the current file was received (it was not skipped)."""
        self._samples: deque[tuple[float, int]] = deque()
        self._lock = threading.RLock()
        self._last_emit = 0.0

    def check_cancel(self) -> None:
        if self.cancel.is_set():
            raise Cancelled()

    def begin_file(self, remote: RemoteFile) -> bool:
        """Start on `remote`; True if it was already complete (and counted as done)."""
        self.check_cancel()
        self.current, self.file_bytes, self.fetched_current = remote, 0, False
        if remote.name in self.finished:
            return True
        self.emit(force=True)
        return False

    def body_starts_at(self, offset: int) -> None:
        """A GET for the current file answered: a 206 resumes at `offset`, a 200 starts over."""
        self.check_cancel()
        current = self.current
        if current is not None and current.name in self.finished:
            # huggingface_hub found the local copy outdated: it is fetched again, so uncount it.
            self.finished.discard(current.name)
            self.finished_bytes -= current.size
        self.file_bytes, self.fetched_current = offset, True
        self.emit()

    def add(self, n: int) -> None:
        self.file_bytes += n
        self.fetched += n
        self.emit()
        self.check_cancel()

    def observed(self, file_bytes: int) -> None:
        """The current file holds `file_bytes` (seen on disk, not through the body hook)."""
        with self._lock:
            file_bytes = min(file_bytes, self.current.size if self.current else 0)
            if file_bytes > self.file_bytes:
                self.fetched += file_bytes - self.file_bytes
                self.file_bytes = file_bytes
                self.emit()

    def end_file(self, remote: RemoteFile) -> None:
        if self.fetched_current:  # hf_transfer's last bytes, which polling may not have seen
            self.fetched += max(0, remote.size - self.file_bytes)
        newly_done = remote.name not in self.finished
        self.current, self.file_bytes = None, 0
        if newly_done:
            self.finished.add(remote.name)
            self.finished_bytes += remote.size
            self.emit(force=True)

    def emit(self, force: bool = False) -> None:
        with self._lock:  # the hf_transfer poller reports from its own thread
            now = time.monotonic()
            if self.callback is None or (not force and now - self._last_emit < PROGRESS_EVERY_S):
                return
            self._last_emit = now
            self._emit(now)

    def _emit(self, now: float) -> None:
        assert self.callback is not None
        speed = self._speed(now)
        done = self.finished_bytes + self.file_bytes
        current = self.current
        self.callback(
            DownloadProgress(
                filename=current.name if current else "",
                file_bytes=self.file_bytes,
                file_total=current.size if current else 0,
                done_bytes=done,
                total_bytes=self.total,
                bytes_per_s=speed,
                eta_s=(self.total - done) / speed if speed > 0 else None,
                files_done=len(self.finished),
                files_total=len(self.files),
            )
        )

    def _speed(self, now: float) -> float:
        self._samples.append((now, self.fetched))
        while len(self._samples) > 2 and now - self._samples[0][0] > SPEED_WINDOW_S:
            self._samples.popleft()
        t0, b0 = self._samples[0]
        return (self.fetched - b0) / (now - t0) if now - t0 > 0.2 else 0.0
