"""RemoteEngine against the SSE replay server: a real HTTP server on 127.0.0.1 playing recorded
llama-cpp-python streams and scripted failures. Fast; the real-server tests are in
test_llama_cpp_server.py."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from collections.abc import Callable

import pytest

from qwen_tui.config import Config, RemoteConfig
from qwen_tui.conversation import GenerationSettings, Message, Session, StopReason
from qwen_tui.engine.base import CONTINUE_NEEDS_LOCAL
from qwen_tui.engine.openai_chat import estimate_tokens
from qwen_tui.engine.remote import (
    RemoteEngine,
    find_remote,
    is_remote_name,
    load_remote,
    remote_names,
)
from qwen_tui.engine.remote_errors import RemoteError
from qwen_tui.engine.remote_transport import retry_after
from tests.remote.conftest import QUESTION, run
from tests.remote.sse_server import Answer, ReplayServer, chunk_event, read_events, token_events

EngineFor = Callable[..., RemoteEngine]

# ---------------------------------------------------------------- streaming


def test_streams_a_recorded_llama_cpp_reply(server: ReplayServer, engine: RemoteEngine) -> None:
    server.answer(Answer(read_events("llama_cpp_hello.sse")))
    outcome = run(engine)
    assert outcome.chunks == ["Hello", ",", " hello", "!"]
    stats = outcome.stats
    assert stats.stop_reason is StopReason.EOS and stats.error is None
    # llama-cpp-python sends no usage: one chunk is one token, the prompt is estimated.
    assert stats.generated_tokens == 4
    assert stats.prompt_tokens == estimate_tokens(QUESTION)
    assert stats.ttft_s is not None and 0 < stats.ttft_s < stats.total_s
    assert stats.decode_tok_s is not None and stats.decode_tok_s > 0


def test_continuing_a_reply_is_refused_in_words_without_asking_the_server(
    server: ReplayServer, engine: RemoteEngine
) -> None:
    """Chat completions has no standard prefill: a last assistant message would be answered
    as a new turn by some servers. Refused, never sent."""
    outcome = run(engine, [*QUESTION, Message("assistant", "Hello, hel")])
    assert outcome.chunks == [] and not server.chat_requests()
    assert outcome.stats.stop_reason is StopReason.ERROR
    assert outcome.stats.error == CONTINUE_NEEDS_LOCAL
    assert not engine.continues_replies


def test_sends_the_conversation_and_the_sampling_settings(
    server: ReplayServer, engine: RemoteEngine
) -> None:
    settings = GenerationSettings(
        temperature=0.3, top_p=0.9, top_k=7, repetition_penalty=1.2, max_new_tokens=33, seed=5
    )
    run(engine, settings=settings)
    (request,) = server.chat_requests()
    assert request.path == "/v1/chat/completions"
    body = request.json
    assert body["model"] == "smollm2"
    assert body["messages"] == [
        {"role": "system", "content": "You are a helpful assistant."},
        {"role": "user", "content": "Say hello."},
    ]
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert (body["max_tokens"], body["temperature"], body["top_p"], body["seed"]) == (
        33,
        0.3,
        0.9,
        5,
    )
    assert (body["top_k"], body["repetition_penalty"], body["repeat_penalty"]) == (7, 1.2, 1.2)


def test_plain_openai_fields_only_without_extended_sampling(
    server: ReplayServer, engine_for: EngineFor
) -> None:
    run(engine_for(extended_sampling=False))
    body = server.chat_requests()[0].json
    assert not {"top_k", "repetition_penalty", "repeat_penalty", "seed"} & set(body)


def test_usage_from_the_stream_gives_exact_counts(
    server: ReplayServer, engine: RemoteEngine
) -> None:
    server.answer(Answer(read_events("openai_usage.sse")))
    outcome = run(engine)
    assert outcome.text == "Café au lait ☕"
    stats = outcome.stats
    assert (stats.prompt_tokens, stats.generated_tokens, stats.reused_tokens) == (31, 5, 16)
    assert stats.stop_reason is StopReason.EOS


def test_length_finish_is_max_tokens(server: ReplayServer, engine: RemoteEngine) -> None:
    server.answer(Answer(read_events("llama_cpp_length.sse")))
    outcome = run(engine)
    assert outcome.text == "There was a time when I"
    assert outcome.stats.stop_reason is StopReason.MAX_TOKENS


def test_ttft_and_rate_come_from_the_stream(server: ReplayServer, engine: RemoteEngine) -> None:
    server.answer(Answer(token_events(["a"] * 6), between_s=0.05))
    stats = run(engine).stats
    assert stats.ttft_s is not None and stats.ttft_s >= 0.05
    # 5 tokens after the first, ~0.05 s apart (a loaded CI machine only makes it slower).
    assert stats.decode_tok_s is not None and 4 < stats.decode_tok_s < 30
    assert stats.generated_tokens == 6


def test_other_choices_and_empty_chunks_are_ignored(
    server: ReplayServer, engine: RemoteEngine
) -> None:
    events = [
        chunk_event(""),
        chunk_event("one"),
        chunk_event("other", index=1),
        ": a comment line, as servers send to keep the connection alive",
        chunk_event(" two"),
        chunk_event(finish="stop"),
        "data: [DONE]",
    ]
    server.answer(Answer(events))
    outcome = run(engine)
    assert outcome.chunks == ["one", " two"] and outcome.stats.generated_tokens == 2


# ---------------------------------------------------------------- stop


def test_stop_mid_reply_keeps_the_partial_and_closes_the_stream(
    server: ReplayServer, engine: RemoteEngine
) -> None:
    server.answer(Answer(token_events([f" w{i}" for i in range(200)]), between_s=0.05))
    cancel = threading.Event()
    stopped_at: list[float] = []

    def stop_at_third(count: int) -> None:
        if count == 3:
            cancel.set()
            stopped_at.append(time.monotonic())

    outcome = run(engine, cancel=cancel, on_chunk=stop_at_third)
    done_at = time.monotonic()
    assert outcome.text == " w0 w1 w2"
    assert outcome.stats.stop_reason is StopReason.STOPPED and outcome.stats.error is None
    assert outcome.stats.generated_tokens == 3
    assert done_at - stopped_at[0] < 0.5
    # The HTTP stream is closed: the server sees the client go within a second.
    assert server.client_gone.wait(2)
    assert server.client_gone_at is not None and server.client_gone_at - stopped_at[0] < 1.0


def test_stop_before_the_server_answers(server: ReplayServer, engine: RemoteEngine) -> None:
    # A server still loading its model sends nothing for a while; a stop must not wait for it.
    server.answer(Answer(token_events(["late"]), before_headers_s=10))
    cancel = threading.Event()
    timer = threading.Timer(0.3, cancel.set)
    timer.start()
    started = time.monotonic()
    outcome = run(engine, cancel=cancel)
    assert time.monotonic() - started < 1.3
    assert outcome.chunks == [] and outcome.stats.stop_reason is StopReason.STOPPED
    assert outcome.stats.ttft_s is None
    assert server.client_gone.wait(2)  # the request's socket was shut, not left hanging


def test_cancel_set_before_generate_stops_at_once(
    server: ReplayServer, engine: RemoteEngine
) -> None:
    cancel = threading.Event()
    cancel.set()
    outcome = run(engine, cancel=cancel)
    assert outcome.events == 1 and outcome.stats.stop_reason is StopReason.STOPPED


def test_abandoning_the_iterator_closes_the_stream(
    server: ReplayServer, engine: RemoteEngine
) -> None:
    server.answer(Answer(token_events(["x"] * 100), between_s=0.05))
    events = engine.generate(QUESTION, GenerationSettings())
    next(events)
    events.close()  # a consumer that goes away (a closed screen) without setting cancel
    assert server.client_gone.wait(2)


def test_next_reply_after_a_stop_works(server: ReplayServer, engine: RemoteEngine) -> None:
    server.answer(
        Answer(token_events(["x"] * 100), between_s=0.05),
        Answer(read_events("llama_cpp_hello.sse")),
    )
    cancel = threading.Event()
    run(engine, cancel=cancel, on_chunk=lambda n: cancel.set())
    assert run(engine).text == "Hello, hello!"


# ---------------------------------------------------------------- failures mid-stream


def test_stream_cut_mid_reply_keeps_the_partial_and_says_so(
    server: ReplayServer, engine: RemoteEngine
) -> None:
    server.answer(Answer(read_events("llama_cpp_length.sse"), cut_after=3))  # role + 2 tokens
    outcome = run(engine)
    assert outcome.text == "There was"
    stats = outcome.stats
    assert stats.stop_reason is StopReason.ERROR
    assert stats.error is not None
    assert "remote:lab" in stats.error and server.base_url in stats.error
    assert "connection was cut after 2 tokens (the partial reply is kept)" in stats.error
    assert stats.generated_tokens == 2
    assert len(server.chat_requests()) == 1  # not retried


def test_stream_that_ends_without_finishing_is_an_error(
    server: ReplayServer, engine: RemoteEngine
) -> None:
    # llama-cpp-python's server answers 200 and an empty stream when the prompt is longer
    # than its context window (recorded): the reply must not look complete.
    server.answer(Answer([]), Answer(token_events(["Half", " a"], finish=None)))
    first = run(engine)
    assert first.stats.stop_reason is StopReason.ERROR
    assert "ended the reply without finishing it;" in (first.stats.error or "")
    second = run(engine)
    assert second.text == "Half a" and second.stats.stop_reason is StopReason.ERROR
    assert "without finishing it after 2 tokens (the partial" in (second.stats.error or "")


def test_error_event_inside_the_stream(server: ReplayServer, engine: RemoteEngine) -> None:
    events = [chunk_event("Par"), 'data: {"error": {"message": "CUDA out of memory"}}']
    server.answer(Answer(events))
    outcome = run(engine)
    assert outcome.text == "Par" and outcome.stats.stop_reason is StopReason.ERROR
    assert "reported an error after 1 token (the partial reply is kept): CUDA out of memory" in (
        outcome.stats.error or ""
    )


def test_server_quiet_longer_than_read_timeout(server: ReplayServer, engine_for: EngineFor) -> None:
    server.answer(Answer(token_events(["x"]), before_headers_s=3))
    started = time.monotonic()
    outcome = run(engine_for(read_timeout=0.3))
    assert time.monotonic() - started < 2
    assert outcome.stats.stop_reason is StopReason.ERROR
    assert (outcome.stats.error or "").endswith(
        "no answer within 0.3 s (read_timeout); the server may be busy or still loading the model"
    )


def test_server_quiet_mid_reply(server: ReplayServer, engine_for: EngineFor) -> None:
    server.answer(Answer(token_events(["a", "b"]), stall_after=1, stall_s=3))
    outcome = run(engine_for(read_timeout=0.3))
    assert outcome.text == "a" and outcome.stats.stop_reason is StopReason.ERROR
    assert (outcome.stats.error or "").endswith(
        "the server went quiet for 0.3 s (read_timeout) after 1 token (the partial reply is kept)"
    )


# ---------------------------------------------------------------- HTTP errors in words


@pytest.mark.parametrize(
    ("answer", "env", "expected"),
    [
        (
            Answer(status=401, body=b'{"detail": "Invalid API key"}'),
            None,
            "the server wants an API key (401 Unauthorized): Invalid API key; put it in an "
            "environment variable and name that variable in api_key_env",
        ),
        (
            Answer(status=401, body=b'{"detail": "Invalid API key"}'),
            "LAB_KEY",
            "the server refused the API key from $LAB_KEY (401 Unauthorized): Invalid API key",
        ),
        (
            Answer(status=403, error="Project does not have access to model"),
            "LAB_KEY",
            "access denied (403 Forbidden): Project does not have access to model; the key from "
            "$LAB_KEY may not use model 'smollm2'",
        ),
        (
            Answer(status=404, error="The model `smollm2` does not exist."),
            None,
            "not found (404): The model `smollm2` does not exist.; check model 'smollm2'",
        ),
        (Answer(status=500, error="boom"), None, "server error (500): boom; the server's log"),
        (Answer(status=503, body=b"overloaded"), None, "server error (503): overloaded"),
        (
            Answer(status=400, error="This model's maximum context length is 2048 tokens"),
            None,
            "the server rejected the request (400): This model's maximum context length is 2048",
        ),
    ],
)
def test_http_errors_in_words_and_not_retried(
    server: ReplayServer, engine_for: EngineFor, answer: Answer, env: str | None, expected: str
) -> None:
    server.answer(answer)
    environ = {env: "sk-test"} if env else {}
    engine = engine_for(api_key_env=env or "", environ=environ)
    outcome = run(engine)
    assert outcome.chunks == []
    assert outcome.stats.stop_reason is StopReason.ERROR
    error = outcome.stats.error or ""
    assert error.startswith(f"remote:lab ({server.base_url}): {expected}"), error
    assert "sk-test" not in (outcome.stats.error or "")
    assert len(server.chat_requests()) == 1  # no retry storm


# ---------------------------------------------------------------- 429


def test_429_is_retried_once_after_retry_after(server: ReplayServer, engine: RemoteEngine) -> None:
    server.answer(
        Answer(status=429, error="slow down", headers={"retry-after": "0.3"}),
        Answer(read_events("llama_cpp_hello.sse")),
    )
    started = time.monotonic()
    outcome = run(engine)
    assert outcome.text == "Hello, hello!" and outcome.stats.stop_reason is StopReason.EOS
    assert time.monotonic() - started >= 0.3
    assert len(server.chat_requests()) == 2


def test_429_twice_is_reported(server: ReplayServer, engine: RemoteEngine) -> None:
    server.answer(Answer(status=429, error="slow down", headers={"retry-after-ms": "100"}))
    outcome = run(engine)
    assert outcome.stats.stop_reason is StopReason.ERROR
    assert "rate limited (429 Too Many Requests): slow down" in (outcome.stats.error or "")
    assert len(server.chat_requests()) == 2


def test_429_asking_for_a_long_wait_is_not_waited_for(
    server: ReplayServer, engine: RemoteEngine
) -> None:
    server.answer(Answer(status=429, error="quota", headers={"retry-after": "3600"}))
    started = time.monotonic()
    outcome = run(engine)
    assert time.monotonic() - started < 2
    assert "the server asks to wait 3600 s" in (outcome.stats.error or "")
    assert len(server.chat_requests()) == 1


def test_stop_during_the_retry_after_wait(server: ReplayServer, engine: RemoteEngine) -> None:
    server.answer(Answer(status=429, error="busy", headers={"retry-after": "20"}))
    cancel = threading.Event()
    threading.Timer(0.3, cancel.set).start()
    started = time.monotonic()
    outcome = run(engine, cancel=cancel)
    assert time.monotonic() - started < 1.3
    assert outcome.stats.stop_reason is StopReason.STOPPED
    time.sleep(0.3)
    assert len(server.chat_requests()) == 1  # and the retry never happens


@pytest.mark.parametrize(
    ("headers", "seconds"),
    [
        ({"retry-after": "2"}, 2.0),
        ({"retry-after": "0.5"}, 0.5),
        ({"retry-after-ms": "250", "retry-after": "9"}, 0.25),
        ({"retry-after": "Wed, 21 Oct 2015 07:28:00 GMT"}, 0.0),  # in the past
        ({"retry-after": "soon"}, None),
        ({}, None),
    ],
)
def test_retry_after_header_forms(headers: dict[str, str], seconds: float | None) -> None:
    assert retry_after(headers) == seconds


# ---------------------------------------------------------------- connecting


def free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_connection_refused(engine_for: EngineFor) -> None:
    base_url = f"http://127.0.0.1:{free_port()}/v1"
    started = time.monotonic()
    outcome = run(engine_for(base_url=base_url))
    assert time.monotonic() - started < 2  # one attempt, no retry loop
    assert outcome.stats.error == (
        f"remote:lab ({base_url}): connection refused: is the server running and listening there?"
    )
    with pytest.raises(RemoteError, match="connection refused"):
        load_remote(RemoteConfig("lab", base_url, "m"), environ={})


def test_connection_reset_before_an_answer_is_not_retried(
    server: ReplayServer, engine: RemoteEngine
) -> None:
    server.answer(Answer(reset=True))
    outcome = run(engine)
    assert outcome.stats.stop_reason is StopReason.ERROR
    assert "the server closed the connection without answering ([Errno 104] Connection reset" in (
        outcome.stats.error or ""
    )
    assert len(server.chat_requests()) == 1


def test_unknown_host(engine_for: EngineFor) -> None:
    outcome = run(engine_for(base_url="http://no-such-host.invalid/v1"))
    assert "cannot find host 'no-such-host.invalid' (DNS" in (outcome.stats.error or "")


def test_https_to_a_plain_http_server(server: ReplayServer, engine_for: EngineFor) -> None:
    base_url = server.base_url.replace("http://", "https://")
    outcome = run(engine_for(base_url=base_url))
    assert "TLS failed" in (outcome.stats.error or "")
    assert "speaks plain http://" in (outcome.stats.error or "")


def test_connect_timeout_is_reported(engine_for: EngineFor) -> None:
    # A listening socket whose backlog is full does not accept: connect() hangs.
    import socket

    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        fillers = []
        for _ in range(8):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        try:
            outcome = run(engine_for(base_url=f"http://127.0.0.1:{port}/v1", connect_timeout=0.3))
        finally:
            for filler in fillers:
                filler.close()
    assert (outcome.stats.error or "").endswith("no connection within 0.3 s (connect_timeout)")


@pytest.fixture(scope="module")
def self_signed(tmp_path_factory: pytest.TempPathFactory) -> tuple[str, str]:
    import shutil

    if shutil.which("openssl") is None:
        pytest.skip("openssl is not installed: cannot make a test certificate")
    folder = tmp_path_factory.mktemp("tls")
    cert, key = folder / "cert.pem", folder / "key.pem"
    make = (
        "openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -days 2 "
        "-subj /CN=127.0.0.1 -addext subjectAltName=IP:127.0.0.1"
    )
    command = [*make.split(), "-keyout", str(key), "-out", str(cert)]
    subprocess.run(command, check=True, capture_output=True)
    return str(cert), str(key)


def test_untrusted_certificate_then_trusted_with_ssl_cert_file(
    self_signed: tuple[str, str], monkeypatch: pytest.MonkeyPatch
) -> None:
    import ssl

    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(*self_signed)
    monkeypatch.delenv("SSL_CERT_FILE", raising=False)
    monkeypatch.delenv("SSL_CERT_DIR", raising=False)
    with ReplayServer(tls=context) as server:
        remote = RemoteConfig("lab", server.base_url, "smollm2")
        with pytest.raises(RemoteError, match="TLS certificate is not trusted") as caught:
            load_remote(remote, environ={})
        assert "SSL_CERT_FILE" in str(caught.value)
        monkeypatch.setenv("SSL_CERT_FILE", self_signed[0])
        engine = load_remote(remote, environ={})
        try:
            assert run(engine).text == "Hi"
        finally:
            engine.close()


# ---------------------------------------------------------------- keys and the model check


def test_api_key_comes_from_the_named_variable_and_nothing_else_leaks(
    engine_for: EngineFor, server: ReplayServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("OPENAI_API_KEY", "sk-not-for-this-server")
    monkeypatch.setenv("OPENAI_ORG_ID", "org-private")
    run(engine_for(api_key_env="LAB_KEY", environ={"LAB_KEY": " sk-lab \n"}))
    run(engine_for())  # no key configured
    with_key, without_key = server.chat_requests()
    assert with_key.headers["authorization"] == "Bearer sk-lab"
    assert without_key.headers["authorization"] == "Bearer no-key"
    for request in (with_key, without_key):
        assert "openai-organization" not in request.headers
        assert "openai-project" not in request.headers


def test_missing_key_variable_is_named(remote_for: Callable[..., RemoteConfig]) -> None:
    with pytest.raises(RemoteError) as caught:
        load_remote(remote_for(api_key_env="LAB_KEY"), environ={"OTHER": "x"})
    assert "the environment variable LAB_KEY is not set" in str(caught.value)


def test_check_finds_the_model(server: ReplayServer, remote_for: Callable[..., RemoteConfig]):
    engine = load_remote(remote_for(), environ={})
    engine.close()
    assert [r.path for r in server.requests] == ["/v1/models"]


def test_check_rejects_an_unknown_model(
    server: ReplayServer, remote_for: Callable[..., RemoteConfig]
) -> None:
    server.models = ["smollm2", "qwen2.5-0.5b"]
    with pytest.raises(RemoteError) as caught:
        load_remote(remote_for(model="gpt-9"), environ={})
    assert str(caught.value) == (
        f"remote:lab ({server.base_url}): the server has no model 'gpt-9'; it serves 'smollm2', "
        f"'qwen2.5-0.5b': set model in [[remotes]] of config.toml to one of them"
    )


def test_check_accepts_ollama_latest_tags(
    server: ReplayServer, remote_for: Callable[..., RemoteConfig]
) -> None:
    server.models = ["qwen2.5:latest", "qwen2.5:0.5b"]
    load_remote(remote_for(model="qwen2.5"), environ={}).close()
    load_remote(remote_for(model="qwen2.5:0.5b"), environ={}).close()
    with pytest.raises(RemoteError, match="no model 'qwen2'"):
        load_remote(remote_for(model="qwen2"), environ={})


def test_check_trusts_a_server_without_a_model_list(
    server: ReplayServer, remote_for: Callable[..., RemoteConfig]
) -> None:
    server.models_status = 404
    load_remote(remote_for(model="anything"), environ={}).close()


def test_check_reports_a_refused_key(remote_for: Callable[..., RemoteConfig]) -> None:
    with ReplayServer(api_key="right") as keyed:
        remote = remote_for(base_url=keyed.base_url, api_key_env="LAB_KEY")
        with pytest.raises(RemoteError, match=r"refused the API key from \$LAB_KEY \(401"):
            load_remote(remote, environ={"LAB_KEY": "wrong"})
        load_remote(remote, environ={"LAB_KEY": "right"}).close()


# ---------------------------------------------------------------- sessions and context


def test_a_local_session_continues_remotely(server: ReplayServer, engine: RemoteEngine) -> None:
    from qwen_tui.conversation import GenerationStats

    session = Session(system_prompt="Be brief.")
    session.add("user", "Hi")
    local = session.add("assistant", "Hello! (from the local model)")
    local.stats = GenerationStats(prompt_tokens=9, generated_tokens=6)
    session.add("user", "And now?")
    server.answer(Answer(read_events("llama_cpp_hello.sse")))
    outcome = run(engine, session.chat_messages())
    assert outcome.stats.stop_reason is StopReason.EOS
    sent = server.chat_requests()[0].json["messages"]
    assert sent == [
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": "Hi"},
        {"role": "assistant", "content": "Hello! (from the local model)"},
        {"role": "user", "content": "And now?"},
    ]


def test_oldest_turns_left_out_when_the_estimate_does_not_fit(
    server: ReplayServer, engine_for: EngineFor
) -> None:
    engine = engine_for(context_length=200)
    history = [Message("system", "sys")]
    for turn in range(6):
        history += [Message("user", f"q{turn} " + "x" * 120), Message("assistant", "y" * 120)]
    history.append(Message("user", "last question"))
    outcome = run(engine, history, GenerationSettings(max_new_tokens=50))
    sent = server.chat_requests()[0].json
    assert sent["messages"][0] == {"role": "system", "content": "sys"}
    assert sent["messages"][-1] == {"role": "user", "content": "last question"}
    kept_users = [m for m in sent["messages"] if m["role"] == "user"]
    assert outcome.stats.dropped_turns == 7 - len(kept_users) > 0
    assert sent["messages"][1]["role"] == "user"  # whole turns: never a reply without its question
    assert estimate_tokens([Message(m["role"], m["content"]) for m in sent["messages"]]) <= 150
    assert sent["max_tokens"] == 50


def test_newest_message_alone_too_long_is_sent_for_the_server_to_judge(
    server: ReplayServer, engine_for: EngineFor
) -> None:
    engine = engine_for(context_length=100)
    history = [
        Message("system", "sys"),
        Message("user", "old"),
        Message("assistant", "reply"),
        Message("user", "z" * 2000),
    ]
    outcome = run(engine, history)
    sent = server.chat_requests()[0].json["messages"]
    assert [m["content"] for m in sent] == ["sys", "z" * 2000]
    assert outcome.stats.dropped_turns == 1


def test_generate_needs_a_user_message_last(engine: RemoteEngine) -> None:
    # (one ending with an answer asks to continue it: refused in words, tested above)
    with pytest.raises(ValueError, match="ends with a user message"):
        run(engine, [Message("system", "s")])


def test_count_tokens_is_an_estimate(engine: RemoteEngine) -> None:
    messages = [Message("system", "x" * 40), Message("user", "y" * 9)]
    assert engine.count_tokens(messages) == 10 + 3 + 2 * 4 + 3


def test_model_info(engine: RemoteEngine, server: ReplayServer) -> None:
    info = engine.info
    assert (info.name, info.arch, info.low_bit, info.context_length, info.source) == (
        "remote:lab",
        "remote",
        "",
        8192,
        server.base_url,
    )


# ---------------------------------------------------------------- names


def test_names_and_lookup() -> None:
    lab = RemoteConfig("lab", "http://127.0.0.1:1/v1", "m")
    box = RemoteConfig("box", "http://127.0.0.1:2/v1", "m")
    config = Config(remotes=(lab, box))
    assert remote_names(config) == ["remote:lab", "remote:box"]
    assert is_remote_name("remote:lab") and not is_remote_name("demo")
    assert find_remote(config, "remote:box") is box and find_remote(config, "lab") is lab
    with pytest.raises(
        RemoteError,
        match=r"no remote named 'gpu' in config\.toml; known remotes: remote:lab, remote:box$",
    ):
        find_remote(config, "remote:gpu")
    with pytest.raises(RemoteError, match=r"add a \[\[remotes\]\] entry"):
        find_remote(Config(), "remote:gpu")


def test_importing_the_module_does_not_import_openai() -> None:
    code = (
        "import sys, qwen_tui.engine.remote\n"
        "assert not {'openai', 'httpx2', 'textual'} & set(sys.modules), 'eager import'\n"
    )
    subprocess.run([sys.executable, "-c", code], check=True)
