"""What `qwen-tui` checks before the app draws: the --session it names, a pipe on stdin."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from qwen_tui.exit_codes import CliError
from qwen_tui.paths import Paths

if TYPE_CHECKING:
    from qwen_tui.attachment import Attachment


def read_piped_stdin() -> Attachment | None:
    """`some-command | qwen-tui`: read the pipe to its end before anything is drawn, then
    take keys from the controlling terminal (fd 0 becomes /dev/tty)."""
    from qwen_tui.context_sources import AttachError, read_piped, take_terminal_for_keys

    if sys.stdin is None or sys.stdin.isatty():
        return None
    try:
        piped = read_piped(sys.stdin.buffer)
    except AttachError as error:
        raise CliError(str(error)) from None
    try:
        take_terminal_for_keys()
    except AttachError as error:
        if piped is not None:  # (with nothing piped, start as before)
            raise CliError(str(error)) from None
    return piped


def check_session_exists(paths: Paths, session_id: str) -> None:
    """Exit 2 with a message for a `--session` that names no saved session."""
    from qwen_tui.store import SessionStore, StoreError

    try:
        path = SessionStore(paths.sessions_dir).path_for(session_id)
    except StoreError as error:  # not a session id at all
        raise CliError(str(error)) from None
    if not path.exists():
        raise CliError(f"no session {session_id}: `qwen-tui sessions` lists the saved ones")
