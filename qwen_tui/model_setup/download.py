"""Fetch a model's files from the Hugging Face Hub (or a mirror) into a plain folder.

huggingface_hub does all the HTTP: `HfApi.model_info` lists the files and their sizes,
`hf_hub_download(local_dir=...)` fetches each one with a HEAD then a GET, resuming a partial
file (`<dest>/.cache/huggingface/download/*.incomplete`) with a `Range` request. What this module
adds, measured against huggingface_hub 0.36 and the stand-in in tests/hub_server.py:

- Retries. A connection dropped mid-body (closed or reset) is *not* retried by huggingface_hub: it
  raises `ChunkedEncodingError`. We retry with backoff; the partial file makes each retry (and
  the next run, after ctrl-c or a killed process) resume instead of starting over.
- Progress and cancel. 0.36 has no byte-level callback (snapshot_download's `tqdm_class` only
  counts files), so a response hook on the sessions huggingface_hub creates
  (`configure_http_backend`, its documented extension point) hands the body over in 64 KiB
  pieces: each is counted, then written by huggingface_hub; the cancel event is checked between
  them. Without it the body arrives in 10 MiB reads, which is also all a drop would leave saved.
- Files are fetched one after the other: the total, the ETA and what is left are known per file,
  and a cancelled run leaves at most one partial file.
- Clear errors (`DownloadError.kind`), a free-space check before starting, and a sha256 check of
  LFS files (weights) after a fresh or resumed download.

hf_xet is installed, and huggingface_hub switches to it whenever the server sends xet headers (the
real hub does for xet-backed repos, Qwen's included). hf_xet, like hf_transfer, downloads in
native code: no byte progress through the hook, no cancel mid-file, its own resume rules. So the
default path switches it off (`_fast_backends`) and the hub serves those files over plain HTTP;
`use_hf_transfer` turns both on for big files. The stand-in sends xet headers only when asked
(`xet_headers`), to test exactly that.
"""

from __future__ import annotations

import errno
import hashlib
import importlib.util
import os
import re
import shutil
import threading
import time
from collections import deque
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from qwen_tui.units import human_bytes

if TYPE_CHECKING:
    import requests

DEFAULT_ENDPOINT = "https://huggingface.co"
ENDPOINT_ENV = "HF_ENDPOINT"
TOKEN_ENV = "HF_TOKEN"
MIRROR_HINT = "https://hf-mirror.com"
HF_TRANSFER_MIN_BYTES = 50 * 1024 * 1024
"""huggingface_hub hands only files above 5 x its 10 MiB chunk to hf_transfer."""
PIECE_BYTES = 64 * 1024
PROGRESS_EVERY_S = 0.1
SPEED_WINDOW_S = 5.0
LISTING_TIMEOUT_S = 15.0

ErrorKind = Literal[
    "not_found", "unauthorized", "unreachable", "disk_full", "interrupted", "cancelled", "other"
]
ProgressCallback = Callable[["DownloadProgress"], None]


class DownloadError(Exception):
    """A download failed; `str(error)` is the message to show the user."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message


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


@dataclass(frozen=True)
class RemoteFile:
    name: str
    size: int
    sha256: str | None
    """Set for LFS files (weights): checked after download."""


@dataclass(frozen=True)
class RepoListing:
    repo_id: str
    revision: str
    """The commit sha the listing resolved to; every file is fetched at this commit."""
    files: tuple[RemoteFile, ...]
    """The files selected by the allow-patterns."""

    @property
    def total_bytes(self) -> int:
        return sum(f.size for f in self.files)


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    """A plain folder with the repo's files (plus huggingface_hub's `.cache/` bookkeeping)."""
    revision: str
    files: tuple[str, ...]
    fetched_bytes: int
    """Bytes transferred in this run (0 when everything was already there)."""


# -- settings --------------------------------------------------------------------------------


def resolve_endpoint(cli_endpoint: str | None, config_endpoint: str) -> str:
    """The hub to use: `--endpoint`, then `HF_ENDPOINT`, then config.toml, then huggingface.co."""
    for candidate in (cli_endpoint, os.environ.get(ENDPOINT_ENV), config_endpoint):
        if candidate and candidate.strip():
            endpoint = candidate.strip().rstrip("/")
            return endpoint if "://" in endpoint else f"https://{endpoint}"
    return DEFAULT_ENDPOINT


def resolve_token(config_token: str) -> str | None:
    """The access token for gated repos: `HF_TOKEN`, then config.toml, else none.

    With none, huggingface_hub still uses a token saved by `huggingface-cli login`.
    """
    for candidate in (os.environ.get(TOKEN_ENV), config_token):
        if candidate and candidate.strip():
            return candidate.strip()
    return None


def check_disk_space(folder: Path, needed_bytes: int) -> None:
    """Raise `DownloadError(kind="disk_full")` unless `folder`'s disk has `needed_bytes` free."""
    existing = Path(folder).absolute()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    free = shutil.disk_usage(existing).free
    if free < needed_bytes:
        raise DownloadError(
            "disk_full",
            f"Not enough free disk space in {existing}: the download and the quantized model "
            f"need {_gb(needed_bytes)}, only {_gb(free)} is free. Free up "
            f"{_gb(needed_bytes - free)} or choose a smaller model.",
        )


