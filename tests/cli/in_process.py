"""Run `qwen-tui` commands inside the test process, with stdout and stderr as byte streams
that say they are terminals: thousands of fuzz cases in the time of a few subprocesses.

The streams encode like a UTF-8 terminal's (stdout strict, stderr backslashreplace, as
CPython sets them), so a character that cannot be encoded fails as it would for a user.
"""

from __future__ import annotations

import io
import logging
import os
import sys
from dataclasses import dataclass

from qwen_tui import cli

FUZZ_EXAMPLES = int(os.environ.get("QWEN_TUI_FUZZ_EXAMPLES", "0")) or None
"""Set QWEN_TUI_FUZZ_EXAMPLES=5000 for the long run by hand; unset, each test's default."""


def examples(default: int) -> int:
    return FUZZ_EXAMPLES or default


class _Terminal(io.BytesIO):
    def isatty(self) -> bool:
        return True


@dataclass
class Ran:
    status: int
    stdout: bytes
    stderr: bytes


def run_main(*argv: str) -> Ran:
    """`qwen-tui ARGV` in this process; the process's umask and log handlers are restored."""
    out_bytes, err_bytes = _Terminal(), _Terminal()
    out = io.TextIOWrapper(out_bytes, encoding="utf-8", errors="strict", write_through=True)
    err = io.TextIOWrapper(
        err_bytes, encoding="utf-8", errors="backslashreplace", write_through=True
    )
    saved = sys.stdout, sys.stderr, sys.stdin
    root = logging.getLogger()
    handlers = list(root.handlers)
    umask = os.umask(0o022)
    os.umask(umask)
    sys.stdout, sys.stderr, sys.stdin = out, err, io.StringIO("")
    try:
        try:
            status = cli.main(list(argv))
        except SystemExit as exit:  # argparse
            status = int(exit.code or 0)
        out.flush()
        err.flush()
        return Ran(status, out_bytes.getvalue(), err_bytes.getvalue())
    finally:
        sys.stdout, sys.stderr, sys.stdin = saved
        os.umask(umask)
        for handler in root.handlers[:]:
            if handler not in handlers:
                root.removeHandler(handler)
                handler.close()
