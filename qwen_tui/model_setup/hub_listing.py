"""What a download would fetch: the repo's files and sizes, what is already here, and room.

One API call lists the files (no file is fetched), the allow-patterns pick from them, and the
local folder says which are finished and how many bytes are still to come, so the free-space
check happens before the first byte instead of when the disk fills up.
"""

from __future__ import annotations

import shutil
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from qwen_tui.model_setup.download_errors import DownloadError, as_download_error
from qwen_tui.units import human_bytes

LISTING_TIMEOUT_S = 15.0


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
        raise as_download_error(exc, repo_id, endpoint, token, revision) from exc
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


def bytes_missing(dest: Path, files: Sequence[RemoteFile]) -> int:
    """Bytes still to fetch: unfinished files minus what partial files already hold."""
    done = complete_files(dest, files)
    partial_dir = dest / ".cache" / "huggingface" / "download"
    partial = (
        sum(p.stat().st_size for p in partial_dir.rglob("*.incomplete"))
        if partial_dir.is_dir()
        else 0
    )
    return max(0, sum(f.size for f in files if f.name not in done) - partial)


def complete_files(dest: Path, files: Sequence[RemoteFile]) -> set[str]:
    """Files already in `dest` at full size (huggingface_hub still checks them against the hub)."""
    complete = set()
    for f in files:
        path = dest / f.name
        if path.is_file() and path.stat().st_size == f.size:
            complete.add(f.name)
    return complete
