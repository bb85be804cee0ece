"""What went wrong in a download, in words the user can act on (`DownloadError.kind`).

huggingface_hub and requests raise a dozen exception types for a handful of situations a user
can tell apart (wrong id, gated repo, no network, disk full, a dropped connection). This module
sorts them: which are worth a retry, and which sentence (with the fix: a token, a mirror, free
space, re-run to resume) each one becomes.
"""

from __future__ import annotations

import errno
import re
from typing import Literal

from qwen_tui.model_setup.hub_settings import ENDPOINT_ENV, MIRROR_HINT, TOKEN_ENV

ErrorKind = Literal[
    "not_found", "unauthorized", "unreachable", "disk_full", "interrupted", "cancelled", "other"
]


class DownloadError(Exception):
    """A download failed; `str(error)` is the message to show the user."""

    def __init__(self, kind: ErrorKind, message: str) -> None:
        super().__init__(message)
        self.kind: ErrorKind = kind
        self.message = message


class Cancelled(Exception):
    """Raised from inside huggingface_hub's read loop; turned into DownloadError("cancelled")."""


class Corrupt(Exception):
    """A downloaded file failed its checksum (and was removed): worth another try."""


def is_transient(exc: BaseException) -> bool:
    """Worth retrying: the connection broke, the server hiccuped, or a file came out wrong."""
    import requests
    from huggingface_hub.utils import HfHubHTTPError

    exc = _unwrap(exc)
    if isinstance(exc, HfHubHTTPError):
        return exc.response is not None and exc.response.status_code >= 500
    broken = (requests.ConnectionError, requests.Timeout, requests.exceptions.ChunkedEncodingError)
    if isinstance(exc, broken):
        return not isinstance(exc, (requests.exceptions.SSLError, requests.exceptions.ProxyError))
    if isinstance(exc, Corrupt) or "hf_transfer" in str(exc):  # hf_transfer: a RuntimeError
        return True
    # huggingface_hub's size check after a body ended early ("Consistency check failed")
    return type(exc) is OSError and exc.errno is None


def _unwrap(exc: BaseException) -> BaseException:
    """The cause behind huggingface_hub's "cannot find the file locally" after a failed HEAD."""
    from huggingface_hub.utils import LocalEntryNotFoundError

    if isinstance(exc, LocalEntryNotFoundError) and exc.__cause__ is not None:
        return exc.__cause__
    return exc


def cancelled() -> DownloadError:
    return DownloadError("cancelled", "Download cancelled. Re-running resumes where it stopped.")


def interrupted(file_name: str, exc: BaseException, retries: int) -> DownloadError:
    tries = f"after {retries} retr{'y' if retries == 1 else 'ies'}" if retries else "(no retries)"
    return DownloadError(
        "interrupted",
        f"The download of {file_name} was interrupted {tries}: {_reason(exc)}. "
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


def as_download_error(
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
