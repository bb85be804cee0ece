"""Chat with a model on an OpenAI-compatible server (llama.cpp, vLLM, Ollama, TGI), streamed.

    remote = find_remote(config, "remote:lab")    # a [[remotes]] entry of config.toml
    engine = load_remote(remote)                  # asks the server once: run it in a worker
    for event in engine.generate(messages, settings, cancel): ...

The same contract as LocalEngine: TextChunk events, then exactly one ReplyDone, also when the
user stops the reply and when something fails; failures are told in words (connection
refused, DNS, TLS, 401/403, 404, 429, 5xx, a stream cut mid-reply) and the partial text is kept.

- Stop: a reader thread does the HTTP and hands chunks over a queue; the caller's iterator
  polls it and, once `cancel` is set, shuts the request's socket down. That wakes the reader
  at once and tells the server the client is gone (llama.cpp, vLLM and Ollama then stop
  generating), even while the server has not sent its headers yet.
- No retry storm: the openai client's own retries are off. A 429 is retried once, after its
  Retry-After (bounded, cut short by a stop); nothing else is retried: the user decides.
- No tokenizer here: prompt sizes are estimated (about four characters per token), which is
  enough to leave out the oldest turns of a long session; servers that report `usage` give
  the exact counts in the stats.

The openai client is imported lazily: it costs about a second at start-up.
"""

from __future__ import annotations

import contextlib
import email.utils
import logging
import os
import queue
import socket
import ssl
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from qwen_tui.config import REMOTE_PREFIX, Config, RemoteConfig
from qwen_tui.conversation import (
    GenerationSettings,
    GenerationStats,
    Message,
    StopReason,
    well_formed,
)
from qwen_tui.engine.base import (
    EngineError,
    GenerationEvent,
    ModelInfo,
    ReplyDone,
    TextChunk,
    check_conversation,
)
from qwen_tui.engine.prompt import PromptTooLongError, fit_to_context
from qwen_tui.engine.stats import decode_rate, time_to_first_token

if TYPE_CHECKING:
    import openai

log = logging.getLogger(__name__)

_POLL_S = 0.1
"""How often the consumer looks at `cancel` while the server is quiet."""
MAX_RETRY_AFTER_S = 30.0
"""A 429 asking to wait longer than this is reported, not waited for."""
CHECK_TIMEOUT_S = 15.0
"""At most this long for the model listing load_remote asks for."""
DEFAULT_RETRY_AFTER_S = 1.0
"""The wait before the one retry of a 429 that gave no Retry-After."""
CHARS_PER_TOKEN = 4
"""The prompt-size estimate: English text averages about four characters per token."""
TOKENS_PER_MESSAGE = 4
"""Chat templates add a few tokens around each message (role, start and end markers)."""


class RemoteError(EngineError):
    """The server could not be reached or refused; the message says which and what to do."""


# ---------------------------------------------------------------- names and loading


def is_remote_name(name: str) -> bool:
    return name.startswith(REMOTE_PREFIX)


def remote_names(config: Config) -> list[str]:
    """`remote:NAME` for each [[remotes]] entry, in the file's order (for lists and switchers)."""
    return [remote.model_name for remote in config.remotes]


def find_remote(config: Config, name: str) -> RemoteConfig:
    """The [[remotes]] entry `name` (with or without the `remote:` prefix)."""
    wanted = name.removeprefix(REMOTE_PREFIX)
    for remote in config.remotes:
        if remote.name == wanted:
            return remote
    where = config.path or "config.toml"
    known = ", ".join(remote_names(config))
    hint = f"known remotes: {known}" if known else f"add a [[remotes]] entry to {where}"
    raise RemoteError(f"no remote named {wanted!r} in {where}; {hint}")


def load_remote(
    remote: RemoteConfig, *, environ: Mapping[str, str] | None = None, check: bool = True
) -> RemoteEngine:
    """An engine for `remote`. Reads the API key from the environment variable the config
    names; with `check`, asks the server for its models once, so that an unreachable server,
    a refused key or an unknown model are told now rather than at the first message."""
    engine = RemoteEngine(remote, api_key_for(remote, os.environ if environ is None else environ))
    if check:
        try:
            engine.check()
        except BaseException:
            engine.close()
            raise
    return engine


