"""What qwen-tui's remote engine adds on top of calling an OpenAI-compatible server directly.

    python benchmarks/remote_overhead.py [--repeats 5] [--tokens 64]

Starts `python -m llama_cpp.server` on the bundled demo GGUF (127.0.0.1 only), then
alternates two clients on the same greedy prompt: a bare streaming HTTP request
(urllib, reading the SSE lines) and `RemoteEngine.generate`. Prints TTFT and tok/s
medians with their ratio and writes benchmarks/results/remote_overhead-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

PROMPT = "Write a short story about a lighthouse keeper."


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_server(port: int) -> subprocess.Popen:
    from qwen_tui.model_setup.gguf_import import find_demo_gguf

    command = [
        sys.executable,
        "-m",
        "llama_cpp.server",
        "--model",
        str(find_demo_gguf()),
        "--model_alias",
        "demo",
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--n_ctx",
        "2048",
        "--n_threads",
        "2",
        "--verbose",
        "False",
    ]
    log = open(Path(tempfile.gettempdir()) / f"llama-server-{port}.log", "wb")  # noqa: SIM115
    process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)
    for _ in range(600):
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/v1/models", timeout=1):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit("llama_cpp.server did not start (is llama-cpp-python[server] installed?)")


def direct(port: int, tokens: int) -> tuple[float, float]:
    """(TTFT s, tok/s) of a bare streaming request: one SSE line per token."""
    body = json.dumps(
        {
            "model": "demo",
            "stream": True,
            "max_tokens": tokens,
            "temperature": 0,
            "messages": [{"role": "user", "content": PROMPT}],
        }
    ).encode()
    request = urllib.request.Request(
        f"http://127.0.0.1:{port}/v1/chat/completions",
        data=body,
        headers={"Content-Type": "application/json"},
    )
    started = time.perf_counter()
    stamps = []
    with urllib.request.urlopen(request) as response:
        for line in response:
            if line.startswith(b"data: {") and b'"content"' in line:
                stamps.append(time.perf_counter())
    return rates(started, stamps)


def through_engine(engine, tokens: int) -> tuple[float, float]:
    from qwen_tui.conversation import GenerationSettings, Message
    from qwen_tui.engine.base import TextChunk

    settings = GenerationSettings(temperature=0, max_new_tokens=tokens)
    started = time.perf_counter()
    stamps = [
        time.perf_counter()
        for event in engine.generate([Message("system", ""), Message("user", PROMPT)], settings)
        if isinstance(event, TextChunk)
    ]
    return rates(started, stamps)


def rates(started: float, stamps: list[float]) -> tuple[float, float]:
    if len(stamps) < 2:
        raise SystemExit("the server streamed fewer than two tokens")
    return stamps[0] - started, (len(stamps) - 1) / (stamps[-1] - stamps[0])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--tokens", type=int, default=64)
    args = parser.parse_args()
    from qwen_tui.config import RemoteConfig
    from qwen_tui.engine.remote import load_remote

    port = free_port()
    server = start_server(port)
    try:
        engine = load_remote(
            RemoteConfig(name="bench", base_url=f"http://127.0.0.1:{port}/v1", model="demo")
        )
        direct(port, 8)  # warm-up: the first request loads caches in the server
        runs: dict[str, list[tuple[float, float]]] = {"direct": [], "qwen-tui": []}
        for _ in range(args.repeats):
            runs["direct"].append(direct(port, args.tokens))
            runs["qwen-tui"].append(through_engine(engine, args.tokens))
    finally:
        server.kill()
    result = {
        name: {
            "ttft_s": statistics.median(r[0] for r in rows),
            "tok_s": statistics.median(r[1] for r in rows),
        }
        for name, rows in runs.items()
    }
    result["ttft_ratio"] = result["qwen-tui"]["ttft_s"] / result["direct"]["ttft_s"]
    result["tok_s_ratio"] = result["qwen-tui"]["tok_s"] / result["direct"]["tok_s"]
    print(f"{'client':<10}{'TTFT s':>10}{'tok/s':>10}")
    for name in ("direct", "qwen-tui"):
        print(f"{name:<10}{result[name]['ttft_s']:>10.3f}{result[name]['tok_s']:>10.1f}")
    print(
        f"qwen-tui / direct: TTFT {result['ttft_ratio']:.2f}x, tok/s {result['tok_s_ratio']:.2f}x"
    )
    out = ROOT / "benchmarks" / "results" / f"remote_overhead-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
