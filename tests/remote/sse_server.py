"""A real HTTP server on 127.0.0.1 that plays an OpenAI-compatible chat server from a script.

Not a mock of the client: the engine talks to it over a socket with the openai library, so
HTTP, chunked transfer, SSE parsing, timeouts and disconnects are all real. Each POST to
`/v1/chat/completions` plays the next `Answer` queued with `answer()` (the last one repeats):
a recorded SSE stream (files under `recordings/`, captured from llama-cpp-python's server or
written in OpenAI's format), an HTTP error with a JSON body and headers, a delay before the
headers, a pause between events, or a connection cut after N events.

`GET /v1/models` lists `models` (or answers `models_status`). With `api_key` set, both
routes answer 401 unless the request carries `Authorization: Bearer <api_key>`.

Test controls: `requests` records every request (method, path, headers, JSON body);
`client_gone` is set when a client closes a streamed answer before its end.

Manual use: `python tests/remote/sse_server.py --port 8080 recordings/llama_cpp_hello.sse`,
then a [[remotes]] entry with base_url = "http://127.0.0.1:8080/v1".
"""

from __future__ import annotations

import argparse
import contextlib
import json
import select
import socket
import ssl
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

RECORDINGS = Path(__file__).parent / "recordings"


def read_events(name: str) -> list[str]:
    """The events of a recorded SSE stream, each as it was sent (without its blank line)."""
    text = (RECORDINGS / name).read_text(encoding="utf-8")
    return [block for block in text.split("\n\n") if block.strip()]


def chunk_event(text: str | None = None, finish: str | None = None, index: int = 0) -> str:
    """One `chat.completion.chunk` event in llama-cpp-python's shape."""
    delta = {} if text is None else {"content": text}
    chunk = {
        "id": "chatcmpl-test",
        "object": "chat.completion.chunk",
        "created": 1764000000,
        "model": "smollm2",
        "choices": [{"index": index, "delta": delta, "logprobs": None, "finish_reason": finish}],
    }
    return "data: " + json.dumps(chunk)


def token_events(words: list[str], finish: str | None = "stop") -> list[str]:
    events = [chunk_event(word) for word in words]
    if finish is not None:
        events += [chunk_event(finish=finish), "data: [DONE]"]
    return events


@dataclass
class Answer:
    """What the server does with one chat request."""

    events: list[str | bytes] = field(default_factory=list)
    """SSE events to stream (status 200); bytes go out exactly as given (invalid UTF-8)."""
    status: int = 200
    error: str = ""
    """For status != 200: the error message, sent as OpenAI's {"error": {"message": ...}}."""
    body: bytes | None = None
    """For status != 200: the exact body instead (e.g. FastAPI's {"detail": ...})."""
    headers: dict[str, str] = field(default_factory=dict)
    before_headers_s: float = 0.0
    """Silence before the status line (a server still loading its model)."""
    between_s: float = 0.0
    """Pause before each event (a server generating slowly)."""
    stall_after: int | None = None
    """Go silent for `stall_s` after this many events (a server that hangs mid-reply)."""
    stall_s: float = 0.0
    reset: bool = False
    """Reset the connection instead of answering (a server that crashed on the request)."""
    cut_after: int | None = None
    """Close the connection abruptly after this many events (a server that died)."""


@dataclass(frozen=True)
class Request:
    method: str
    path: str
    headers: dict[str, str]
    json: Any


class ReplayServer:
    """Start with `with ReplayServer() as server:`; `server.base_url` ends in /v1."""

    def __init__(
        self,
        models: tuple[str, ...] = ("smollm2",),
        api_key: str | None = None,
        port: int = 0,
        tls: ssl.SSLContext | None = None,
    ) -> None:
        """`tls`: a server-side context with its certificate loaded: serve https://."""
        self.models = list(models)
        self.models_status = 200
        self.models_delay_s = 0.0
        """Silence before answering GET /models (a server still starting: `ask` is loading)."""
        self.api_key = api_key
        self.requests: list[Request] = []
        self.client_gone = threading.Event()
        self.client_gone_at: float | None = None
        self._answers: list[Answer] = []
        self._lock = threading.Lock()
        self._httpd = ThreadingHTTPServer(("127.0.0.1", port), _Handler)
        self._httpd.daemon_threads = True
        self._httpd.replay = self  # type: ignore[attr-defined]
        self.scheme = "http"
        if tls is not None:
            self._httpd.socket = tls.wrap_socket(self._httpd.socket, server_side=True)
            self.scheme = "https"
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)

    @property
    def port(self) -> int:
        return self._httpd.server_address[1]

    @property
    def base_url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}/v1"

    def answer(self, *answers: Answer) -> None:
        with self._lock:
            self._answers.extend(answers)

    def answer_only(self, answer: Answer) -> None:
        """Answer every chat request from now on with `answer` (drops what was queued)."""
        with self._lock:
            self._answers = [answer]

    def chat_requests(self) -> list[Request]:
        return [r for r in self.requests if r.path.endswith("/chat/completions")]

    def next_answer(self) -> Answer:
        with self._lock:
            if len(self._answers) > 1:
                return self._answers.pop(0)
            return self._answers[0] if self._answers else Answer(token_events(["Hi"]))

    def __enter__(self) -> ReplayServer:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()