def api_key_for(remote: RemoteConfig, environ: Mapping[str, str]) -> str | None:
    if not remote.api_key_env:
        return None
    key = environ.get(remote.api_key_env, "").strip()
    if not key:
        raise RemoteError(
            f"{_where(remote)}: the environment variable {remote.api_key_env} is not set; "
            f"it should hold the API key (api_key_env in [[remotes]] of config.toml)"
        )
    return key


def remote_info(remote: RemoteConfig) -> ModelInfo:
    """What the status bar shows for a remote, known without asking the server."""
    return ModelInfo(
        name=remote.model_name,
        arch="remote",
        low_bit="",
        context_length=remote.context_length,
        source=remote.base_url,
    )


def estimate_tokens(messages: Sequence[Message]) -> int:
    """Prompt tokens `messages` would take, estimated: chars/4 plus a few per message."""
    text = sum(-(-len(m.content) // CHARS_PER_TOKEN) for m in messages)
    return text + TOKENS_PER_MESSAGE * len(messages) + 3  # + the assistant cue


class _EstimatedFormat:
    """A PromptFormat whose "ids" only have the estimated length, for fit_to_context."""

    stop_token_ids: list[int] = []  # noqa: RUF012 (the protocol's attribute, never mutated)

    def encode(self, messages: Sequence[Message]) -> list[int]:
        return [0] * estimate_tokens(messages)


# ---------------------------------------------------------------- the engine


class RemoteEngine:
    """The Engine protocol over an OpenAI-compatible chat completions endpoint."""

    def __init__(self, remote: RemoteConfig, api_key: str | None) -> None:
        self.remote = remote
        self.info = remote_info(remote)
        self._client = _make_client(remote, api_key)

    def check(self) -> None:
        """Raise RemoteError in words unless the server answers and serves our model.

        A server without a /models listing is taken at its word (the first reply will tell).
        """
        import httpx2
        import openai

        remote = self.remote
        # A listing is quick: do not hold a model switch for the whole read_timeout.
        quick = min(remote.read_timeout, CHECK_TIMEOUT_S)
        timeout = httpx2.Timeout(quick, connect=remote.connect_timeout)
        try:
            served = [model.id for model in self._client.models.list(timeout=timeout).data]
        except openai.APIStatusError as error:
            if error.status_code in (404, 405, 501):
                return
            raise RemoteError(explain(error, remote)) from None
        except openai.OpenAIError as error:
            raise RemoteError(explain(error, remote)) from None
        # Ollama lists "qwen2.5:latest" and answers to "qwen2.5" as well.
        if served and not {remote.model, f"{remote.model}:latest"} & set(served):
            listed = ", ".join(map(repr, served[:10])) + (", …" if len(served) > 10 else "")
            raise RemoteError(
                f"{_where(remote)}: the server has no model {remote.model!r}; it serves "
                f"{listed}: set model in [[remotes]] of config.toml to one of them"
            )

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """An estimate (no tokenizer for a remote model): see estimate_tokens."""
        return estimate_tokens(messages)

    def close(self) -> None:
        self._client.close()

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        check_conversation(messages)
        sent, dropped, max_tokens = self._fit(messages, settings)
        reply = _Reply(prompt_estimate=estimate_tokens(sent), dropped_turns=dropped)
        request = self._request(sent, settings, max_tokens)
        yield from self._stream(request, reply, cancel, started)

    # -------------------------------------------------------------- building the request

    def _fit(
        self, messages: Sequence[Message], settings: GenerationSettings
    ) -> tuple[list[Message], int, int]:
        """The messages to send (oldest turns left out when the estimate says they do not
        fit), how many turns were left out, and the reply budget."""
        system = list(messages[:1]) if messages[0].role == "system" else []
        body = list(messages[len(system) :])
        try:
            fitted = fit_to_context(
                messages, _EstimatedFormat(), self.info.context_length, settings.max_new_tokens
            )
        except PromptTooLongError:
            # Only an estimate: send the newest message alone and let the server judge.
            users = sum(1 for m in body[:-1] if m.role == "user")
            return [*system, body[-1]], users, settings.max_new_tokens
        users = [i for i, m in enumerate(body) if m.role == "user"]
        cut = users[fitted.dropped_turns] if fitted.dropped_turns else 0
        return [*system, *body[cut:]], fitted.dropped_turns, fitted.max_new_tokens

    def _request(
        self, messages: Sequence[Message], settings: GenerationSettings, max_tokens: int
    ) -> dict[str, Any]:
        request: dict[str, Any] = {
            "model": self.remote.model,
            "messages": [{"role": m.role, "content": m.content} for m in messages],
            "stream": True,
            # Token counts and cached prompt tokens in a last chunk, where servers support it.
            "stream_options": {"include_usage": True},
            "max_tokens": max_tokens,
            "temperature": settings.temperature,
            "top_p": settings.top_p,
        }
        if settings.seed is not None:
            request["seed"] = settings.seed
        if self.remote.extended_sampling:
            # vLLM calls it repetition_penalty, llama.cpp (and llama-cpp-python's server)
            # repeat_penalty; these servers ignore fields they do not know.
            request["extra_body"] = {
                "top_k": settings.top_k,
                "repetition_penalty": settings.repetition_penalty,
                "repeat_penalty": settings.repetition_penalty,
            }
        return request

    # -------------------------------------------------------------- streaming

    def _stream(
        self,
        request: dict[str, Any],
        reply: _Reply,
        cancel: threading.Event,
        started: float,
    ) -> Iterator[GenerationEvent]:
        connection = _Connection()
        halt = threading.Event()  # tells the reader to stop: set on cancel and on exit
        events: queue.Queue[_Item] = queue.Queue()
        reader = threading.Thread(
            target=self._read,
            args=(request, events, connection, halt),
            name="qwen-tui-remote",
            daemon=True,
        )
        reader.start()
        over = False  # the stream ended (or failed) by itself, before any stop
        try:
            while not over and not cancel.is_set():
                try:
                    item = events.get(timeout=_POLL_S)
                except queue.Empty:
                    continue
                over = item.kind != "chunk"
                if item.kind == "error":
                    reply.error = item.error
                elif item.kind == "chunk" and (text := reply.take(item.chunk, item.at)):
                    yield TextChunk(text)
        finally:
            halt.set()
            if reader.is_alive():
                connection.abort()  # wakes the reader; the server sees the client go
        yield ReplyDone(reply.stats(self.remote, stopped=not over, started=started))

    def _read(
        self,
        request: dict[str, Any],
        events: queue.Queue[_Item],
        connection: _Connection,
        halt: threading.Event,
    ) -> None:
        """In the reader thread: open the stream and queue its chunks until it ends."""
        _this_thread.connection = connection  # the request hook hands it to httpcore's trace
        try:
            stream = self._open(request, halt)
            if stream is None:
                return
            with stream:  # closes the HTTP response however the loop ends
                for chunk in stream:
                    events.put(_Item("chunk", chunk=chunk, at=time.perf_counter()))
                    if halt.is_set():
                        break
        except BaseException as error:  # reported to the consumer, never lost in the thread
            if not halt.is_set():
                log.info("remote reply failed: %r", error)
            events.put(_Item("error", error=error))
        finally:
            events.put(_Item("end"))
            _this_thread.connection = None

    def _open(self, request: dict[str, Any], halt: threading.Event) -> Any:
        """The response stream; a 429 is retried once after its Retry-After (None: stopped)."""
        import openai

        try:
            return self._client.chat.completions.create(**request)
        except openai.RateLimitError as error:
            wait = retry_after(error.response.headers)
            if wait is None:
                wait = DEFAULT_RETRY_AFTER_S
            if wait > MAX_RETRY_AFTER_S:
                raise
            log.info("429 from %s: retrying once in %.1f s", self.remote.base_url, wait)
            if halt.wait(wait):
                return None
            return self._client.chat.completions.create(**request)


@dataclass
class _Item:
    """One thing the reader thread hands to the consumer."""

    kind: str
    """"chunk", "error" or "end" (always last)."""
    chunk: Any = None
    at: float = 0.0
    error: BaseException | None = None


@dataclass
class _Reply:
    """What the stream said so far, turned into GenerationStats at the end."""

    prompt_estimate: int
    dropped_turns: int
    chunks: int = 0
    """Chunks that carried text: one token each on llama.cpp, vLLM and Ollama."""
    first_at: float | None = None
    last_at: float | None = None
    finish_reason: str | None = None
    usage: Any = None
    error: BaseException | None = None

    def take(self, chunk: Any, at: float) -> str:
        """The text of one ChatCompletionChunk; remembers timing, finish reason and usage."""
        if getattr(chunk, "usage", None) is not None:
            self.usage = chunk.usage
        text = ""
        for choice in chunk.choices or ():
            if (getattr(choice, "index", 0) or 0) != 0:  # n > 1 is never asked for
                continue
            text += (choice.delta.content if choice.delta else None) or ""
            self.finish_reason = choice.finish_reason or self.finish_reason
        # JSON may carry lone surrogates ("\ud800"): U+FFFD here, or printing and saving the
        # reply (and sending the session again) would fail on it.
        text = well_formed(text)
        if text:
            self.chunks += 1
            self.first_at = at if self.first_at is None else self.first_at
            self.last_at = at
        return text

    def stats(self, remote: RemoteConfig, stopped: bool, started: float) -> GenerationStats:
        reason, error = self._outcome(remote, stopped)
        generated, prompt, cached = self._counts()
        first, last = self.first_at, self.last_at
        return GenerationStats(
            prompt_tokens=prompt,
            generated_tokens=generated,
            ttft_s=time_to_first_token(started, first),
            decode_tok_s=decode_rate(generated, first, last),
            total_s=time.perf_counter() - started,
            stop_reason=reason,
            dropped_turns=self.dropped_turns,
            reused_tokens=cached,
            error=error,
        )

    def _outcome(self, remote: RemoteConfig, stopped: bool) -> tuple[StopReason, str | None]:
        if stopped:
            return StopReason.STOPPED, None
        if self.error is not None:
            return StopReason.ERROR, explain(self.error, remote, received=self.chunks)
        if self.finish_reason == "length":
            return StopReason.MAX_TOKENS, None
        if self.finish_reason is None:
            # The HTTP stream ended cleanly but the model never finished: llama-cpp-python's
            # server does this when the prompt exceeds its context window.
            return StopReason.ERROR, (
                f"{_where(remote)}: the server ended the reply without finishing it"
                f"{_after(self.chunks)}; its log may say why (a prompt longer than its "
                f"context window, for one)"
            )
        return StopReason.EOS, None

    def _counts(self) -> tuple[int, int, int]:
        """(generated, prompt, cached prompt) tokens: the server's usage when it sent one."""
        usage = self.usage
        if usage is None:
            return self.chunks, self.prompt_estimate, 0
        details = getattr(usage, "prompt_tokens_details", None)
        cached = getattr(details, "cached_tokens", None) or 0
        return usage.completion_tokens or 0, usage.prompt_tokens or 0, cached


# ---------------------------------------------------------------- the HTTP client


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


def _make_client(remote: RemoteConfig, api_key: str | None) -> openai.OpenAI:
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
        max_retries=0,  # no hidden retry storm: _open retries a 429 once, nothing else
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


# ---------------------------------------------------------------- errors in words


def explain(error: BaseException, remote: RemoteConfig, *, received: int = 0) -> str:
    """One sentence for the user: what went wrong with `remote` and what to do about it."""
    import openai

    where = _where(remote)
    if isinstance(error, openai.APIStatusError):
        return f"{where}: {_status_words(error, remote)}"
    if isinstance(error, openai.APITimeoutError):
        return f"{where}: {_timeout_words(error, remote, received)}"
    if isinstance(error, openai.APIConnectionError):
        return f"{where}: {_connection_words(error, remote, received)}"
    if isinstance(error, openai.APIError):  # an error event inside the stream
        return f"{where}: the server reported an error{_after(received)}: {_one_line(error)}"
    log.error("unexpected failure talking to %s", remote.base_url, exc_info=error)
    return f"{where}: unexpected answer{_after(received)} ({type(error).__name__}: {error})"


def _where(remote: RemoteConfig) -> str:
    return f"{remote.model_name} ({remote.base_url})"


def _after(received: int) -> str:
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
            f"the server went quiet for {remote.read_timeout:g} s (read_timeout){_after(received)}"
        )
    return (
        f"no answer within {remote.read_timeout:g} s (read_timeout); the server may be busy "
        f"or still loading the model"
    )


def _connection_words(error: BaseException, remote: RemoteConfig, received: int) -> str:
    causes = _causes(error)
    host = urlsplit(remote.base_url).hostname or remote.base_url
    if received:
        return f"the connection was cut{_after(received)}"
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
