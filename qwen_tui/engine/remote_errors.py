"""What went wrong talking to a remote server, in one sentence with what to do about it.

openai and httpx wrap socket, DNS and TLS errors several layers deep, and servers word their
error bodies in three dialects (OpenAI, FastAPI, plain text); this module digs out the cause
and names the config.toml setting that fixes it (base_url, api_key_env, timeouts, model).
"""

from __future__ import annotations

import logging
import socket
import ssl
from typing import TYPE_CHECKING
from urllib.parse import urlsplit

from qwen_tui.config import RemoteConfig
from qwen_tui.engine.base import EngineError
from qwen_tui.engine.remote_transport import retry_after

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)


class RemoteError(EngineError):
    """The server could not be reached or refused; the message says which and what to do."""


def explain(error: BaseException, remote: RemoteConfig, *, received: int = 0) -> str:
    """One sentence for the user: what went wrong with `remote` and what to do about it."""
    import openai

    place = where(remote)
    if isinstance(error, openai.APIStatusError):
        return f"{place}: {_status_words(error, remote)}"
    if isinstance(error, openai.APITimeoutError):
        return f"{place}: {_timeout_words(error, remote, received)}"
    if isinstance(error, openai.APIConnectionError):
        return f"{place}: {_connection_words(error, remote, received)}"
    if isinstance(error, openai.APIError):  # an error event inside the stream
        return f"{place}: the server reported an error{after(received)}: {_one_line(error)}"
    log.error("unexpected failure talking to %s", remote.base_url, exc_info=error)
    return f"{place}: unexpected answer{after(received)} ({type(error).__name__}: {error})"


def where(remote: RemoteConfig) -> str:
    return f"{remote.model_name} ({remote.base_url})"


def after(received: int) -> str:
    if not received:
        return ""
    return f" after {received} token{'s' if received != 1 else ''} (the partial reply is kept)"


def _status_words(error: openai.APIStatusError, remote: RemoteConfig) -> str:
    code = error.status_code
    detail = _server_message(error)
    said = f": {detail}" if detail else ""
    env = remote.api_key_env
    if code == 401:
        if env:
            return f"the server refused the API key from ${env} (401 Unauthorized){said}"
        return (
            f"the server wants an API key (401 Unauthorized){said}; put it in an environment "
            f"variable and name that variable in api_key_env in [[remotes]] of config.toml"
        )
    if code == 403:
        key = f"the key from ${env}" if env else "this client"
        return f"access denied (403 Forbidden){said}; {key} may not use model {remote.model!r}"
    if code == 404:
        return (
            f"not found (404){said}; check model {remote.model!r} (the server lists its "
            f"models at /models) and base_url (usually ends in /v1)"
        )
    if code == 429:
        wait = retry_after(error.response.headers)
        when = f"; the server asks to wait {wait:.0f} s" if wait else "; try again later"
        return f"rate limited (429 Too Many Requests){said}{when}"
    if code >= 500:
        return f"server error ({code}){said}; the server's log says more"
    return f"the server rejected the request ({code}){said}"


def _server_message(error: openai.APIStatusError) -> str:
    """The human part of an error body: OpenAI's error.message, FastAPI's detail, or text."""
    body = error.body
    if isinstance(body, dict):
        inner = body.get("error", body)
        if isinstance(inner, dict):
            body = inner.get("message") or inner.get("detail") or ""
        else:
            body = inner
    if not body:
        try:
            body = error.response.text
        except Exception:  # a streamed error response may not be readable any more
            body = ""
    return _one_line(body)


def _timeout_words(error: BaseException, remote: RemoteConfig, received: int) -> str:
    import httpx2

    if any(isinstance(cause, httpx2.ConnectTimeout) for cause in _causes(error)):
        return f"no connection within {remote.connect_timeout:g} s (connect_timeout)"
    if received:
        return (
            f"the server went quiet for {remote.read_timeout:g} s (read_timeout){after(received)}"
        )
    return (
        f"no answer within {remote.read_timeout:g} s (read_timeout); the server may be busy "
        f"or still loading the model"
    )


def _connection_words(error: BaseException, remote: RemoteConfig, received: int) -> str:
    causes = _causes(error)
    host = urlsplit(remote.base_url).hostname or remote.base_url
    if received:
        return f"the connection was cut{after(received)}"
    for cause in causes:
        if isinstance(cause, ConnectionResetError) or "without sending a response" in str(cause):
            return (
                f"the server closed the connection without answering "
                f"({_one_line(cause)}); its log may say why"
            )
        if isinstance(cause, ConnectionRefusedError):
            return "connection refused: is the server running and listening there?"
        if isinstance(cause, socket.gaierror):
            return f"cannot find host {host!r} (DNS: {cause.strerror}); check base_url"
        if isinstance(cause, ssl.SSLCertVerificationError):
            return (
                f"the TLS certificate is not trusted ({cause.verify_message}); for a "
                f"self-signed server, point SSL_CERT_FILE at its CA certificate"
            )
        if isinstance(cause, ssl.SSLError):
            return (
                f"TLS failed ({cause.reason or cause}); is base_url https:// for a server "
                f"that speaks plain http://?"
            )
    last = causes[-1] if causes else error
    return f"cannot talk to the server ({_one_line(last) or type(last).__name__})"


def _causes(error: BaseException) -> list[BaseException]:
    """The error and what caused it, outermost first (httpx wraps socket and ssl errors)."""
    found: list[BaseException] = []
    current: BaseException | None = error
    while current is not None and current not in found:
        found.append(current)
        current = current.__cause__ or current.__context__
    return found


def _one_line(value: object, limit: int = 200) -> str:
    text = " ".join(str(value).split())
    return text if len(text) <= limit else text[: limit - 1] + "…"