def _gb(n: int) -> str:
    return human_bytes(n, "GB")


# -- listing ---------------------------------------------------------------------------------


def list_model_files(
    repo_id: str,
    *,
    endpoint: str,
    token: str | None = None,
    revision: str | None = None,
    allow_patterns: Sequence[str] | None = None,
) -> RepoListing:
    """The files a download would fetch, with sizes: one API call, no file is fetched."""
    from huggingface_hub import HfApi

    api = HfApi(endpoint=endpoint, token=token, library_name="qwen-tui")
    try:
        info = api.model_info(
            repo_id, revision=revision, files_metadata=True, timeout=LISTING_TIMEOUT_S
        )
    except Exception as exc:
        raise _as_download_error(exc, repo_id, endpoint, token, revision) from exc
    files = [
        RemoteFile(s.rfilename, s.size or 0, s.lfs.sha256 if s.lfs else None)
        for s in info.siblings or ()
    ]
    return RepoListing(repo_id, info.sha or "", _select(files, allow_patterns))


def _select(
    files: list[RemoteFile], allow_patterns: Sequence[str] | None
) -> tuple[RemoteFile, ...]:
    from huggingface_hub.utils import filter_repo_objects

    chosen = list(filter_repo_objects(files, allow_patterns=allow_patterns, key=lambda f: f.name))
    # Repos often carry the same weights twice; safetensors loads faster and runs no pickle.
    if any(f.name.endswith(".safetensors") for f in chosen):
        chosen = [f for f in chosen if not f.name.startswith("pytorch_model")]
    return tuple(chosen)


# -- download --------------------------------------------------------------------------------


def download_model(
    repo_id: str,
    dest: Path,
    *,
    endpoint: str,
    token: str | None = None,
    revision: str | None = None,
    allow_patterns: Sequence[str] | None = None,
    use_hf_transfer: bool = False,
    progress: ProgressCallback | None = None,
    cancel: threading.Event | None = None,
    retries: int = 3,
    extra_bytes_needed: int = 0,
    retry_wait_s: float = 1.0,
) -> DownloadResult:
    """Fetch `repo_id`'s files matching `allow_patterns` into `dest`, resuming what is there.

    Re-running with the same `dest` skips finished files and resumes a partial one. A dropped
    connection is retried `retries` times (the count starts over whenever bytes arrived), with
    backoff from `retry_wait_s`. `extra_bytes_needed` (the quantized result) is added to the
    free-space check. Raises `DownloadError`; ctrl-c (KeyboardInterrupt) passes through and, like
    a killed process, leaves a partial file the next run resumes.
    """
    cancel = cancel or threading.Event()
    listing = list_model_files(
        repo_id, endpoint=endpoint, token=token, revision=revision, allow_patterns=allow_patterns
    )
    if not listing.files:
        raise DownloadError(
            "not_found", f"{repo_id} has no files matching {list(allow_patterns or [])}."
        )
    dest = Path(dest)
    check_disk_space(dest, _bytes_missing(dest, listing.files) + extra_bytes_needed)
    dest.mkdir(parents=True, exist_ok=True)
    transfer = _Transfer(listing.files, _complete_files(dest, listing.files), progress, cancel)
    fetch = _FileFetcher(listing, dest, endpoint, token, use_hf_transfer, transfer)
    _install_body_hook()
    # Finished files go through huggingface_hub too: it skips them without a request when its
    # bookkeeping matches the commit, and fetches them again if the repo changed.
    for remote in listing.files:
        _fetch_with_retries(fetch, remote, retries, retry_wait_s)
    transfer.emit(force=True)
    names = tuple(f.name for f in listing.files)
    return DownloadResult(dest, listing.revision, names, transfer.fetched)


