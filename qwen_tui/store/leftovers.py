"""Files a crash leaves in the sessions folder: temp files of a save, locks guarding nothing.

A process killed mid-save leaves its temp file; one killed before its new session was
first saved leaves a lock file with no session. Neither belongs to anyone once it is old
(or, for a lock, once nobody holds it), so listing the sessions tidies them away.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from qwen_tui.store import lock as locks
from qwen_tui.store.atomic import TEMP_SUFFIX
from qwen_tui.store.lock import LOCK_SUFFIX
from qwen_tui.store.session_files import SAFE_ID, SUFFIX

STALE_SECONDS = 24 * 3600
"""A leftover this old belongs to nobody."""


def remove_lock_file(path: Path) -> None:
    """Remove the lock file of a session that has no file (deleted, or never saved by a
    process that died), taking the lock first so that nobody is holding it."""
    if locks.held_here(path):
        return  # released later by its holder here, which removes the file then
    try:
        locks.acquire(path).release()  # release() removes a lock file guarding nothing
    except (locks.LockTakenError, OSError):
        return


def remove_orphan_lock_files(folder: Path) -> None:
    cutoff = time.time() - STALE_SECONDS
    for path in folder.glob(f"*{SUFFIX}{LOCK_SUFFIX}"):
        session_id = path.name.removesuffix(SUFFIX + LOCK_SUFFIX)
        with contextlib.suppress(OSError):
            if (
                SAFE_ID.fullmatch(session_id)
                and path.stat().st_mtime < cutoff
                and not locks.guarded_file(path).exists()
            ):
                remove_lock_file(path)


def remove_stale_temp_files(folder: Path) -> None:
    cutoff = time.time() - STALE_SECONDS
    for temp in folder.glob(f".*{SUFFIX}.*{TEMP_SUFFIX}"):
        with contextlib.suppress(OSError):
            if temp.stat().st_mtime < cutoff:
                temp.unlink()
