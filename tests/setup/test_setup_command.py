"""`qwen-tui setup` end to end against a local hub stand-in, then chat with the result offline."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qwen_tui.model_files import list_installed
from tests.fixtures.qwen_v1_real import QWEN_V1_SKIP_REASON, qwen_v1_code_available
from tests.fixtures.qwen_v1_real import shared_tiny_qwen_v1 as real_qwen_v1
from tests.hub_server import HubServer

QWEN2_REPO = "Qwen/Qwen2.5-0.5B-Instruct"  # a catalog entry: Qwen2 architecture, no remote code
QWEN_V1_REPO = "Qwen/Qwen-1_8B-Chat"  # the default: Qwen v1, converted at setup
CUSTOM_REPO = "someone/custom-chat"  # remote code outside the catalog (the TinyQwen stand-in)


def qwen_tui(*args: str, env: dict | None = None, timeout: float = 180):
    return subprocess.run(
        [sys.executable, "-m", "qwen_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def hub_root(tmp_path: Path, tiny_checkpoint, tmp_path_factory) -> Path:
    root = tmp_path / "hub"
    shutil.copytree(tiny_checkpoint("qwen2"), root / QWEN2_REPO)
    if qwen_v1_code_available():
        shutil.copytree(real_qwen_v1(tmp_path_factory), root / QWEN_V1_REPO)
    shutil.copytree(tiny_checkpoint("remote"), root / CUSTOM_REPO)
    (root / QWEN2_REPO / "model.gguf").write_bytes(b"GGUF" + b"\0" * 1000)  # never fetched
    return root


@pytest.fixture
def hub(hub_root: Path):
    with HubServer(hub_root) as server:
        yield server


def test_setup_downloads_quantizes_and_the_model_chats_offline(hub, paths) -> None:
    result = qwen_tui("setup", QWEN2_REPO, "--endpoint", hub.url)
    assert result.returncode == 0, result.stderr
    assert "is ready" in result.stdout
    assert not hub.downloads_of("model.gguf")  # only the allow-listed files
    hub.stop()  # the hub is gone: chatting must not need it
    answer = qwen_tui(
        "ask", "--model", QWEN2_REPO, "--max-tokens", "5", "hi", env={"HF_HUB_OFFLINE": "1"}
    )
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip()
    again = qwen_tui("setup", QWEN2_REPO, "--endpoint", hub.url)
    assert again.returncode == 0 and "is ready" in again.stdout  # a no-op


@pytest.mark.skipif(not qwen_v1_code_available(), reason=QWEN_V1_SKIP_REASON)
def test_default_qwen_v1_model_via_hf_endpoint_runs_none_of_its_code(hub, paths) -> None:
    """The default catalog model, built from Qwen's real v1 code: converted, no code fetched
    or run (tests/setup/test_qwen_v1_setup.py proves trust_remote_code is never called)."""
    result = qwen_tui("setup", env={"HF_ENDPOINT": hub.url})
    assert result.returncode == 0, result.stderr
    (model,) = list_installed(paths.models_dir)
    assert model.manifest.source == QWEN_V1_REPO and not model.manifest.trust_remote_code
    assert model.manifest.arch == "Qwen2ForCausalLM" and model.manifest.chat_format == "qwen-v1"
    assert not any(r.path.endswith(".py") for r in hub.requests)
    assert not list(model.path.glob("*.py"))
    hub.stop()
    answer = qwen_tui(
        "ask", "--model", QWEN_V1_REPO, "--max-tokens", "5", "hi", env={"HF_HUB_OFFLINE": "1"}
    )
    assert answer.returncode == 0, answer.stderr


def test_remote_code_outside_the_catalog_needs_consent(hub, paths) -> None:
    refused = qwen_tui("setup", CUSTOM_REPO, "--endpoint", hub.url, "--yes")
    assert refused.returncode == 2
    assert "--trust-remote-code" in refused.stderr and "untested" in refused.stderr
    assert list_installed(paths.models_dir) == []
    assert not any(r.path.endswith(".py") for r in hub.requests)  # its code was not even fetched
    allowed = qwen_tui("setup", CUSTOM_REPO, "--endpoint", hub.url, "--yes", "--trust-remote-code")
    assert allowed.returncode == 0, allowed.stderr
    (model,) = list_installed(paths.models_dir)
    assert model.manifest.trust_remote_code  # the consent is recorded


def test_interrupted_download_resumes_on_the_next_run(hub, paths) -> None:
    hub.throttle_bps = 2_000_000  # the tiny remote model's 40 MB take ~20 s
    resumable = ["setup", CUSTOM_REPO, "--endpoint", hub.url, "--yes", "--trust-remote-code"]
    process = subprocess.Popen(
        [sys.executable, "-m", "qwen_tui", *resumable],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=os.environ.copy(),
    )
    deadline = time.monotonic() + 60
    while not hub.downloads_of("model.safetensors") and time.monotonic() < deadline:
        time.sleep(0.2)
    time.sleep(2)  # a few MB of the weights arrive
    process.send_signal(signal.SIGINT)
    _out, err = process.communicate(timeout=60)
    assert process.returncode == 130, err
    assert "again to resume" in err
    hub.throttle_bps = None
    fetched_before = {r.path for r in hub.requests if r.method == "GET" and "resolve" in r.path}
    hub.requests.clear()
    result = qwen_tui(*resumable)
    assert result.returncode == 0, result.stderr
    resumed = hub.downloads_of("model.safetensors")
    assert resumed and resumed[-1].range and not resumed[-1].range.startswith("bytes=0-")
    # Files finished in the first run were not downloaded again.
    finished = [p for p in fetched_before if p.endswith("config.json")]
    assert finished and not any(hub.downloads_of("config.json"))


def test_errors_are_sentences_with_exit_status_4(hub, paths) -> None:
    missing = qwen_tui("setup", "Qwen/does-not-exist", "--endpoint", hub.url, "--yes")
    assert missing.returncode == 4 and "not found" in missing.stderr.lower()
    hub.stop()
    unreachable = qwen_tui("setup", QWEN2_REPO, "--endpoint", hub.url)
    assert unreachable.returncode == 4
    assert "HF_ENDPOINT" in unreachable.stderr and "Traceback" not in unreachable.stderr


def test_a_killed_quantize_never_leaves_a_usable_looking_model(paths, tiny_checkpoint) -> None:
    for delay in (0.5, 2.0, 3.5, 5.0):
        process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "qwen_tui",
                "import",
                str(tiny_checkpoint("qwen2")),
                "--name",
                "victim",
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            env=os.environ.copy(),
        )
        time.sleep(delay)
        process.kill()
        process.wait()
        for model in list_installed(paths.models_dir):
            # Whatever is listed is complete: the manifest is written last, then renamed in.
            assert (model.path / "pytorch_model.bin").is_file()
            assert (model.path / "tokenizer_config.json").is_file()
    result = qwen_tui("import", str(tiny_checkpoint("qwen2")), "--name", "victim")
    assert result.returncode == 0, result.stderr  # a leftover staging folder is no obstacle
    assert [m.name for m in list_installed(paths.models_dir)] == ["victim"]
