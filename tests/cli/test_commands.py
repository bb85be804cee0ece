"""`qwen-tui ask|models|sessions|import|rm|doctor` as a user runs them: real processes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from qwen_tui.store import SessionStore


def qwen_tui(
    *args: str, stdin: str | None = None, timeout: float = 120
) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qwen_tui", *args],
        input=stdin,
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
    )


@pytest.fixture
def tiny_home(paths, tiny_quantized, install_into_home):
    install_into_home(tiny_quantized("qwen2"))
    return paths


def only_session(paths):
    summaries = SessionStore(paths.sessions_dir).list()
    assert len(summaries) == 1
    return SessionStore(paths.sessions_dir).load(summaries[0].id)


def test_ask_streams_the_answer_and_saves_the_session(tiny_home) -> None:
    result = qwen_tui(
        "ask",
        "--model",
        "tiny-qwen2",
        "--temperature",
        "0",
        "--max-tokens",
        "8",
        "--stats",
        "Hello there",
    )
    assert result.returncode == 0, result.stderr
    assert "tok/s" in result.stderr and "8 generated tokens" in result.stderr
    session = only_session(tiny_home)
    user, reply = session.messages
    assert (user.role, user.content) == ("user", "Hello there")
    assert reply.role == "assistant" and not reply.incomplete
    assert result.stdout == reply.content + "\n"
    assert reply.stats.generated_tokens == 8
    assert session.model == "tiny-qwen2"


def test_ask_reads_stdin_and_continues_a_session(tiny_home) -> None:
    first = qwen_tui(
        "ask",
        "--model",
        "tiny-qwen2",
        "--new-session",
        "--max-tokens",
        "4",
        "--system",
        "You are terse.",
        stdin="What is two plus two?\n",
    )
    assert first.returncode == 0, first.stderr
    session_id = only_session(tiny_home).id
    assert f"--session {session_id}" in first.stderr
    second = qwen_tui(
        "ask",
        "--model",
        "tiny-qwen2",
        "--session",
        session_id,
        "--stats",
        "--max-tokens",
        "4",
        "And three?",
    )
    assert second.returncode == 0, second.stderr
    session = only_session(tiny_home)
    assert [m.content for m in session.messages if m.role == "user"] == [
        "What is two plus two?",
        "And three?",
    ]
    assert session.system_prompt == "You are terse."
    # The second prompt carried the whole history: more prompt tokens than the first.
    first_reply, second_reply = session.messages[1], session.messages[3]
    assert second_reply.stats.prompt_tokens > first_reply.stats.prompt_tokens + 4


def test_ctrl_c_keeps_the_partial_answer(tiny_home) -> None:
    process = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "qwen_tui",
            "ask",
            "--model",
            "tiny-qwen2",
            "--temperature",
            "0",
            "--max-tokens",
            "1500",
            "Write a very long story.",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        env=os.environ.copy(),
    )
    first = process.stdout.read1(1)  # blocks until the reply starts streaming
    assert first
    process.send_signal(signal.SIGINT)
    rest, err = process.communicate(timeout=30)
    assert process.returncode == 130, err
    reply = only_session(tiny_home).messages[-1]
    assert reply.stopped and not reply.incomplete
    assert 0 < reply.stats.generated_tokens < 1500
    printed = (first + rest).decode()
    assert printed.startswith(reply.content[:1]) and printed.rstrip("\n") == reply.content


def test_missing_model_says_how_to_get_one(paths) -> None:
    result = qwen_tui("ask", "--model", "nope", "hi")
    assert result.returncode == 3
    assert "qwen-tui setup" in result.stderr and "Traceback" not in result.stderr
    # The question was not lost: nothing was sent, nothing half-saved.
    assert SessionStore(paths.sessions_dir).list() == []


def test_bad_config_names_file_line_and_key(paths) -> None:
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text("[generation]\ntemperature = 'hot'\n")
    result = qwen_tui("ask", "hi")
    assert result.returncode == 2
    assert "config.toml:2" in result.stderr and "temperature" in result.stderr
    assert "Traceback" not in result.stderr


def test_sessions_lists_good_files_and_reports_corrupt_ones(tiny_home) -> None:
    assert qwen_tui("ask", "--model", "tiny-qwen2", "--max-tokens", "2", "hi").returncode == 0
    broken = tiny_home.sessions_dir / "20200101-000000-abcdef.json"
    broken.write_text("{not json")
    result = qwen_tui("sessions")
    assert result.returncode == 0
    assert "hi" in result.stdout and "abcdef" not in result.stdout
    assert "abcdef" in result.stderr  # reported, with where it was moved
    assert not broken.exists() and list(tiny_home.sessions_dir.glob("*abcdef*"))


def test_sessions_marks_a_fork_with_the_session_it_came_from(paths) -> None:
    from qwen_tui.conversation import Message, Session
    from qwen_tui.conversation_tree import fork
    from qwen_tui.store import SessionStore

    store = SessionStore(paths.sessions_dir)
    original = Session(title="Plans for Friday")
    original.messages = [Message("user", "what now"), Message("assistant", "lunch")]
    store.save(original)
    copy = fork(original, original.messages[0], Session())
    store.save(copy)
    result = qwen_tui("sessions")
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines()}
    # Same title twice: only the mark says which one is the fork, and of what.
    assert lines[copy.id].endswith(f"Plans for Friday  [fork of {original.id}]")
    assert lines[original.id].endswith("Plans for Friday")


def test_damaged_model_is_reported_not_a_traceback(paths, tiny_quantized) -> None:
    import shutil

    source = tiny_quantized("qwen2").path
    target = paths.models_dir / "broken"
    shutil.copytree(source, target)
    manifest = json.loads((target / "qwen-tui-model.json").read_text())
    manifest["name"] = "broken"
    (target / "qwen-tui-model.json").write_text(json.dumps(manifest))
    weights = target / "pytorch_model.bin"
    weights.write_bytes(weights.read_bytes()[: weights.stat().st_size // 2])
    result = qwen_tui("ask", "--model", "broken", "hi")
    assert result.returncode == 3
    assert "damaged" in result.stderr and "setup again" in result.stderr
    assert "Traceback" not in result.stderr
    weights.unlink()
    result = qwen_tui("ask", "--model", "broken", "hi")
    assert result.returncode == 3 and "missing pytorch_model.bin" in result.stderr


def test_import_models_rm(paths, tiny_checkpoint) -> None:
    imported = qwen_tui("import", str(tiny_checkpoint("llama")), "--name", "mine")
    assert imported.returncode == 0, imported.stderr
    listed = qwen_tui("models")
    assert listed.stdout.startswith("mine ") and "sym_int4" in listed.stdout
    answered = qwen_tui("ask", "--model", "mine", "--max-tokens", "3", "hi")
    assert answered.returncode == 0, answered.stderr
    assert qwen_tui("rm", "mine").returncode == 0
    assert not (paths.models_dir / "mine").exists()


def test_import_refuses_remote_code_without_consent(paths, tiny_checkpoint) -> None:
    refused = qwen_tui("import", str(tiny_checkpoint("remote")))
    assert refused.returncode == 3 and "--trust-remote-code" in refused.stderr
    assert not list(paths.models_dir.glob("*")) if paths.models_dir.exists() else True
    allowed = qwen_tui(
        "import", str(tiny_checkpoint("remote")), "--trust-remote-code", "--name", "remote"
    )
    assert allowed.returncode == 0, allowed.stderr
    manifest = json.loads((paths.models_dir / "remote" / "qwen-tui-model.json").read_text())
    assert manifest["trust_remote_code"] is True  # the consent is recorded


def test_doctor_reports_cpu_kernel_and_paths(paths) -> None:
    result = qwen_tui("doctor")
    assert result.returncode == 0, result.stderr
    for needle in (
        "bigdl-llm",
        "isa:",
        "bigdl kernel loaded:",
        str(paths.sessions_dir),
        "hub endpoint:",
    ):
        assert needle in result.stdout
    assert "bigdl kernel loaded: none" not in result.stdout


@pytest.mark.slow
def test_demo_model_answers_paris(demo_home, monkeypatch) -> None:
    monkeypatch.setenv("QWEN_TUI_HOME", str(demo_home))
    started = time.perf_counter()
    result = qwen_tui(
        "ask",
        "--model",
        "demo",
        "--temperature",
        "0",
        "--stats",
        stdin="What is the capital of France?",
    )
    assert result.returncode == 0, result.stderr
    assert "Paris" in result.stdout
    print(f"demo answer in {time.perf_counter() - started:.1f} s: {result.stderr.strip()}")


def test_ask_uses_a_preset_and_the_saved_defaults(tiny_home) -> None:
    from qwen_tui.conversation import GenerationSettings
    from qwen_tui.store.presets import Preset, save_defaults, save_preset

    terse = GenerationSettings(temperature=0.0, max_new_tokens=3, top_k=4)
    save_preset(tiny_home.presets_file, Preset("Terse", "One line only.", terse))
    save_defaults(tiny_home.presets_file, "Saved default.", GenerationSettings(max_new_tokens=2))
    used = qwen_tui("ask", "--model", "tiny-qwen2", "--preset", "Terse", "Hi")
    assert used.returncode == 0, used.stderr
    session = only_session(tiny_home)
    assert (session.system_prompt, session.settings) == ("One line only.", terse)
    assert session.messages[-1].stats.generated_tokens <= 3  # the preset's max_new_tokens

    SessionStore(tiny_home.sessions_dir).delete(session.id)
    plain = qwen_tui("ask", "--model", "tiny-qwen2", "Hi")
    assert plain.returncode == 0, plain.stderr
    session = only_session(tiny_home)
    assert session.system_prompt == "Saved default." and session.settings.max_new_tokens == 2
    assert session.messages[-1].stats.generated_tokens <= 2


def test_ask_with_an_unknown_preset_exits_2_naming_the_saved_ones(tiny_home) -> None:
    from qwen_tui.conversation import GenerationSettings
    from qwen_tui.store.presets import Preset, save_preset

    save_preset(tiny_home.presets_file, Preset("Terse", "x", GenerationSettings()))
    result = qwen_tui("ask", "--model", "tiny-qwen2", "--preset", "Poet", "Hi")
    assert result.returncode == 2
    assert "no preset 'Poet'; saved presets: 'Terse'" in result.stderr
    assert SessionStore(tiny_home.sessions_dir).list() == []  # nothing was started
