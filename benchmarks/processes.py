"""Every measurement in a fresh Python process: load time and peak RSS are each process's own.

`run_worker("engine", spec)` runs `python -m benchmarks.workers engine SPEC` with this checkout
on PYTHONPATH and returns the JSON the worker printed.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]

RESULT_MARK = "BENCH-RESULT "
"""Prefix of the one line a worker prints its JSON on (libraries print to stdout too)."""


def run_worker(kind: str, spec: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """Run one worker in a fresh Python process and return its JSON result."""
    command = [sys.executable, "-m", "benchmarks.workers", kind, json.dumps(spec)]
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
        raise RuntimeError(
            f"{kind} worker failed (exit {done.returncode}):\n{tail}{_hint(kind, done)}"
        )
    result = json.loads(lines[-1].removeprefix(RESULT_MARK))
    return result | {"worker_wall_s": time.perf_counter() - started}


def _hint(kind: str, done: subprocess.CompletedProcess[str]) -> str:
    from qwen_tui.engine.cpu import cpu_info

    if kind == "llamacpp" and done.returncode == -11 and "amx_int8" in cpu_info().flags:
        return (
            "\nllama.cpp's AMX kernels crash on some Sapphire Rapids machines "
            "(ggml-org/llama.cpp#20824): rebuild llama-cpp-python without AMX, see "
            "benchmarks/README.md"
        )
    return ""


def _pythonpath() -> str:
    """Children must import this checkout's qwen_tui and benchmarks, whatever the cwd."""
    parts = [str(ROOT)]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)
