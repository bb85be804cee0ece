"""What the app remembers for itself between runs: the session last shown and its draft.

Kept in `state.toml` (Paths.state_file), never in the user's config.toml (which the app only
reads): written with tomli-w through the one atomic writer, so a crash leaves the old state
or the new one. A state file that cannot be read is moved aside and the app starts as if it
had none: losing it costs the user one click, not a session.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tomllib
from dataclasses import dataclass
from pathlib import Path

import tomli_w

from qwen_tui.paths import ensure_private_dir
from qwen_tui.store.atomic import write_atomic

log = logging.getLogger(__name__)

STATE_VERSION = 1


@dataclass(frozen=True)
class AppState:
    last_session: str = ""
    """The session shown when the app last ran; empty: a new session not saved yet."""
    draft: str = ""
    """What was left typed (not sent) in the prompt then."""


def load_state(path: Path) -> AppState:
    """The state last saved; the defaults if there is none or it is unreadable."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return AppState()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        _move_aside(path, str(error))
        return AppState()
    last, draft = data.get("last_session", ""), data.get("draft", "")
    if not isinstance(last, str) or not isinstance(draft, str):
        _move_aside(path, "last_session and draft must be strings")
        return AppState()
    return AppState(last_session=last, draft=draft)


def save_state(path: Path, state: AppState) -> None:
    """Replace the state file atomically. Raises OSError (the caller logs it: losing the
    state is never worth interrupting the user)."""
    ensure_private_dir(path.parent)
    data = {"version": STATE_VERSION, "last_session": state.last_session, "draft": state.draft}
    write_atomic(path, tomli_w.dumps(data).encode("utf-8"))


def _move_aside(path: Path, reason: str) -> None:
    log.warning("unreadable state file %s (%s): moved aside, starting afresh", path, reason)
    with contextlib.suppress(OSError):
        os.replace(path, path.with_name(path.name + ".corrupt"))
