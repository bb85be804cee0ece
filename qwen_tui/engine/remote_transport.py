"""The HTTP side of a remote reply: the client, a reader thread, stop, and the one 429 retry.

A reader thread does the HTTP and hands chunks over a queue; the consumer polls it and, once
`cancel` is set, shuts the request's socket down. That wakes the reader at once and tells the
server the client is gone (llama.cpp, vLLM and Ollama then stop generating), even while the
server has not sent its headers yet. The openai client's own retries are off: a 429 is retried
once, after its Retry-After (bounded, cut short by a stop); nothing else is retried.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import queue
import socket
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from qwen_tui.config import RemoteConfig

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

_POLL_S = 0.1
"""How often the consumer looks at `cancel` while the server is quiet."""
MAX_RETRY_AFTER_S = 30.0
"""A 429 asking to wait longer than this is reported, not waited for."""
DEFAULT_RETRY_AFTER_S = 1.0
"""The wait before the one retry of a 429 that gave no Retry-After."""


@dataclass
class Item:
    """One thing the reader thread hands to the consumer."""

    kind: str
    """"chunk", "error" or "end" (always last)."""
    chunk: Any = None
    at: float = 0.0
    error: BaseException | None = None


class ReplyStream:
    """One streamed request: iterate it for its items (chunks, then maybe one error).

    Iteration ends when the stream ends by itself (`ended` is then True) or once `cancel` is
    set; either way the reader thread is told to stop and, if still reading, its socket is
    shut down. Close it (or use `contextlib.closing`) when leaving the loop early.
    """

    def __init__(
        self, client: openai.OpenAI, request: dict[str, Any], base_url: str, cancel: threading.Event
    ) -> None:
        self._client, self._request, self._base_url = client, request, base_url
        self._cancel = cancel
        self.ended = False
        """The stream ended (or failed) by itself, before any stop."""

    def __iter__(self) -> Iterator[Item]:
        connection = _Connection()
        halt = threading.Event()  # tells the reader to stop: set on cancel and on exit
        events: queue.Queue[Item] = queue.Queue()
        reader = threading.Thread(
            target=self._read,
            args=(events, connection, halt),
            name="qwen-tui-remote",
            daemon=True,
        )
        reader.start()
        try:
            while not self.ended and not self._cancel.is_set():
                try:
                    item = events.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                self.ended = item.kind != "chunk"
                if item.kind != "end":
                    yield item
        finally:
            halt.set()
            if reader.is_alive():
                connection.abort()  # wakes the reader; the server sees the client go

    def _read(
        self, events: queue.Queue[Item], connection: _Connection, halt: threading.Event
    ) -> None:
        """In the reader thread: open the stream and queue its chunks until it ends."""
        _this_thread.connection = connection  # the request hook hands it to httpcore's trace
        try:
            stream = self._open(halt)
            if stream is None:
                return
            with stream:  # closes the HTTP response however the loop ends
                for chunk in stream:
                    events.put(Item("chunk", chunk=chunk, at=time.perf_counter()))
                    if halt.is_set():
                        break
        except BaseException as error:  # reported to the consumer, never lost in the thread
            if not halt.is_set():
                log.info("remote reply failed: %r", error)
            events.put(Item("error", error=error))
        finally:
            events.put(Item("end"))
            _this_thread.connection = None

    def _open(self, halt: threading.Event) -> Any:
        """The response stream; a 429 is retried once after its Retry-After (None: stopped)."""
        import openai

        try:
            return self._client.chat.completions.create(**self._request)
        except openai.RateLimitError as error:
            wait = retry_after(error.response.headers)
            if wait is None:
                wait = DEFAULT_RETRY_AFTER_S
            if wait > MAX_RETRY_AFTER_S:
                raise
            log.info("429 from %s: retrying once in %.1f s", self._base_url, wait)
            if halt.wait(wait):
                return None
            return self._client.chat.completions.create(**self._request)


class _Connection:
    """The network streams one reply's request opened, so that a stop (in the consumer's
    thread) can shut them down while the reader thread is blocked on them."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._streams: list[Any] = []
        self._aborted = False

    def trace(self, event: str, info: dict[str, Any]) -> None:
        """httpcore's trace extension: keep each new (TCP, then TLS) stream."""
        if not event.endswith(("connect_tcp.complete", "start_tls.complete")):
            return
        stream = info.get("return_value")
        if stream is None:
            return
        with self._lock:
            self._streams.append(stream)
            aborted = self._aborted
        if aborted:  # the stop came while connecting
            _shutdown(stream)

    def abort(self) -> None:
        with self._lock:
            self._aborted = True
            streams = list(self._streams)
        for stream in streams:
            _shutdown(stream)


def _shutdown(stream: Any) -> None:
    """shutdown(), not close(): close() does not wake a recv() blocked in another thread."""
    sock = stream.get_extra_info("socket")
    if sock is None:
        return
    with contextlib.suppress(OSError):  # already closed: nothing left to stop
        sock.shutdown(socket.SHUT_RDWR)


_this_thread = threading.local()
"""The reader thread's _Connection, for the request hook (one reader per reply)."""


def _attach_trace(request: Any) -> None:
    connection = getattr(_this_thread, "connection", None)
    if connection is not None:
        request.extensions["trace"] = connection.trace


def make_client(remote: RemoteConfig, api_key: str | None) -> openai.OpenAI:
    import httpx2
    import openai

    timeout = httpx2.Timeout(
        connect=remote.connect_timeout,
        read=remote.read_timeout,
        write=remote.read_timeout,
        pool=remote.connect_timeout,
    )
    http = openai.DefaultHttpx2Client(
        timeout=timeout,
        # A new connection per request: its socket is then known from the start (the trace
        # sees it connect), so a stop can close it even before the server answers.
        limits=httpx2.Limits(max_connections=4, max_keepalive_connections=0),
        event_hooks={"request": [_attach_trace]},
    )
    return openai.OpenAI(
        # Always explicit: never let the client pick up OPENAI_API_KEY (or OPENAI_ORG_ID...)
        # from the environment and send it to a server the user did not give it to.
        api_key=api_key or "no-key",
        base_url=remote.base_url,
        timeout=timeout,
        max_retries=0,  # no hidden retry storm: ReplyStream retries a 429 once, nothing else
        default_headers={"OpenAI-Organization": openai.Omit(), "OpenAI-Project": openai.Omit()},
        http_client=http,
    )


def retry_after(headers: Mapping[str, str]) -> float | None:
    """Seconds a 429 asks to wait: `retry-after-ms`, `retry-after` in seconds or as a date."""
    try:
        if "retry-after-ms" in headers:
            return max(0.0, float(headers["retry-after-ms"]) / 1000)
        value = headers.get("retry-after")
        if value is None:
            return None
        try:
            return max(0.0, float(value))
        except ValueError:
            when = email.utils.parsedate_to_datetime(value)
            return max(0.0, when.timestamp() - time.time())
    except (TypeError, ValueError, OverflowError):
        return None
