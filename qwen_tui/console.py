"""What headless commands write to the terminal: one-line messages, replies, progress.

Outside text (server errors, file names) reaches the terminal with its controls visible.
"""

from __future__ import annotations

import contextlib
import os
import sys
from collections.abc import Callable
from typing import TextIO

from qwen_tui.visible_text import terminal_line, terminal_text


def say(text: str, prefix: str = "qwen-tui: ") -> None:
    """One line on stderr; quietly nothing when the terminal is gone (SSH dropped).

    `text` often quotes the outside world (a server's error, a file name, an exception):
    its control characters are made visible, never sent raw."""
    with contextlib.suppress(OSError):
        print(f"{prefix}{terminal_text(text)}", file=sys.stderr, flush=True)


def show(out: TextIO, text: str) -> bool:
    """Write and flush `text`; False when the reader is gone (EIO after an SSH drop, EPIPE
    when the pipe closed), after pointing the stream at /dev/null so that later writes and
    the flush at exit do not fail the same way."""
    try:
        out.write(text)
        out.flush()
        return True
    except OSError:
        with contextlib.suppress(OSError, ValueError):
            devnull = os.open(os.devnull, os.O_WRONLY)
            os.dup2(devnull, out.fileno())
            os.close(devnull)
        return False


def stage_printer(stream: TextIO = sys.stderr) -> Callable[[str, float | None], None]:
    """A progress callback for slow set-up steps: a line per stage, a percentage updated in
    place on a terminal (whole percents only: slow SSH links), stage lines only otherwise."""
    interactive = stream.isatty()
    shown = {"stage": "", "percent": -1}

    def show(stage: str, fraction: float | None) -> None:
        percent = -1 if fraction is None else int(fraction * 100)
        if stage == shown["stage"] and (not interactive or percent == shown["percent"]):
            return
        if stage != shown["stage"]:
            if shown["stage"] and interactive:
                stream.write("\n")
            if not interactive:
                stream.write(f"{terminal_line(stage)}\n")
        shown.update(stage=stage, percent=percent)
        if interactive:  # stages can name files: their controls shown, not obeyed
            line = terminal_line(stage) + (f" {percent:3d}%" if percent >= 0 else "")
            stream.write(f"\r{line}")
        stream.flush()

    return show
