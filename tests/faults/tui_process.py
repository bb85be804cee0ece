"""The real `qwen-tui` app in a pseudo-terminal, as a user at an 80x24 xterm runs it."""

from __future__ import annotations

import fcntl
import os
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Sequence

from qwen_tui.conversation import Session
from qwen_tui.store import SessionStore, StoreError

SIZE = (24, 80)  # rows, columns


class TuiProcess:
    """`python -m qwen_tui ARGS` with its terminal on a pty; the screen output is drained in
    a thread so the app never blocks on a full pty buffer."""

    def __init__(
        self, *args: str, prefix: Sequence[str] = ("-m", "qwen_tui"), env: dict[str, str] | None
    ) -> None:
        self.master, slave = os.openpty()
        fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", *SIZE, 0, 0))
        self.process = subprocess.Popen(
            [sys.executable, *prefix, *args],
            stdin=slave,
            stdout=slave,
            stderr=slave,
            env={**(env or os.environ), "TERM": "xterm-256color", "COLUMNS": "80", "LINES": "24"},
            start_new_session=True,  # its own session, as a login shell's child under sshd
        )
        os.close(slave)
        self.output = bytearray()
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    def _drain(self) -> None:
        while True:
            try:
                chunk = os.read(self.master, 65536)
            except OSError:  # EIO: the app (and every holder of the pty) is gone
                return
            if not chunk:
                return
            self.output += chunk

    @property
    def pid(self) -> int:
        return self.process.pid

    def type(self, text: str) -> None:
        """Keys as the terminal sends them: enter is a carriage return."""
        os.write(self.master, text.encode())

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def hang_up_terminal(self) -> None:
        """The SSH connection drops: the terminal's other end goes away."""
        os.close(self.master)
        self.master = -1

    def finish(self, timeout: float = 60) -> int:
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        if self.master >= 0:
            self._reader.join(5)
            os.close(self.master)
            self.master = -1
        return status


def wait_for_session(
    store: SessionStore,
    session_id: str,
    condition: Callable[[Session], bool],
    process: TuiProcess,
    timeout: float = 60,
) -> Session:
    """Poll the session file until `condition` holds (fails if the app exits first)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert process.process.poll() is None, bytes(process.output[-2000:]).decode(
            "utf-8", "replace"
        )
        try:
            session = store.load(session_id)
        except StoreError:  # a save in progress is never seen (atomic), a missing file is
            session = None
        if session is not None and condition(session):
            return session
        time.sleep(0.02)
    raise AssertionError(f"the session never reached {condition}")