def _fetch_with_retries(
    fetch: _FileFetcher, remote: RemoteFile, retries: int, wait_s: float
) -> None:
    transfer, failures = fetch.transfer, 0
    while True:
        fetched_before = transfer.fetched
        try:
            fetch(remote)
            return
        except _Cancelled:
            raise _cancelled() from None
        except Exception as exc:
            if not _is_transient(exc):
                listing = fetch.listing
                raise _as_download_error(
                    exc, listing.repo_id, fetch.endpoint, fetch.token, listing.revision
                ) from exc
            failures = 1 if transfer.fetched > fetched_before else failures + 1
            if failures > retries:
                raise _interrupted(remote, exc, retries) from exc
        if transfer.cancel.wait(min(wait_s * 2 ** (failures - 1), 30.0)):  # backoff, or cancel
            raise _cancelled()


class _FileFetcher:
    """One `hf_hub_download` call for one file, with hf_transfer and the body hook set up."""

    def __init__(
        self,
        listing: RepoListing,
        dest: Path,
        endpoint: str,
        token: str | None,
        use_hf_transfer: bool,
        transfer: _Transfer,
    ) -> None:
        self.listing, self.dest, self.endpoint, self.token = listing, dest, endpoint, token
        self.use_hf_transfer = (
            use_hf_transfer and importlib.util.find_spec("hf_transfer") is not None
        )
        self.transfer = transfer

    def __call__(self, remote: RemoteFile) -> None:
        from huggingface_hub import hf_hub_download

        was_complete = self.transfer.begin_file(remote)
        fast = self.use_hf_transfer and remote.size > HF_TRANSFER_MIN_BYTES
        with _watching(self.transfer), _fast_backends(fast), _polling(self, fast):
            hf_hub_download(
                self.listing.repo_id,
                remote.name,
                revision=self.listing.revision,
                local_dir=self.dest,
                endpoint=self.endpoint,
                token=self.token,
                library_name="qwen-tui",
            )
        if self.transfer.fetched_current or not was_complete:
            _verify(self.dest / remote.name, remote)
        self.transfer.end_file(remote)


