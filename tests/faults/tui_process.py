"""The pty harness moved to tests/terminal/tui_process.py (it grew a screen, keys, pastes,
resizes); fault tests keep importing it from here."""

from tests.terminal.tui_process import SIZE, TuiProcess, wait_for_session

__all__ = ["SIZE", "TuiProcess", "wait_for_session"]
