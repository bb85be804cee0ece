"""The real `qwen-tui` app in a pseudo-terminal, driven as a person at a terminal drives it.

Keys go in as the bytes a terminal sends (enter is a carriage return, arrows are escape
sequences), one key at a time at typing speed; pastes go in as terminals send them (every line
break a lone CR, with or without the bracketed-paste markers); the screen is read back with
pyte, a terminal emulator, so tests assert on what a person would see. Resizes set the pty's
window size and send SIGWINCH; hang-ups close the pty master (an SSH connection dropping) or
send SIGHUP.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import select
import signal
import struct
import subprocess
import sys
import termios
import threading
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pyte

from qwen_tui.conversation import Session
from qwen_tui.store import SessionStore, StoreError

SIZE = (24, 80)  # rows, columns
REPO = Path(__file__).resolve().parents[2]
TYPING_DELAY_S = 0.03
"""Between two keys: ~30 keys a second, a fast typist (each key is its own write, as a
terminal sends it)."""
PASTE_START, PASTE_END = b"\x1b[200~", b"\x1b[201~"

KEYS: dict[str, bytes] = {
    "enter": b"\r",
    "tab": b"\t",
    "shift+tab": b"\x1b[Z",
    "escape": b"\x1b",
    "backspace": b"\x7f",
    "delete": b"\x1b[3~",
    "up": b"\x1b[A",
    "down": b"\x1b[B",
    "right": b"\x1b[C",
    "left": b"\x1b[D",
    "home": b"\x1b[H",
    "end": b"\x1b[F",
    "f1": b"\x1bOP",
    "f2": b"\x1bOQ",
    "f4": b"\x1bOS",
    "f5": b"\x1b[15~",
    "f8": b"\x1b[19~",
    "f9": b"\x1b[20~",
    "alt+left": b"\x1b[1;3D",
    "alt+right": b"\x1b[1;3C",
    "space": b" ",
}
"""Named keys as xterm sends them; `ctrl+<letter>` is computed (ctrl+j is LF, ctrl+q DC1)."""


def key_bytes(key: str) -> bytes:
    if key in KEYS:
        return KEYS[key]
    if key.startswith("ctrl+") and len(key) == 6 and key[5].isalpha():
        return bytes([ord(key[5].lower()) - ord("a") + 1])
    if len(key) == 1:
        return key.encode()
    raise ValueError(f"no bytes known for key {key!r}")


def pasted_bytes(text: str, *, bracketed: bool) -> bytes:
    """`text` as a terminal pastes it: each line break a lone CR (xterm, tmux, iTerm2 all do
    this), wrapped in the bracketed-paste markers when the app asked for them."""
    body = text.replace("\r\n", "\n").replace("\n", "\r").encode()
    return PASTE_START + body + PASTE_END if bracketed else body


class TuiProcess:
    """`python PREFIX ARGS` with its terminal on a pty.

    The output is drained in a thread (so the app never blocks on a full pty buffer), kept
    raw in `output` and fed to a pyte screen. With `controlling_terminal` the pty becomes the
    process's controlling terminal, so closing the master makes the kernel send it SIGHUP, as
    when an SSH connection drops; without it (the default, as `setsid` leaves a process) a
    closed master is only seen as EOF/EIO on the terminal.
    """

    def __init__(
        self,
        *args: str,
        prefix: Sequence[str] = ("-m", "qwen_tui"),
        env: dict[str, str] | None = None,
        size: tuple[int, int] = SIZE,
        controlling_terminal: bool = False,
        stdin: int | None = None,
        cwd: Path = REPO,
    ) -> None:
        self.size = size
        self.master, slave = os.openpty()
        self._set_window_size(slave, size)
        environment = {**(env or os.environ)}
        paths = [str(REPO), *filter(None, environment.get("PYTHONPATH", "").split(os.pathsep))]
        environment.update(TERM="xterm-256color", PYTHONPATH=os.pathsep.join(dict.fromkeys(paths)))
        for name in ("COLUMNS", "LINES"):  # they would win over the pty's size, resized or not
            environment.pop(name, None)
        self.process = subprocess.Popen(
            [sys.executable, *prefix, *args],
            stdin=slave if stdin is None else stdin,  # a pipe: `some-command | qwen-tui`
            stdout=slave,
            stderr=slave,
            env=environment,
            cwd=cwd,
            # its own session, as a login shell's child under sshd
            start_new_session=not controlling_terminal,
            preexec_fn=_take_controlling_terminal if controlling_terminal else None,
        )
        os.close(slave)
        self.output = bytearray()
        self._wake_read, self._wake_write = os.pipe()
        self._screen_lock = threading.Lock()
        self.screen = pyte.Screen(size[1], size[0])
        self._stream = pyte.ByteStream(self.screen)
        self._reader = threading.Thread(target=self._drain, daemon=True)
        self._reader.start()

    # ------------------------------------------------------------ output

    def _drain(self) -> None:
        """Read the app's output until it is gone, or until `hang_up_terminal` asks this
        thread to close the master (a read in progress would keep the pty open)."""
        try:
            while True:
                ready, _, _ = select.select([self.master, self._wake_read], [], [])
                if self._wake_read in ready:
                    return
                try:
                    chunk = os.read(self.master, 65536)
                except OSError:  # EIO: the app (and every holder of the pty) is gone
                    return
                if not chunk:
                    return
                self.output += chunk
                with self._screen_lock:
                    self._stream.feed(chunk)
        finally:
            os.close(self._wake_read)

    def screen_text(self) -> str:
        """The screen as a person reads it, one line per row (trailing blanks dropped)."""
        with self._screen_lock:
            return "\n".join(line.rstrip() for line in self.screen.display)

    def wait_for_screen(self, condition: str | Callable[[str], bool], timeout: float = 30) -> str:
        """Poll the screen until it shows `condition` (a text, or a test on the text)."""
        test = condition if callable(condition) else (lambda text: condition in text)
        deadline = time.monotonic() + timeout
        while True:
            text = self.screen_text()
            if test(text):
                return text
            if self.process.poll() is not None:
                raise AssertionError(f"the app exited ({self.process.returncode}):\n{text}")
            if time.monotonic() > deadline:
                raise AssertionError(f"the screen never showed {condition!r}:\n{text}")
            time.sleep(0.02)

    def wait_drawn(self, timeout: float = 60) -> None:
        """Until the first frame is up: the sidebar's search box and the prompt."""
        self.wait_for_screen(lambda text: "search sessions" in text and "Message" in text, timeout)

    # ------------------------------------------------------------ input

    @property
    def pid(self) -> int:
        return self.process.pid

    def write(self, data: bytes) -> None:
        os.write(self.master, data)

    def type(self, text: str, delay: float = 0.0) -> None:
        """Text as the terminal sends it (enter is a carriage return); all at once unless a
        `delay` between characters is given."""
        if not delay:
            self.write(text.encode())
            return
        for character in text:
            self.write(character.encode())
            time.sleep(delay)

    def type_slowly(self, text: str) -> None:
        """One key at a time at a fast typist's speed."""
        self.type(text, TYPING_DELAY_S)

    def press(self, *keys: str) -> None:
        """Named keys (`enter`, `down`, `ctrl+j`, ...), each its own write, at typing speed."""
        for key in keys:
            self.write(key_bytes(key))
            time.sleep(TYPING_DELAY_S)

    def paste(self, text: str, *, bracketed: bool = True) -> None:
        """Paste as a terminal does: one write of the whole text (the kernel splits it into
        reads of at most 4 KB on the way, as it does for a real terminal)."""
        data = pasted_bytes(text, bracketed=bracketed)
        view = memoryview(data)
        while view:
            view = view[os.write(self.master, view) :]

    # ------------------------------------------------------------ the terminal itself

    def resize(self, rows: int, columns: int) -> None:
        """The terminal window changes size: new window size on the pty, then SIGWINCH (the
        kernel sends it only to a foreground process group, which a setsid'd app is not)."""
        self._set_window_size(self.master, (rows, columns))
        self.size = (rows, columns)
        with self._screen_lock:
            self.screen.resize(rows, columns)
        self.signal(signal.SIGWINCH)

    @staticmethod
    def _set_window_size(fd: int, size: tuple[int, int]) -> None:
        fcntl.ioctl(fd, termios.TIOCSWINSZ, struct.pack("HHHH", *size, 0, 0))

    def signal(self, signum: int) -> None:
        self.process.send_signal(signum)

    def hang_up_terminal(self) -> None:
        """The SSH connection drops: the terminal's other end goes away, now (the reader
        thread lets go of the master first: a read in progress would keep it open)."""
        self._stop_reader()
        os.close(self.master)
        self.master = -1

    def _stop_reader(self) -> None:
        if self._wake_write >= 0:
            if self._reader.is_alive():
                # The reader may end (EIO) and close its end right after the check.
                with contextlib.suppress(BrokenPipeError):
                    os.write(self._wake_write, b"x")
                self._reader.join(5)
            os.close(self._wake_write)
            self._wake_write = -1

    def alive(self) -> bool:
        return self.process.poll() is None

    def finish(self, timeout: float = 60) -> int:
        try:
            status = self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
            raise
        if self.master >= 0:
            self._reader.join(5)  # the app is gone: it ends at EIO
            self._stop_reader()
            os.close(self.master)
            self.master = -1
        return status

    def kill(self) -> None:
        """Cleanup after a failed test: never leave the app running."""
        if self.alive():
            self.process.kill()
            self.process.wait(10)
        if self.master >= 0:
            self._stop_reader()
            os.close(self.master)
            self.master = -1


def _take_controlling_terminal() -> None:  # runs in the child, before exec
    os.setsid()
    fcntl.ioctl(1, termios.TIOCSCTTY, 0)  # stdout: always the pty (stdin may be a pipe)


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