@contextmanager
def _polling(fetch: _FileFetcher, enabled: bool) -> Iterator[None]:
    """Progress for hf_transfer, which downloads in Rust where the body hook cannot see.

    It writes chunks in parallel at their offsets, so the partial file's length runs ahead;
    the blocks it has allocated grow with the data actually received.
    """
    if not enabled:
        yield
        return
    folder = fetch.dest / ".cache" / "huggingface" / "download"
    stop = threading.Event()

    def poll() -> None:
        while not stop.wait(0.25):
            try:
                partial = max(folder.rglob("*.incomplete"), key=lambda p: p.stat().st_mtime)
                stat = partial.stat()
            except (ValueError, OSError):  # none yet, or renamed into place meanwhile
                continue
            fetch.transfer.observed(getattr(stat, "st_blocks", 0) * 512 or stat.st_size)

    thread = threading.Thread(target=poll, name="hf-transfer-progress", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


def _verify(path: Path, remote: RemoteFile) -> None:
    """Check an LFS file against the listed sha256; a resumed file stitched wrongly is removed."""
    if remote.sha256 is None:
        return
    digest = hashlib.sha256()
    with path.open("rb") as f:
        while block := f.read(4 * 1024 * 1024):
            digest.update(block)
    if digest.hexdigest() != remote.sha256:
        path.unlink()
        raise _Corrupt(f"{remote.name} did not match its checksum")


def _bytes_missing(dest: Path, files: Sequence[RemoteFile]) -> int:
    """Bytes still to fetch: unfinished files minus what partial files already hold."""
    done = _complete_files(dest, files)
    partial_dir = dest / ".cache" / "huggingface" / "download"
    partial = (
        sum(p.stat().st_size for p in partial_dir.rglob("*.incomplete"))
        if partial_dir.is_dir()
        else 0
    )
    return max(0, sum(f.size for f in files if f.name not in done) - partial)


def _complete_files(dest: Path, files: Sequence[RemoteFile]) -> set[str]:
    """Files already in `dest` at full size (huggingface_hub still checks them against the hub)."""
    complete = set()
    for f in files:
        path = dest / f.name
        if path.is_file() and path.stat().st_size == f.size:
            complete.add(f.name)
    return complete


@contextmanager
def _fast_backends(enabled: bool) -> Iterator[None]:
    """Let huggingface_hub use hf_transfer and hf_xet for one big file, or neither.

    0.36 reads both switches from module constants (HF_HUB_ENABLE_HF_TRANSFER and
    HF_HUB_DISABLE_XET, set from the environment at import) each time it downloads a file. Both
    backends write in native code where the body hook cannot see: no cancel until the file is
    done, and hf_transfer deletes a partial file instead of resuming it. So they are on only
    when the config asks for speed, and only for big files. With xet off, the hub serves
    xet-backed files over plain HTTP like any other.
    """
    from huggingface_hub import constants

    before = constants.HF_HUB_ENABLE_HF_TRANSFER, constants.HF_HUB_DISABLE_XET
    constants.HF_HUB_ENABLE_HF_TRANSFER, constants.HF_HUB_DISABLE_XET = enabled, not enabled
    try:
        yield
    finally:
        constants.HF_HUB_ENABLE_HF_TRANSFER, constants.HF_HUB_DISABLE_XET = before


# -- progress, cancel and the body hook ------------------------------------------------------


class _Cancelled(Exception):
    """Raised from inside huggingface_hub's read loop; turned into DownloadError("cancelled")."""


class _Corrupt(Exception):
    """A downloaded file failed its checksum (and was removed): worth another try."""


class _Transfer:
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
            raise _Cancelled()

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


_watched = threading.local()
_hook_lock = threading.Lock()
_hook_installed = False


@contextmanager
def _watching(transfer: _Transfer) -> Iterator[None]:
    """Route this thread's file downloads through `transfer` (hub sessions are per thread)."""
    _watched.transfer = transfer
    try:
        yield
    finally:
        _watched.transfer = None


def _install_body_hook() -> None:
    """Make every session huggingface_hub creates pass file bodies through `_WatchedBody`.

    Sessions of other threads (transformers loading a model, say) get the hook too, but it does
    nothing there: only a thread inside `_watching` has a transfer.
    """
    global _hook_installed
    with _hook_lock:
        if _hook_installed:
            return
        from huggingface_hub import configure_http_backend
        from huggingface_hub.utils._http import _default_backend_factory  # keeps offline mode etc.

        def session_with_hook() -> requests.Session:
            session = _default_backend_factory()
            session.hooks["response"].append(_watch_response)
            return session

        configure_http_backend(backend_factory=session_with_hook)
        _hook_installed = True


def _watch_response(response: requests.Response, *args: Any, **kwargs: Any) -> requests.Response:
    transfer: _Transfer | None = getattr(_watched, "transfer", None)
    if (
        transfer is None
        or response.request.method != "GET"
        or response.status_code not in (200, 206)
    ):
        return response
    offset = 0
    if response.status_code == 206:  # Content-Range: bytes START-END/TOTAL
        offset = int(response.headers.get("Content-Range", "bytes 0-").split()[1].split("-")[0])
    transfer.body_starts_at(offset)
    response.raw = _WatchedBody(response.raw, transfer)
    return response


class _WatchedBody:
    """Stands in for urllib3's response: yields the body in small pieces, counting each.

    requests' `iter_content` reads through `raw.stream()`; everything else goes to the real one.
    A piece is counted once requests asks for the next, that is once huggingface_hub wrote it.
    """

    def __init__(self, raw: Any, transfer: _Transfer) -> None:
        self._raw, self._transfer = raw, transfer

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        for piece in self._raw.stream(PIECE_BYTES, decode_content=decode_content):
            yield piece
            try:
                self._transfer.add(len(piece))
            except _Cancelled:
                self._raw.close()
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)


# -- errors ----------------------------------------------------------------------------------


def _is_transient(exc: BaseException) -> bool:
    """Worth retrying: the connection broke, the server hiccuped, or a file came out wrong."""
    import requests
    from huggingface_hub.utils import HfHubHTTPError

    exc = _unwrap(exc)
    if isinstance(exc, HfHubHTTPError):
        return exc.response is not None and exc.response.status_code >= 500
    broken = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    if isinstance(exc, broken):
        return not isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError))
    if isinstance(exc, _Corrupt) or "hf_transfer" in str(exc):  # hf_transfer: a RuntimeError
        return True
    # huggingface_hub's size check after a body ended early ("Consistency check failed")
    return type(exc) is OSError and exc.errno is None


