"""A local stand-in for the Hugging Face Hub: the routes `huggingface_hub` 0.36 calls to download.

Repos are folders under `root/<org>/<name>/`; every file in them is a repo file. Served:
- `GET /api/models/<repo>[/revision/<rev>][?blobs=true]`: `HfApi.model_info`, with the file list
  (`siblings`), sizes and LFS sha256 when `blobs` is asked for.
- `HEAD`/`GET /<repo>/resolve/<rev>/<path>`: `hf_hub_download`'s metadata call and the download,
  with the headers it reads (`X-Repo-Commit`, `ETag`, `X-Linked-Etag`, `X-Linked-Size`) and
  `Range: bytes=N-` answered with 206.
- Errors carry the `X-Error-Code` header huggingface_hub turns into its exception classes
  (`RepoNotFound`, `RevisionNotFound`, `EntryNotFound`, `GatedRepo`).

Test controls: `requests` records every request; `drop_after` cuts one response to a file after
N bytes (once); `throttle_bps` slows bodies down; `gated` maps a repo to the token it accepts;
`xet_headers` announces files as xet-backed (a client that then uses hf_xet fails here).

Manual use: `python tests/hub_server.py --root DIR --port 8000`, then
`HF_ENDPOINT=http://127.0.0.1:8000 qwen-tui setup org/name`.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import socket
import struct
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, unquote, urlsplit

LFS_SUFFIXES = (".safetensors", ".bin", ".gguf", ".pt", ".tiktoken")
LFS_MIN_BYTES = 10 * 1024 * 1024
SLICE = 16 * 1024


@dataclass(frozen=True)
class RecordedRequest:
    method: str
    path: str
    headers: dict[str, str]

    @property
    def range(self) -> str | None:
        return self.headers.get("range")

    def is_download_of(self, filename: str) -> bool:
        return (
            self.method == "GET" and "/resolve/" in self.path and self.path.endswith("/" + filename)
        )


@dataclass
class _Blob:
    """What the hub knows about one file: its size and the two hashes it reports."""

    size: int
    sha256: str
    git_sha1: str


def _is_lfs(filename: str, size: int) -> bool:
    """Stored in LFS, as the hub's default .gitattributes does for weights and big files."""
    return filename.endswith(LFS_SUFFIXES) or size >= LFS_MIN_BYTES


def _blob(path: Path) -> _Blob:
    data = path.read_bytes()
    git_sha1 = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
    return _Blob(len(data), hashlib.sha256(data).hexdigest(), git_sha1)


