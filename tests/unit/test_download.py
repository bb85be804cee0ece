"""Model download against a real local HTTP server that speaks the hub's protocol.

The server (tests/hub_server.py) runs on 127.0.0.1 and nothing in huggingface_hub is patched:
it lists, HEADs and GETs over real sockets. A guard on name lookups fails any test that tries to
reach another host (huggingface.co, telemetry).
"""

from __future__ import annotations

import random
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from qwen_tui.model_setup.download import DownloadResult, download_model
from qwen_tui.model_setup.download_errors import DownloadError
from qwen_tui.model_setup.download_progress import DownloadProgress
from qwen_tui.model_setup.hub_listing import check_disk_space, list_model_files
from qwen_tui.model_setup.hub_settings import DEFAULT_ENDPOINT, resolve_endpoint, resolve_token
from tests.hub_server import HubServer, RecordedRequest

REPO = "org/tiny-chat"
SHARD1 = "model-00001-of-00002.safetensors"
SHARD2 = "model-00002-of-00002.safetensors"
ALLOW = ("*.json", "model*.safetensors", "pytorch_model*.bin")
MB = 1024 * 1024
ROOT = Path(__file__).parents[2]


def _write_repo(root: Path, repo_id: str, sizes: dict[str, int]) -> dict[str, bytes]:
    rng = random.Random(repo_id)
    folder = root / repo_id
    folder.mkdir(parents=True)
    files = {}
    for name, size in sizes.items():
        files[name] = rng.randbytes(size)
        (folder / name).write_bytes(files[name])
    return files


@pytest.fixture
def repo_files(tmp_path: Path) -> dict[str, bytes]:
    return _write_repo(
        tmp_path / "hub",
        REPO,
        {
            "config.json": 300,
            "tokenizer_config.json": 200,
            SHARD1: 3 * MB,
            SHARD2: 2 * MB,
            "pytorch_model.bin": MB,  # the same weights again: skipped, safetensors are there
            "tiny-chat.Q4_0.gguf": MB,  # another format: not in the allow-patterns
        },
    )


@pytest.fixture
def hub(tmp_path: Path, repo_files: dict[str, bytes]) -> Iterator[HubServer]:
    with HubServer(tmp_path / "hub") as server:
        yield server


@pytest.fixture
def dest(tmp_path: Path) -> Path:
    return tmp_path / "downloads" / "tiny-chat"