def _unwrap(exc: BaseException) -> BaseException:
    """The cause behind huggingface_hub's "cannot find the file locally" after a failed HEAD."""
    from huggingface_hub.utils import LocalEntryNotFoundError

    if isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def _cancelled() -> DownloadError:
    return DownloadError("cancelled", "Download cancelled. Re-running resumes where it stopped.")


def _interrupted(remote: RemoteFile, exc: BaseException, retries: int) -> DownloadError:
    tries = f"after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else "(no retries)"
    return DownloadError(
        "interrupted",
        f"The download of {remote.name} was interrupted {tries}: {_reason(exc)}. "
        "Re-running the same command resumes where it stopped; finished files are kept.",
    )


def _reason(exc: BaseException) -> str:
    """A few words on what went wrong, without urllib3's nested retry wording."""
    import requests

    text = str(exc)
    if isinstance(exc, requests.exceptions.ChunkedEncodingError):
        return "the connection dropped"
    if isinstance(exc, requests.Timeout):
        return "timed out"
    if isinstance(exc, requests.ConnectionError):
        errno_text = re.search(r"\[Errno -?\d+\] ([^'\")\]]+)", text)
        return errno_text.group(1).strip() if errno_text else "connection failed"
    return text.splitlines()[0][:200] if text else type(exc).__name__


def _as_download_error(
    exc: BaseException, repo_id: str, endpoint: str, token: str | None, revision: str | None
) -> DownloadError:
    import requests
    from huggingface_hub.utils import (
        EntryNotFoundError,
        GatedRepoError,
        HfHubHTTPError,
        LocalEntryNotFoundError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    # Order matters: GatedRepoError < RepositoryNotFoundError < HfHubHTTPError < requests.HTTPError.
    exc = _unwrap(exc)
    status = getattr(getattr(exc, "response", None), "status_code", None)
    refused = status in (401, 403) and not isinstance(exc, RepositoryNotFoundError)
    if isinstance(exc, GatedRepoError) or refused:
        return DownloadError("unauthorized", _unauthorized_message(repo_id, endpoint, token))
    if isinstance(exc, RevisionNotFoundError):
        return DownloadError("not_found", f"{repo_id} has no revision {revision!r} on {endpoint}.")
    if isinstance(exc, RepositoryNotFoundError):
        return DownloadError(
            "not_found",
            f"Model repo {repo_id!r} was not found on {endpoint}. Check the id (like "
            f"Qwen/Qwen-1_8B-Chat); a private repo also needs a token in {TOKEN_ENV}.",
        )
    if isinstance(exc, EntryNotFoundError):
        return DownloadError(
            "not_found", f"A file listed in {repo_id} is missing on {endpoint}: {exc}"
        )
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return DownloadError(
            "disk_full",
            "The disk filled up during the download. Free some space and re-run: the download "
            "resumes where it stopped.",
        )
    if isinstance(
        exc,
        (requests.ConnectionError, requests.Timeout, OfflineModeIsEnabled, LocalEntryNotFoundError),
    ) or (isinstance(exc, HfHubHTTPError) and status is not None and status >= 500):
        return DownloadError("unreachable", _unreachable_message(endpoint, exc))
    return DownloadError("other", f"Downloading {repo_id} failed: {_reason(exc)}")


def _unauthorized_message(repo_id: str, endpoint: str, token: str | None) -> str:
    if token:
        return (
            f"{endpoint} refused the token for {repo_id}. Check that the token in {TOKEN_ENV} "
            "(or [hub] token in config.toml) has read access and that you accepted the "
            "model's licence on its page."
        )
    return (
        f"{repo_id} is gated or private: accept its licence on the model page, create an access "
        f"token, then set {TOKEN_ENV}=<token> (or [hub] token in config.toml) and re-run."
    )


def _unreachable_message(endpoint: str, exc: BaseException) -> str:
    return (
        f"Cannot reach {endpoint} ({_reason(exc)}). Check your network connection. If "
        f"{endpoint} is blocked where you are, use a mirror: set {ENDPOINT_ENV}={MIRROR_HINT} "
        "(or pass --endpoint, or set [hub] endpoint in config.toml)."
    )
