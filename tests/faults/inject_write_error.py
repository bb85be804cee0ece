"""Run qwen-tui with writes of session data failing with an errno while a flag file exists.

    python inject_write_error.py FLAG_FILE ENOSPC ask --session ID ...

Only `os.write` calls on files in the sessions folder fail (the store writes session files
with os.write; the terminal and the log do not use it), as they do when that disk fills up.
Removing the flag file frees the "disk" again.
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path


def main() -> int:
    flag, name, *argv = sys.argv[1:]
    code = getattr(errno, name)
    sessions = os.path.realpath(os.environ["QWEN_TUI_HOME"]) + "/data/sessions/"
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if Path(flag).exists() and os.path.realpath(f"/proc/self/fd/{fd}").startswith(sessions):
            raise OSError(code, os.strerror(code))
        return real_write(fd, data)

    os.write = write
    from qwen_tui.cli import main as qwen_tui

    return qwen_tui(argv)


if __name__ == "__main__":
    sys.exit(main())
