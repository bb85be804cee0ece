"""Fetch a model's files from the Hugging Face Hub (or a mirror) into a plain folder.

huggingface_hub does all the HTTP: `HfApi.model_info` lists the files and their sizes,
`hf_hub_download(local_dir=...)` fetches each one with a HEAD then a GET, resuming a partial
file (`<dest>/.cache/huggingface/download/*.incomplete`) with a `Range` request. This module
runs the transfer, measured against huggingface_hub 0.36 and the stand-in in tests/hub_server.py:

- Retries. A connection dropped mid-body (closed or reset) is *not* retried by huggingface_hub: it
  raises `ChunkedEncodingError`. We retry with backoff; the partial file makes each retry (and
  the next run, after ctrl-c or a killed process) resume instead of starting over.
- Files are fetched one after the other: the total, the ETA and what is left are known per file,
  and a cancelled run leaves at most one partial file.
- A free-space check before starting, and a sha256 check of LFS files (weights) after a fresh
  or resumed download.

The rest lives beside it: hub_settings (endpoint, token), hub_listing (what to fetch, room on
disk), download_progress (bytes, speed, cancel), download_errors (wording), and hub_internals
(the byte hook and the backend switches, the only code touching huggingface_hub's internals).

hf_xet is installed, and huggingface_hub switches to it whenever the server sends xet headers (the
real hub does for xet-backed repos, Qwen's included). hf_xet, like hf_transfer, downloads in
native code: no byte progress through the hook, no cancel mid-file, its own resume rules. So the
default path switches it off (`fast_backends`) and the hub serves those files over plain HTTP;
`use_hf_transfer` turns both on for big files. The stand-in sends xet headers only when asked
(`xet_headers`), to test exactly that.
"""

from __future__ import annotations

import hashlib
import importlib.util
import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from qwen_tui.model_setup.download_errors import (
    Cancelled,
    Corrupt,
    DownloadError,
    as_download_error,
    cancelled,
    interrupted,
    is_transient,
)
from qwen_tui.model_setup.download_progress import ProgressCallback, Transfer
from qwen_tui.model_setup.hub_internals import fast_backends, install_body_hook, watching
from qwen_tui.model_setup.hub_listing import (
    RemoteFile,
    RepoListing,
    bytes_missing,
    check_disk_space,
    complete_files,
    list_model_files,
)

HF_TRANSFER_MIN_BYTES = 50 * 1024 * 1024
"""huggingface_hub hands only files above 5 x its 10 MiB chunk to hf_transfer."""


@dataclass(frozen=True)
class DownloadResult:
    path: Path
    """A plain folder with the repo's files (plus huggingface_hub's `.cache/` bookkeeping)."""
    revision: str
    files: tuple[str, ...]
    fetched_bytes: int
    """Bytes transferred in this run (0 when everything was already there)."""


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
    check_disk_space(dest, bytes_missing(dest, listing.files) + extra_bytes_needed)
    dest.mkdir(parents=True, exist_ok=True)
    transfer = Transfer(listing.files, complete_files(dest, listing.files), progress, cancel)
    fetch = _FileFetcher(listing, dest, endpoint, token, use_hf_transfer, transfer)
    install_body_hook()
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
        except Cancelled:
            raise cancelled() from None
        except Exception as exc:
            if not is_transient(exc):
                listing = fetch.listing
                raise as_download_error(
                    exc, listing.repo_id, fetch.endpoint, fetch.token, listing.revision
                ) from exc
            failures = 1 if transfer.fetched > fetched_before else failures + 1
            if failures > retries:
                raise interrupted(remote.name, exc, retries) from exc
        if transfer.cancel.wait(min(wait_s * 2 ** (failures - 1), 30.0)):  # backoff, or cancel
            raise cancelled()


class _FileFetcher:
    """One `hf_hub_download` call for one file, with hf_transfer and the body hook set up."""

    def __init__(
        self,
        listing: RepoListing,
        dest: Path,
        endpoint: str,
        token: str | None,
        use_hf_transfer: bool,
        transfer: Transfer,
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
        with watching(self.transfer), fast_backends(fast), _polling(self, fast):
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
        raise Corrupt(f"{remote.name} did not match its checksum")