@pytest.fixture(autouse=True)
def only_local_network(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Fail on any lookup of a host other than the stand-in (huggingface.co, telemetry...)."""
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    hosts: list[str] = []
    real = socket.getaddrinfo

    def guarded(host: str, *args: Any, **kwargs: Any) -> Any:
        hosts.append(host)
        return real(host, *args, **kwargs)

    monkeypatch.setattr(socket, "getaddrinfo", guarded)
    yield hosts
    assert set(hosts) <= {"127.0.0.1"}, hosts


def _download(hub: HubServer, dest: Path, **kwargs: Any) -> DownloadResult:
    kwargs.setdefault("allow_patterns", ALLOW)
    kwargs.setdefault("retry_wait_s", 0.05)
    return download_model(REPO, dest, endpoint=hub.url, **kwargs)


def _assert_same(dest: Path, repo_files: dict[str, bytes], *names: str) -> None:
    for name in names:
        assert (dest / name).read_bytes() == repo_files[name], name


def _range_start(request: RecordedRequest) -> int:
    match = re.fullmatch(r"bytes=(\d+)-", request.range or "")
    assert match, request.range
    return int(match.group(1))


def test_full_download_reports_progress_and_fetches_only_the_allowed_files(
    hub: HubServer, dest: Path, repo_files: dict[str, bytes]
) -> None:
    hub.throttle_bps = 20 * MB  # about 0.25 s: room for several progress events
    events: list[DownloadProgress] = []
    result = _download(hub, dest, progress=events.append)

    wanted = ("config.json", SHARD1, SHARD2, "tokenizer_config.json")
    assert result.files == wanted
    assert result.revision and len(result.revision) == 40
    _assert_same(dest, repo_files, *wanted)
    assert not (dest / "tiny-chat.Q4_0.gguf").exists()
    assert not (dest / "pytorch_model.bin").exists()
    assert not hub.downloads_of("tiny-chat.Q4_0.gguf") and not hub.downloads_of("pytorch_model.bin")

    total = sum(len(repo_files[n]) for n in wanted)
    assert result.fetched_bytes == total
    assert {e.total_bytes for e in events} == {total}
    done = [e.done_bytes for e in events]
    assert done == sorted(done) and done[-1] == total
    assert events[-1].files_done == events[-1].files_total == 4
    assert any(0 < e.file_bytes < e.file_total for e in events if e.filename == SHARD1)
    assert any(e.bytes_per_s > 0 and e.eta_s is not None for e in events)


def test_second_run_fetches_nothing(hub: HubServer, dest: Path) -> None:
    _download(hub, dest)
    hub.requests.clear()

    result = _download(hub, dest)

    assert result.fetched_bytes == 0
    assert [r.path.split("?")[0] for r in hub.requests] == [f"/api/models/{REPO}"]


@pytest.mark.parametrize("reset", [False, True], ids=["closed", "reset"])
def test_dropped_connection_is_resumed_within_the_same_call(
    hub: HubServer, dest: Path, repo_files: dict[str, bytes], reset: bool
) -> None:
    hub.drop_after[SHARD1] = 1_000_000
    hub.drop_with_reset = reset

    _download(hub, dest, retries=2)

    first, second = hub.downloads_of(SHARD1)
    assert first.range is None
    assert 0 < _range_start(second) <= 1_000_000
    _assert_same(dest, repo_files, SHARD1, SHARD2)


def test_drop_without_retries_says_rerun_resumes_and_the_rerun_does(
    hub: HubServer, dest: Path, repo_files: dict[str, bytes]
) -> None:
    hub.drop_after[SHARD2] = 1_500_000
    with pytest.raises(DownloadError) as caught:
        _download(hub, dest, retries=0)
    assert caught.value.kind == "interrupted"
    assert SHARD2 in str(caught.value) and "resumes" in str(caught.value)
    assert (dest / SHARD1).exists() and not (dest / SHARD2).exists()
    hub.requests.clear()

    _download(hub, dest, retries=0)

    assert hub.downloads_of(SHARD1) == [] and hub.downloads_of("config.json") == []
    (resumed,) = hub.downloads_of(SHARD2)
    assert 0 < _range_start(resumed) <= 1_500_000
    _assert_same(dest, repo_files, SHARD1, SHARD2)


def test_xet_backed_files_use_plain_http_so_they_resume(
    hub: HubServer, dest: Path, repo_files: dict[str, bytes]
) -> None:
    hub.xet_headers = True  # hf_xet would ask the stand-in for a xet token, which it cannot give
    hub.drop_after[SHARD1] = 1_000_000

    _download(hub, dest, retries=1)

    assert not [r for r in hub.requests if "xet" in r.path]
    assert _range_start(hub.downloads_of(SHARD1)[1]) > 0
    _assert_same(dest, repo_files, SHARD1, SHARD2)


def test_a_partial_file_that_does_not_match_its_checksum_is_fetched_again(
    hub: HubServer, dest: Path, repo_files: dict[str, bytes]
) -> None:
    hub.drop_after[SHARD1] = 1_000_000
    with pytest.raises(DownloadError):
        _download(hub, dest, retries=0)
    (partial,) = (dest / ".cache").rglob("*.incomplete")
    partial.write_bytes(b"\0" * partial.stat().st_size)  # e.g. a disk error, or a bad proxy
    hub.requests.clear()

    _download(hub, dest, retries=1)

    resumed, fresh = hub.downloads_of(SHARD1)
    assert resumed.range is not None and fresh.range is None
    _assert_same(dest, repo_files, SHARD1)


def test_a_killed_download_resumes_on_the_next_run(
    hub: HubServer, dest: Path, repo_files: dict[str, bytes]
) -> None:
    hub.throttle_bps = 2 * MB
    code = (
        "import sys; from pathlib import Path; from qwen_tui.model_setup.download import "
        "download_model; download_model(sys.argv[1], Path(sys.argv[2]), endpoint=sys.argv[3], "
        f"allow_patterns={list(ALLOW)!r})"
    )
    child = subprocess.Popen([sys.executable, "-c", code, REPO, str(dest), hub.url], cwd=ROOT)
    partials = dest / ".cache" / "huggingface" / "download"
    deadline = time.monotonic() + 20
    while sum(p.stat().st_size for p in partials.rglob("*.incomplete")) < 500_000:
        assert time.monotonic() < deadline and child.poll() is None
        time.sleep(0.05)
    child.kill()
    child.wait(10)
    hub.throttle_bps = None
    hub.requests.clear()

    _download(hub, dest)

    (resumed,) = hub.downloads_of(SHARD1)
    assert _range_start(resumed) >= 500_000
    _assert_same(dest, repo_files, SHARD1, SHARD2)


def test_missing_repo_is_not_found(hub: HubServer, dest: Path) -> None:
    with pytest.raises(DownloadError) as caught:
        download_model("org/no-such-model", dest, endpoint=hub.url)
    assert caught.value.kind == "not_found"
    assert "org/no-such-model" in str(caught.value)


def test_gated_repo_needs_the_right_token(
    hub: HubServer, dest: Path, repo_files: dict[str, bytes]
) -> None:
    hub.gated[REPO] = "hf_right"
    with pytest.raises(DownloadError) as caught:
        _download(hub, dest)
    assert caught.value.kind == "unauthorized"
    assert "HF_TOKEN" in str(caught.value)

    with pytest.raises(DownloadError) as caught:
        _download(hub, dest, token="hf_wrong")
    assert caught.value.kind == "unauthorized" and "refused the token" in str(caught.value)

    _download(hub, dest, token="hf_right")
    _assert_same(dest, repo_files, SHARD1, SHARD2)
    assert all(
        r.headers.get("authorization") == "Bearer hf_right" for r in hub.downloads_of(SHARD1)
    )


def test_unreachable_endpoint_fails_fast_and_mentions_mirrors(dest: Path) -> None:
    with socket.socket() as s:  # a port nobody listens on
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    started = time.monotonic()
    with pytest.raises(DownloadError) as caught:
        download_model(REPO, dest, endpoint=f"http://127.0.0.1:{port}")
    assert time.monotonic() - started < 10
    assert caught.value.kind == "unreachable"
    assert "HF_ENDPOINT" in str(caught.value) and "mirror" in str(caught.value)


def test_cancel_mid_file_stops_quickly_and_the_next_run_resumes(
    hub: HubServer, dest: Path, repo_files: dict[str, bytes]
) -> None:
    hub.throttle_bps = 2 * MB
    cancel = threading.Event()
    failure: list[DownloadError] = []

    def on_progress(p: DownloadProgress) -> None:
        if p.filename == SHARD1 and p.file_bytes > 500_000:
            cancel.set()

    def run() -> None:
        try:
            _download(hub, dest, progress=on_progress, cancel=cancel)
        except DownloadError as exc:
            failure.append(exc)

    worker = threading.Thread(target=run)
    worker.start()
    assert cancel.wait(10)
    cancelled_at = time.monotonic()
    worker.join(10)
    assert time.monotonic() - cancelled_at < 1.5
    assert [f.kind for f in failure] == ["cancelled"]
    assert "resumes" in str(failure[0])
    hub.throttle_bps = None
    hub.requests.clear()

    _download(hub, dest)

    (resumed,) = hub.downloads_of(SHARD1)
    assert _range_start(resumed) > 500_000
    _assert_same(dest, repo_files, SHARD1, SHARD2)


def test_disk_space_check_gives_the_numbers(tmp_path: Path) -> None:
    check_disk_space(tmp_path / "not" / "created" / "yet", 1)  # walks up to an existing folder
    free = shutil.disk_usage(tmp_path).free
    with pytest.raises(DownloadError) as caught:
        check_disk_space(tmp_path, free + 10**12)
    assert caught.value.kind == "disk_full"
    assert re.search(r"need [\d.]+ GB, only [\d.]+ GB is free", str(caught.value))


def test_download_stops_before_fetching_when_the_disk_is_too_small(
    hub: HubServer, dest: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    real = shutil.disk_usage
    monkeypatch.setattr(shutil, "disk_usage", lambda p: real(p)._replace(free=4 * MB))
    with pytest.raises(DownloadError) as caught:
        _download(hub, dest, extra_bytes_needed=2 * MB)  # 5 MB of files + 2 MB > 4 MB free
    assert caught.value.kind == "disk_full"
    assert not [r for r in hub.requests if "/resolve/" in r.path]


def test_listing_gives_sizes_up_front(hub: HubServer, repo_files: dict[str, bytes]) -> None:
    listing = list_model_files(REPO, endpoint=hub.url, allow_patterns=["model*.safetensors"])
    assert [(f.name, f.size) for f in listing.files] == [(SHARD1, 3 * MB), (SHARD2, 2 * MB)]
    assert listing.total_bytes == 5 * MB
    assert all(f.sha256 for f in listing.files)


def test_endpoint_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_endpoint(None, "") == DEFAULT_ENDPOINT
    assert resolve_endpoint(None, "https://cfg.example/") == "https://cfg.example"
    assert resolve_endpoint(None, "hf-mirror.com") == "https://hf-mirror.com"
    monkeypatch.setenv("HF_ENDPOINT", "https://env.example")
    assert resolve_endpoint(None, "https://cfg.example") == "https://env.example"
    assert resolve_endpoint("http://127.0.0.1:9", "https://cfg.example") == "http://127.0.0.1:9"


def test_token_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    assert resolve_token("") is None
    assert resolve_token(" hf_cfg ") == "hf_cfg"
    monkeypatch.setenv("HF_TOKEN", "hf_env")
    assert resolve_token("hf_cfg") == "hf_env"


def test_hf_transfer_fetches_big_files(tmp_path: Path, dest: Path) -> None:
    """hf_transfer (Rust) holds the GIL while it waits, so the server runs in its own process."""
    pytest.importorskip("hf_transfer")
    files = _write_repo(tmp_path / "hub", REPO, {"config.json": 100, SHARD1: 52 * MB})
    server = subprocess.Popen(
        [
            sys.executable,
            "tests/hub_server.py",
            "--root",
            str(tmp_path / "hub"),
            "--port",
            "0",
            "--log",
        ],
        cwd=ROOT,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert server.stdout is not None
        url = re.search(r"at (http://\S+)", server.stdout.readline()).group(1)  # type: ignore[union-attr]
        events: list[DownloadProgress] = []
        result = download_model(
            REPO, dest, endpoint=url, use_hf_transfer=True, progress=events.append
        )
    finally:
        server.terminate()
        log = server.communicate(timeout=10)[0]
    # hf_transfer fetches the big file in parallel ranges; the small one came by plain GET.
    assert len(re.findall(rf"GET \S+/{SHARD1} bytes=\d+-\d+", log)) >= 5
    _assert_same(dest, files, "config.json", SHARD1)
    assert result.fetched_bytes == len(files["config.json"]) + 52 * MB
    assert events[-1].done_bytes == events[-1].total_bytes