class _Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "replay"

    @property
    def replay(self) -> ReplayServer:
        return self.server.replay  # type: ignore[attr-defined]

    def log_message(self, format: str, *args: Any) -> None:  # quiet test output
        pass

    def do_GET(self) -> None:
        self._record(None)
        if not self._authorized():
            return
        if self.replay.models_delay_s and self._client_left_within(self.replay.models_delay_s):
            return
        if self.path.rstrip("/").endswith("/v1/models") and self.replay.models_status == 200:
            data = [{"id": m, "object": "model", "owned_by": "me"} for m in self.replay.models]
            self._send_json(200, {"object": "list", "data": data})
        else:
            status = self.replay.models_status if self.replay.models_status != 200 else 404
            self._send_json(status, {"detail": "Not Found"})

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = json.loads(self.rfile.read(length) or b"null")
        self._record(body)
        if not self._authorized():
            return
        if not self.path.endswith("/chat/completions"):
            self._send_json(404, {"detail": "Not Found"})
            return
        answer = self.replay.next_answer()
        if answer.reset:
            self._cut()
            return
        if answer.before_headers_s and self._client_left_within(answer.before_headers_s):
            return
        if answer.status != 200:
            payload = (
                answer.body
                or json.dumps(
                    {"error": {"message": answer.error, "type": "error", "code": answer.status}}
                ).encode()
            )
            self._send_bytes(answer.status, payload, "application/json", answer.headers)
            return
        self._stream(answer)

    def _stream(self, answer: Answer) -> None:
        self.send_response(200)
        self.send_header("content-type", "text/event-stream; charset=utf-8")
        self.send_header("transfer-encoding", "chunked")
        for name, value in answer.headers.items():
            self.send_header(name, value)
        self.end_headers()
        try:
            for number, event in enumerate(answer.events):
                if answer.cut_after is not None and number >= answer.cut_after:
                    self._cut()
                    return
                if answer.between_s and self._client_left_within(answer.between_s):
                    return
                stall = answer.stall_s if number == answer.stall_after else 0.0
                if stall and self._client_left_within(stall):
                    return
                data = event if isinstance(event, bytes) else event.encode()
                self._write_chunk(data + b"\n\n")
            self._write_chunk(b"")  # the terminating chunk: a clean end of the body
        except OSError:
            self._mark_gone()
            return
        self.close_connection = True

    def _write_chunk(self, data: bytes) -> None:
        self.wfile.write(f"{len(data):x}\r\n".encode() + data + b"\r\n")
        self.wfile.flush()

    def _client_left_within(self, seconds: float) -> bool:
        """Wait, watching the socket: a client that closes makes it readable with EOF."""
        deadline = time.monotonic() + seconds
        while (left := deadline - time.monotonic()) > 0:
            readable, _, _ = select.select([self.connection], [], [], left)
            if readable:
                try:
                    if self.connection.recv(1, socket.MSG_PEEK) == b"":
                        self._mark_gone()
                        return True
                except OSError:
                    self._mark_gone()
                    return True
                time.sleep(0.01)  # unexpected bytes (a pipelined request): keep waiting
        return False

    def _mark_gone(self) -> None:
        self.replay.client_gone_at = time.monotonic()
        self.replay.client_gone.set()
        self.close_connection = True

    def _cut(self) -> None:
        """Drop the connection mid-body with a reset, as a killed server's kernel does."""
        self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.connection.close()
        self.close_connection = True

    def _authorized(self) -> bool:
        key = self.replay.api_key
        if key is None or self.headers.get("authorization") == f"Bearer {key}":
            return True
        self._send_json(401, {"detail": "Invalid API key"})
        return False

    def _record(self, body: Any) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.replay.requests.append(Request(self.command, self.path, headers, body))

    def _send_json(self, status: int, payload: Any) -> None:
        self._send_bytes(status, json.dumps(payload).encode(), "application/json", {})

    def _send_bytes(self, status: int, data: bytes, kind: str, headers: dict[str, str]) -> None:
        self.send_response(status)
        self.send_header("content-type", kind)
        self.send_header("content-length", str(len(data)))
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("recording", help="an .sse file to answer every chat request with")
    parser.add_argument("--port", type=int, default=8080)
    args = parser.parse_args()
    events = [b for b in Path(args.recording).read_text().split("\n\n") if b.strip()]
    with ReplayServer(port=args.port) as server:
        server.answer(Answer(events))
        print(f"serving {args.recording} at {server.base_url} (ctrl-c stops)")
        with contextlib.suppress(KeyboardInterrupt):
            threading.Event().wait()


if __name__ == "__main__":
    main()
