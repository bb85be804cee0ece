"""`qwen-tui ask` as a real process, with what it streams collected as it goes."""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections.abc import Sequence
from typing import IO

from qwen_tui.conversation import GenerationStats, Message, Session, StopReason

TINY_MODEL = "tiny-qwen2"
# Greedy replies of the tiny models never end early: they run to --max-tokens (~250 tok/s).
LONG_REPLY = ("--max-tokens", "1500")


def ask_argv(*args: str) -> list[str]:
    return [
        sys.executable,
        "-m",
        "qwen_tui",
        "ask",
        "--model",
        TINY_MODEL,
        "--temperature",
        "0",
        *args,
    ]


def make_session(session_id: str = "20250101-000000-faults", title: str = "faults") -> Session:
    session = Session(id=session_id, title=title, created=1000.0, updated=1000.0)
    session.messages = [
        Message("user", "First question", created=1001.0),
        Message(
            "assistant",
            "First answer",
            created=1002.0,
            stats=GenerationStats(generated_tokens=2, stop_reason=StopReason.EOS),
        ),
    ]
    return session


class Collector:
    """Reads a pipe in a thread: the bytes so far, and waits for bytes or a text."""

    def __init__(self, stream: IO[bytes]) -> None:
        self.data = bytearray()
        self._changed = threading.Condition()
        self._done = False
        self._thread = threading.Thread(target=self._read, args=(stream,), daemon=True)
        self._thread.start()

    def _read(self, stream: IO[bytes]) -> None:
        while chunk := stream.read1(65536):  # type: ignore[attr-defined]
            with self._changed:
                self.data += chunk
                self._changed.notify_all()
        with self._changed:
            self._done = True
            self._changed.notify_all()

    def wait_for(self, needle: bytes = b"", timeout: float = 60) -> bool:
        """True once the stream holds `needle` (any byte if empty); False at EOF or timeout."""
        deadline = time.monotonic() + timeout
        with self._changed:
            while not (self.data if not needle else needle in self.data):
                left = deadline - time.monotonic()
                if self._done or left <= 0:
                    return False
                self._changed.wait(left)
            return True

    def join(self, timeout: float = 30) -> bytes:
        self._thread.join(timeout)
        return bytes(self.data)

    @property
    def text(self) -> str:
        return bytes(self.data).decode("utf-8", "replace")


class AskProcess:
    """One `qwen-tui ask` run (or `prefix + ask` for a wrapper script that injects faults)."""

    def __init__(
        self,
        *args: str,
        prefix: Sequence[str] = (),
        env: dict[str, str] | None = None,
        stdin: bytes | None = None,
    ) -> None:
        argv = ask_argv(*args)
        if prefix:
            argv = [sys.executable, *prefix, *argv[3:]]  # the wrapper runs qwen_tui's main
        self.process = subprocess.Popen(
            argv,
            stdin=subprocess.PIPE if stdin is not None else subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            env=env or os.environ.copy(),
        )
        if stdin is not None:
            assert self.process.stdin is not None
            self.process.stdin.write(stdin)
            self.process.stdin.close()
        assert self.process.stdout is not None and self.process.stderr is not None
        self.stdout = Collector(self.process.stdout)
        self.stderr = Collector(self.process.stderr)

    @property
    def pid(self) -> int:
        return self.process.pid

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def finish(self, timeout: float = 120) -> int:
        """Wait for the exit; the status (negative: killed by that signal)."""
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        self.stdout.join()
        self.stderr.join()
        return status