@dataclass
class HubServer:
    root: Path
    host: str = "127.0.0.1"
    port: int = 0
    requests: list[RecordedRequest] = field(default_factory=list)
    drop_after: dict[str, int] = field(default_factory=dict)
    """File path in the repo -> bytes of the body to send before cutting the connection (once)."""
    drop_with_reset: bool = False
    """Cut with a TCP reset instead of a plain close."""
    throttle_bps: float | None = None
    gated: dict[str, str] = field(default_factory=dict)
    """Repo id -> the only token its files are served to (the API listing stays public)."""
    xet_headers: bool = False
    """Announce files as xet-backed, as the real hub does for most repos now."""
    echo: bool = False
    """Also print each request (`--log`), for a server in another process."""

    def __post_init__(self) -> None:
        self._lock = threading.Lock()
        self._blobs: dict[tuple[Path, int, int], _Blob] = {}
        handler = type("Handler", (_Handler,), {"hub": self})
        self._httpd = ThreadingHTTPServer((self.host, self.port), handler)
        self._httpd.daemon_threads = True
        self.port = self._httpd.server_address[1]
        self._thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> HubServer:
        """Serve from a background thread (tests)."""
        self._thread = threading.Thread(target=self._httpd.serve_forever, args=(0.05,), daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()

    def serve_forever(self) -> None:
        """Serve from this thread until ctrl-c (manual tries)."""
        try:
            self._httpd.serve_forever()
        except KeyboardInterrupt:
            pass
        finally:
            self._httpd.server_close()

    def __enter__(self) -> HubServer:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def downloads_of(self, filename: str) -> list[RecordedRequest]:
        return [r for r in self.requests if r.is_download_of(filename)]

    # -- what the handler asks -------------------------------------------------------------
    def record(self, request: RecordedRequest) -> None:
        with self._lock:
            self.requests.append(request)
        if self.echo:
            print(request.method, request.path, request.range or "-", flush=True)

    def take_drop(self, filename: str) -> int | None:
        with self._lock:
            return self.drop_after.pop(filename, None)

    def repo_files(self, repo_id: str) -> dict[str, Path] | None:
        folder = self.root / repo_id
        if repo_id.count("/") != 1 or not folder.is_dir():
            return None
        files = sorted(p for p in folder.rglob("*") if p.is_file())
        return {p.relative_to(folder).as_posix(): p for p in files}

    def blob(self, path: Path) -> _Blob:
        stat = path.stat()
        key = (path, stat.st_size, stat.st_mtime_ns)
        with self._lock:
            if key not in self._blobs:
                self._blobs[key] = _blob(path)
            return self._blobs[key]

    def commit(self, files: dict[str, Path]) -> str:
        """The repo's commit sha: changes whenever a file does, like a real one."""
        digest = hashlib.sha1()
        for name, path in files.items():
            digest.update(f"{name}\0{self.blob(path).git_sha1}\n".encode())
        return digest.hexdigest()


class _Handler(BaseHTTPRequestHandler):
    hub: HubServer
    protocol_version = "HTTP/1.1"

    def log_message(self, format: str, *args: object) -> None:
        pass  # the request log is `hub.requests`

    def do_HEAD(self) -> None:
        self._serve(send_body=False)

    def do_GET(self) -> None:
        self._serve(send_body=True)

    def _serve(self, send_body: bool) -> None:
        headers = {k.lower(): v for k, v in self.headers.items()}
        self.hub.record(RecordedRequest(self.command, self.path, headers))
        url = urlsplit(self.path)
        parts = [unquote(p) for p in url.path.strip("/").split("/")]
        try:
            if parts[:2] == ["api", "models"] and send_body:
                self._api_model(parts[2:], parse_qs(url.query))
            elif len(parts) >= 5 and parts[2] == "resolve":
                self._resolve("/".join(parts[:2]), parts[3], "/".join(parts[4:]), send_body)
            else:
                self._error(404, "RepoNotFound", "Not found")
        except (BrokenPipeError, ConnectionResetError):
            self.close_connection = True  # the client went away (cancelled): nothing to do

    def _api_model(self, parts: list[str], query: dict[str, list[str]]) -> None:
        repo_id, rev = "/".join(parts[:2]), "main"
        if len(parts) == 4 and parts[2] == "revision":
            rev = parts[3]
        files = self._repo_or_error(repo_id, rev)
        if files is None:
            return
        with_blobs = query.get("blobs", ["false"])[0].lower() == "true"
        siblings = [self._sibling(name, path, with_blobs) for name, path in files.items()]
        body = {
            "id": repo_id,
            "modelId": repo_id,
            "sha": self.hub.commit(files),
            "private": False,
            "gated": "manual" if repo_id in self.hub.gated else False,
            "siblings": siblings,
        }
        self._send(200, {"Content-Type": "application/json"}, json.dumps(body).encode())

    def _sibling(self, name: str, path: Path, with_blobs: bool) -> dict[str, object]:
        if not with_blobs:
            return {"rfilename": name}
        blob = self.hub.blob(path)
        sibling: dict[str, object] = {"rfilename": name, "size": blob.size, "blobId": blob.git_sha1}
        if _is_lfs(name, blob.size):
            sibling["lfs"] = {"sha256": blob.sha256, "size": blob.size, "pointerSize": 134}
        return sibling

    def _resolve(self, repo_id: str, rev: str, filename: str, send_body: bool) -> None:
        files = self._repo_or_error(repo_id, rev)
        if files is None:
            return
        commit = self.hub.commit(files)
        if repo_id in self.hub.gated and not self._token_ok(self.hub.gated[repo_id]):
            self._error(401, "GatedRepo", f"Access to model {repo_id} is restricted.")
            return
        if filename not in files:
            self._error(404, "EntryNotFound", "Entry not found", {"X-Repo-Commit": commit})
            return
        path = files[filename]
        blob = self.hub.blob(path)
        lfs = _is_lfs(filename, blob.size)
        etag = f'"{blob.sha256 if lfs else blob.git_sha1}"'
        headers = {"X-Repo-Commit": commit, "ETag": etag, "Accept-Ranges": "bytes"}
        if lfs:
            headers |= {"X-Linked-Etag": etag, "X-Linked-Size": str(blob.size)}
        if self.hub.xet_headers:  # a client using hf_xet would call this route; it is not served
            route = f"{self.hub.url}/api/models/{repo_id}/xet-read-token/{commit}"
            headers |= {"X-Xet-Hash": blob.sha256, "X-Xet-Refresh-Route": route}
        span = self._range(blob.size)
        if span is None:
            self._send(416, {"Content-Range": f"bytes */{blob.size}"}, b"")
            return
        start, end = span
        if "Range" in self.headers:
            headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
        headers["Content-Length"] = str(end + 1 - start)
        self._send_headers(206 if "Range" in self.headers else 200, headers)
        if send_body:
            self._send_file(path, filename, start, end + 1 - start)

    def _repo_or_error(self, repo_id: str, rev: str) -> dict[str, Path] | None:
        files = self.hub.repo_files(repo_id)
        if files is None:
            self._error(404, "RepoNotFound", "Repository not found")
            return None
        if rev not in ("main", self.hub.commit(files)):
            self._error(404, "RevisionNotFound", f"Invalid rev id: {rev}")
            return None
        return files

    def _token_ok(self, accepted: str) -> bool:
        return self.headers.get("Authorization", "") == f"Bearer {accepted}"

    def _range(self, size: int) -> tuple[int, int] | None:
        """First and last byte of `Range: bytes=N-[M]`; None when it starts past the end."""
        value = self.headers.get("Range", "")
        if not value.startswith("bytes="):
            return 0, size - 1
        first, _, last = value[len("bytes=") :].partition("-")
        start, end = int(first or 0), min(int(last or size - 1), size - 1)
        return (start, end) if start < size or size == 0 else None

    def _send_file(self, path: Path, filename: str, start: int, length: int) -> None:
        drop = self.hub.take_drop(filename)
        sent, began = 0, time.monotonic()
        with path.open("rb") as f:
            f.seek(start)
            while sent < length and (piece := f.read(min(SLICE, length - sent))):
                if drop is not None and sent + len(piece) > drop:
                    self.wfile.write(piece[: drop - sent])
                    self._cut()
                    return
                self.wfile.write(piece)
                sent += len(piece)
                if self.hub.throttle_bps:
                    time.sleep(max(0.0, began + sent / self.hub.throttle_bps - time.monotonic()))

    def _cut(self) -> None:
        """Drop the connection mid-body, as a flaky network or a restarting proxy does."""
        self.wfile.flush()
        if self.hub.drop_with_reset:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        self.close_connection = True

    def _error(
        self, status: int, code: str, message: str, extra: dict[str, str] | None = None
    ) -> None:
        body = json.dumps({"error": message}).encode()
        headers = {
            "X-Error-Code": code,
            "X-Error-Message": message,
            "Content-Type": "application/json",
        }
        self._send(
            status, headers | (extra or {}), body if self.command == "GET" else b"", len(body)
        )

    def _send(
        self, status: int, headers: dict[str, str], body: bytes, length: int | None = None
    ) -> None:
        self._send_headers(
            status, headers | {"Content-Length": str(len(body) if length is None else length)}
        )
        if body:
            self.wfile.write(body)

    def _send_headers(self, status: int, headers: dict[str, str]) -> None:
        self.send_response(status)
        for name, value in headers.items():
            self.send_header(name, value)
        self.end_headers()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--root", type=Path, required=True, help="folder holding <org>/<name>/ repos"
    )
    parser.add_argument("--port", type=int, default=8000)
    parser.add_argument(
        "--throttle", type=float, default=None, help="bytes per second per download"
    )
    parser.add_argument("--log", action="store_true", help="print each request")
    args = parser.parse_args()
    hub = HubServer(args.root.resolve(), port=args.port, throttle_bps=args.throttle, echo=args.log)
    print(f"serving {hub.root} at {hub.url} (HF_ENDPOINT={hub.url}); ctrl-c stops", flush=True)
    hub.serve_forever()


if __name__ == "__main__":
    main()
