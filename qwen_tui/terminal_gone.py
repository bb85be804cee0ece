"""Saves and exits when the user can no longer reach the app (hang-up, SIGTERM, parent gone)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
from typing import TYPE_CHECKING

from qwen_tui.terminal_driver import HangUpSafeDriver

if TYPE_CHECKING:
    from qwen_tui.app import QwenTuiApp

log = logging.getLogger(__name__)

EXIT_DEADLINE_S = 1.0
"""After a hang-up or SIGTERM has saved the session, the process is gone this long after even
if something holds up the exit (a model load in a worker thread cannot be interrupted, and
Python waits for worker threads at exit): nothing is left running on a shared server."""
PARENT_CHECK_S = 0.25
"""How often to check that the process that started the app is still there."""
STATUS = 130
"""The exit status: as ctrl+c leaves `qwen-tui ask`."""


class TerminalGone:
    """Watches for the ways the user's terminal goes away, and then keeps the partial reply
    (marked stopped) and the draft, and ends the process within EXIT_DEADLINE_S."""

    def __init__(self, app: QwenTuiApp, parent_pid: int) -> None:
        self._app = app
        self._parent_pid = parent_pid
        self.happened = False
        """A hang-up, SIGHUP/SIGTERM or the parent's end is making the app exit."""

    def watch(self) -> None:
        """SIGTERM, SIGHUP, the terminal read or written after a hang-up (tmux kill-session or
        a dropped SSH link need not send SIGHUP), or the parent process gone (re-parented to
        PID 1). Call from the app's event loop, once it runs."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self.save_and_exit)
        driver = self._app._driver
        if isinstance(driver, HangUpSafeDriver):
            driver.call_on_hang_up(self.save_and_exit)
        self._app.set_interval(PARENT_CHECK_S, self._check_parent)

    def _check_parent(self) -> None:
        if os.getppid() != self._parent_pid:
            self.save_and_exit()

    def save_and_exit(self) -> None:
        if self.happened:
            return
        self.happened = True
        app = self._app
        try:
            if app.chat_screen is not None:
                app.chat_screen.stop_and_save()
            app.remember_on_leaving()
        except Exception:  # whatever went wrong, the process must not stay behind
            log.exception("saving before leaving failed")
        driver = app._driver
        if isinstance(driver, HangUpSafeDriver) and driver.terminal_gone():
            leave_now(STATUS)  # nothing left to restore on a terminal nobody sees
        exit_anyway_after(EXIT_DEADLINE_S, STATUS)
        app.exit(STATUS)


def leave_now(status: int) -> None:
    """End the process without Textual's shutdown or Python's finalization (the session is
    saved already; the kernel releases the session lock with the process)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def exit_anyway_after(seconds: float, status: int) -> None:
    """End the process in `seconds` if it is still running then (see EXIT_DEADLINE_S)."""

    def leave() -> None:
        log.warning("exit took longer than %.1f s: leaving without waiting", seconds)
        leave_now(status)

    timer = threading.Timer(seconds, leave)
    timer.daemon = True
    timer.start()
