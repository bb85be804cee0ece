"""Chat with a model on an OpenAI-compatible server (llama.cpp, vLLM, Ollama, TGI), streamed.

    remote = find_remote(config, "remote:lab")    # a [[remotes]] entry of config.toml
    engine = load_remote(remote)                  # asks the server once: run it in a worker
    for event in engine.generate(messages, settings, cancel): ...

The same contract as LocalEngine: TextChunk events, then exactly one ReplyDone, also when the
user stops the reply and when something fails; failures are told in words (connection
refused, DNS, TLS, 401/403, 404, 429, 5xx, a stream cut mid-reply) and the partial text is kept.

This module is the engine and the [[remotes]] names; the parts are beside it:
remote_transport.py (HTTP client, reader thread, stop, the one 429 retry), openai_chat.py
(request body, which turns fit, chunks to text and stats) and remote_errors.py (the words).
The openai client is imported lazily: it costs about a second at start-up.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import closing

from qwen_tui.config import REMOTE_PREFIX, Config, RemoteConfig
from qwen_tui.conversation import GenerationSettings, GenerationStats, Message, StopReason
from qwen_tui.engine.base import (
    CONTINUE_NEEDS_LOCAL,
    GenerationEvent,
    ModelInfo,
    ReplyDone,
    TextChunk,
    check_conversation,
)
from qwen_tui.engine.openai_chat import Reply, chat_request, estimate_tokens, fit_messages
from qwen_tui.engine.prompt import continues
from qwen_tui.engine.remote_errors import RemoteError, explain, where
from qwen_tui.engine.remote_transport import ReplyStream, make_client

CHECK_TIMEOUT_S = 15.0
"""At most this long for the model listing load_remote asks for."""


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
            f"{where(remote)}: the environment variable {remote.api_key_env} is not set; "
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


# ---------------------------------------------------------------- the engine


class RemoteEngine:
    """The Engine protocol over an OpenAI-compatible chat completions endpoint."""

    continues_replies = False
    """Chat completions has no standard assistant prefill: some servers take a last
    assistant message as one, others answer it as a new turn. Refused, not guessed."""

    def __init__(self, remote: RemoteConfig, api_key: str | None) -> None:
        self.remote = remote
        self.info = remote_info(remote)
        self._client = make_client(remote, api_key)

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
                f"{where(remote)}: the server has no model {remote.model!r}; it serves "
                f"{listed}: set model in [[remotes]] of config.toml to one of them"
            )

    def count_tokens(self, messages: Sequence[Message]) -> int:
        """An estimate (no tokenizer for a remote model): see estimate_tokens."""
        return estimate_tokens(messages)

    def close(self) -> None:
        self._client.close()

    def wait_idle(self, timeout: float) -> bool:
        # A stopped reply's reader thread is in Python or a socket call, never in a model:
        # the interpreter's exit cannot catch it inside native code that aborts.
        return True

    def generate(
        self,
        messages: Sequence[Message],
        settings: GenerationSettings,
        cancel: threading.Event | None = None,
    ) -> Iterator[GenerationEvent]:
        cancel = cancel or threading.Event()
        started = time.perf_counter()
        if continues(messages):
            stats = GenerationStats(stop_reason=StopReason.ERROR, error=CONTINUE_NEEDS_LOCAL)
            yield ReplyDone(stats)
            return
        check_conversation(messages)
        sent, dropped, max_tokens = fit_messages(messages, settings, self.info.context_length)
        reply = Reply(prompt_estimate=estimate_tokens(sent), dropped_turns=dropped)
        request = chat_request(self.remote, sent, settings, max_tokens)
        stream = ReplyStream(self._client, request, self.remote.base_url, cancel)
        with closing(iter(stream)) as items:
            for item in items:
                if item.kind == "error":
                    reply.error = item.error
                elif text := reply.take(item.chunk, item.at):
                    yield TextChunk(text)
        yield ReplyDone(reply.stats(self.remote, stopped=not stream.ended, started=started))
