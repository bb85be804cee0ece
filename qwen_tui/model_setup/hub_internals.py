"""The one place that reaches into huggingface_hub beyond its documented API.

Two things the download needs that huggingface_hub 0.36 does not offer publicly:

- Byte progress and cancel. There is no byte-level callback, so a response hook on the sessions
  huggingface_hub creates (`configure_http_backend`, built on the *private*
  `huggingface_hub.utils._http._default_backend_factory`, which keeps offline mode and the
  request-id headers) hands each file body over in 64 KiB pieces: each is counted, then written
  by huggingface_hub; the cancel event is checked between them.
- hf_transfer and hf_xet switched per file. 0.36 reads `constants.HF_HUB_ENABLE_HF_TRANSFER` and
  `constants.HF_HUB_DISABLE_XET` (set from the environment at import) at each download, so they
  are flipped process-wide around one `hf_hub_download` call.

Anything here may move in another huggingface_hub release; `missing_internals()` names what is
gone, and tests/unit/test_hub_internals.py fails on it, before a user meets a silent download.
"""

from __future__ import annotations

import inspect
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from qwen_tui.model_setup.download_errors import Cancelled

if TYPE_CHECKING:
    import requests

    from qwen_tui.model_setup.download_progress import Transfer

PIECE_BYTES = 64 * 1024


def missing_internals() -> list[str]:
    """The huggingface_hub internals this module relies on that the installed version lacks."""
    import huggingface_hub
    from huggingface_hub import constants, file_download

    missing = []
    if not callable(getattr(huggingface_hub, "configure_http_backend", None)):
        missing.append("huggingface_hub.configure_http_backend (the session factory hook)")
    try:
        from huggingface_hub.utils._http import _default_backend_factory  # noqa: F401
    except ImportError:
        missing.append("huggingface_hub.utils._http._default_backend_factory (private)")
    source = inspect.getsource(file_download)
    for name in ("HF_HUB_ENABLE_HF_TRANSFER", "HF_HUB_DISABLE_XET"):
        if not isinstance(getattr(constants, name, None), bool):
            missing.append(f"huggingface_hub.constants.{name} (a bool flipped per file)")
        elif f"constants.{name}" not in source:
            missing.append(
                f"huggingface_hub.file_download reading constants.{name} at download time"
            )
    return missing


@contextmanager
def fast_backends(enabled: bool) -> Iterator[None]:
    """Let huggingface_hub use hf_transfer and hf_xet for one big file, or neither.

    Both backends write in native code where the body hook cannot see: no cancel until the file
    is done, and hf_transfer deletes a partial file instead of resuming it. So they are on only
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


_watched = threading.local()
_hook_lock = threading.Lock()
_hook_installed = False


@contextmanager
def watching(transfer: Transfer) -> Iterator[None]:
    """Route this thread's file downloads through `transfer` (hub sessions are per thread)."""
    _watched.transfer = transfer
    try:
        yield
    finally:
        _watched.transfer = None


def install_body_hook() -> None:
    """Make every session huggingface_hub creates pass file bodies through `_WatchedBody`.

    Sessions of other threads (transformers loading a model, say) get the hook too, but it does
    nothing there: only a thread inside `watching` has a transfer.
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
    transfer: Transfer | None = getattr(_watched, "transfer", None)
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

    def __init__(self, raw: Any, transfer: Transfer) -> None:
        self._raw, self._transfer = raw, transfer

    def stream(self, amt: int | None = None, decode_content: bool | None = None) -> Iterator[bytes]:
        for piece in self._raw.stream(PIECE_BYTES, decode_content=decode_content):
            yield piece
            try:
                self._transfer.add(len(piece))
            except Cancelled:
                self._raw.close()
                raise

    def __getattr__(self, name: str) -> Any:
        return getattr(self._raw, name)
