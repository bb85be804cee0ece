"""ctrl-c, SIGTERM and SIGHUP (SSH gone) in the headless commands: stop cleanly, keep what
was saved."""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

from qwen_tui.exit_codes import EXIT_INTERRUPTED
from qwen_tui.visible_text import terminal_line


@contextlib.contextmanager
def hangup_interrupts() -> Iterator[list[str]]:
    """Outside generation, ctrl-c, SIGTERM and SIGHUP (SSH gone) end `ask` at once: the
    question is already saved (or not yet asked), so exiting loses nothing and the lock
    goes with the process. `stop_on_signals` takes over while a reply streams.

    The process exits from the handler instead of raising KeyboardInterrupt: raised at an
    arbitrary point of loading the model it can land inside torch's or numpy's import, where
    it becomes an ImportError, or is remembered by CPython, which then kills the process
    with SIGINT at exit (4 of 25 SIGTERMs at random moments of a load, measured).

    Yields a list of lines to print first when interrupted (the new session's id: the
    question is saved in it, and the user needs the id to continue it).
    """
    last_words: list[str] = []

    def interrupt(_signum: int, _frame: object) -> None:
        with contextlib.suppress(OSError, ValueError):
            for line in ["", *last_words]:
                print(terminal_line(line), file=sys.stderr, flush=True)
            print("qwen-tui: interrupted", file=sys.stderr, flush=True)
        os._exit(EXIT_INTERRUPTED)

    caught = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.signal(sig, interrupt) for sig in caught}
    try:
        yield last_words
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


@contextlib.contextmanager
def stop_on_signals(cancel: threading.Event) -> Iterator[None]:
    """ctrl-c, SIGTERM and SIGHUP (SSH gone) stop the reply cleanly so the partial is saved."""
    caught = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in caught}

    def handle(signum: int, _frame: object) -> None:
        if cancel.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second ctrl-c: the user really wants out
        cancel.set()

    for sig in caught:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)
