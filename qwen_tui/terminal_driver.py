"""Textual's Linux driver, made safe for terminals that go away and for pasted text.

Three things Textual 8's LinuxDriver gets wrong for a chat app reached over SSH:

- When the terminal hangs up (SSH drops, `tmux kill-session`), reading it returns EOF (or
  EIO) at once, forever: its input thread loops on that at full speed (Textualize/textual
  PR #6690) and nothing tells the app. Here EOF/EIO ends the input thread and calls
  `on_hang_up` (the app saves and exits).
- Writing to a hung-up terminal raises EIO in its writer thread, which dies; the next 30
  frames fill the writer's queue and the event loop then blocks for good in `queue.put`, so
  not even SIGTERM is handled. Here output to a terminal that failed is dropped instead.
- The kernel sends SIGHUP *and SIGCONT* on a hang-up, and Textual answers any SIGCONT by
  starting application mode again (a second input and writer thread on the dead terminal).
  Here only a SIGCONT after our own SIGTSTP (ctrl+z, then `fg`) resumes.

Input is split into keystrokes and pastes first (`terminal_input`), so nothing pasted is ever
read as a key: see that module.
"""

from __future__ import annotations

import os
import selectors
import time
from codecs import getincrementaldecoder
from collections.abc import Callable
from typing import IO, Any

from textual import events
from textual._xterm_parser import XTermParser
from textual.drivers.linux_driver import LinuxDriver

from qwen_tui.terminal_input import Pasted, TerminalInput, Typed

PARSER_TICK_S = 0.1
"""How often the parser gets to time out a lone ESC when nothing arrives (as Textual does)."""


class _DroppingOutput:
    """The terminal as the writer thread sees it: once a write fails (EIO after a hang-up),
    everything after it is dropped, and `on_failure` is told once."""

    def __init__(self, file: IO[str], on_failure: Callable[[], None]) -> None:
        self._file = file
        self._on_failure = on_failure
        self.failed = False

    def write(self, text: str) -> None:
        if not self.failed:
            try:
                self._file.write(text)
            except (OSError, ValueError):
                self._fail()

    def flush(self) -> None:
        if not self.failed:
            try:
                self._file.flush()
            except (OSError, ValueError):
                self._fail()

    def fileno(self) -> int:
        return self._file.fileno()

    def _fail(self) -> None:
        self.failed = True
        self._on_failure()


class HangUpSafeDriver(LinuxDriver):
    """LinuxDriver that notices a dead terminal, keeps pasted bytes as text, and never
    blocks on output nobody can read."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._output = _DroppingOutput(self._file, self._mark_gone)
        self._file = self._output  # type: ignore[assignment]  (what the writer thread writes to)
        self._gone = False
        self._on_hang_up: Callable[[], None] | None = None
        self._suspended = False

    # ------------------------------------------------------------ hang-up

    def call_on_hang_up(self, callback: Callable[[], None]) -> None:
        """Have `callback` run on the event loop, once, when the terminal is gone (at once
        if it already is: a hang-up can come before the app has mounted)."""
        self._on_hang_up = callback
        if self._gone:
            self._loop.call_soon_threadsafe(callback)

    def terminal_gone(self) -> bool:
        """True once the terminal has hung up (after a hang-up it is no longer a tty)."""
        return self._gone or not os.isatty(self._output.fileno())

    def _mark_gone(self) -> None:  # from the input or the writer thread
        if self._gone:
            return
        self._gone = True
        self._output.failed = True
        if self._on_hang_up is not None:
            self._loop.call_soon_threadsafe(self._on_hang_up)

    def write(self, data: str) -> None:
        if not self._gone:  # nobody reads it; the writer's queue must never fill up
            super().write(data)

    def _sigtstp_application(self, *args: Any) -> None:
        self._suspended = True
        super()._sigtstp_application(*args)

    def _sigcont_application(self, *args: Any) -> None:
        # The kernel sends SIGCONT with the SIGHUP of a hang-up: not a resume after ctrl+z.
        if self._suspended and not self._gone and os.isatty(self.fileno):
            self._suspended = False
            super()._sigcont_application(*args)

    # ------------------------------------------------------------ input

    def run_input_thread(self) -> None:
        """Read the terminal until told to stop or until it is gone; pastes become Paste
        events whole, the rest goes through Textual's parser as keys."""
        selector = selectors.SelectSelector()
        selector.register(self.fileno, selectors.EVENT_READ)
        parser = XTermParser(self._debug)
        decode = getincrementaldecoder("utf-8")(errors="replace").decode
        splitter = TerminalInput()
        try:
            while not self.exit_event.is_set():
                # never longer than a tick: disable_input() waits for this thread to see exit_event
                ready = selector.select(min(splitter.wait_s() or PARSER_TICK_S, PARSER_TICK_S))
                now = time.monotonic()
                if ready:
                    try:
                        data = os.read(self.fileno, 4096)
                    except OSError:  # EIO: the terminal is gone
                        data = b""
                    if not data:
                        self._mark_gone()
                        return
                    pieces = splitter.feed(decode(data), now)
                else:
                    pieces = splitter.flush(now)
                for piece in pieces:
                    if isinstance(piece, Typed):
                        for event in parser.feed(piece.text):
                            self.process_message(event)
                    elif isinstance(piece, Pasted):
                        self.process_message(events.Paste(piece.text))
                for event in parser.tick():
                    self.process_message(event)
        finally:
            selector.close()
