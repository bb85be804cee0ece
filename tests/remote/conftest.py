"""Fixtures for the remote engine: the SSE replay server and engines pointed at it."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass

import pytest

from qwen_tui.config import RemoteConfig
from qwen_tui.conversation import GenerationSettings, GenerationStats, Message
from qwen_tui.engine.base import Engine, ReplyDone, TextChunk
from qwen_tui.engine.remote import RemoteEngine, load_remote
from tests.remote.sse_server import ReplayServer

QUESTION = [Message("system", "You are a helpful assistant."), Message("user", "Say hello.")]


@dataclass
class Outcome:
    chunks: list[str]
    stats: GenerationStats
    events: int

    @property
    def text(self) -> str:
        return "".join(self.chunks)


def run(
    engine: Engine,
    messages: Sequence[Message] = QUESTION,
    settings: GenerationSettings | None = None,
    cancel: threading.Event | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> Outcome:
    """Drain generate(), checking the protocol: text chunks, then exactly one ReplyDone."""
    chunks: list[str] = []
    done: list[GenerationStats] = []
    events = 0
    for event in engine.generate(messages, settings or GenerationSettings(), cancel):
        events += 1
        assert not done, "an event after ReplyDone"
        if isinstance(event, TextChunk):
            chunks.append(event.text)
            if on_chunk:
                on_chunk(len(chunks))
        else:
            assert isinstance(event, ReplyDone)
            done.append(event.stats)
    assert len(done) == 1, "ReplyDone must end every reply"
    return Outcome(chunks, done[0], events)


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    with ReplayServer() as replay:
        yield replay


@pytest.fixture
def remote_for(server: ReplayServer) -> Callable[..., RemoteConfig]:
    def make(**changes: object) -> RemoteConfig:
        values: dict[str, object] = {"name": "lab", "base_url": server.base_url, "model": "smollm2"}
        return RemoteConfig(**(values | changes))  # type: ignore[arg-type]

    return make


@pytest.fixture
def engine_for(remote_for: Callable[..., RemoteConfig]) -> Iterator[Callable[..., RemoteEngine]]:
    made: list[RemoteEngine] = []

    def make(environ: dict[str, str] | None = None, **changes: object) -> RemoteEngine:
        engine = load_remote(remote_for(**changes), environ=environ or {}, check=False)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.close()


@pytest.fixture
def engine(engine_for: Callable[..., RemoteEngine]) -> RemoteEngine:
    return engine_for()
