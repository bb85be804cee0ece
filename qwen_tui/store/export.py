"""A session written elsewhere than the sessions folder, always through the atomic writer:
as a Markdown document (what ctrl+e writes), or as a copy in the session file's format
(quitting with a session that could not be saved)."""

from __future__ import annotations

import re
import time
from pathlib import Path

from qwen_tui.conversation import ROLE_LABELS, Session
from qwen_tui.stats_text import reply_stats_line
from qwen_tui.store.atomic import write_atomic
from qwen_tui.store.session_writing import dumps, session_to_dict
from qwen_tui.visible_text import one_line, visible_text
from qwen_tui.well_formed import well_formed


def session_markdown(session: Session) -> str:
    """Title, system prompt, then each message under a heading; stats as a note."""
    title = one_line(session.title) or "Untitled session"
    try:
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(session.created))
    except (OverflowError, ValueError, OSError):  # a time no calendar shows (NaN, 1e20)
        when = "unknown date"
    parts = [f"# {title}", f"*{when}{' · ' + one_line(session.model) if session.model else ''}*"]
    parts.append(f"**System:** {visible_text(session.system_prompt)}")
    for message in session.messages:
        parts.append(f"## {ROLE_LABELS.get(message.role, message.role)}")
        # Attachments as the model read them: fenced blocks after the typed text.
        parts.append(visible_text(message.for_model().content).rstrip() or "*(empty)*")
        note = reply_stats_line(message.stats) if message.stats else ""
        if message.stopped:
            note = f"{note} · stopped" if note else "stopped"
        if message.error:
            note = f"{note} · failed: {one_line(message.error)}" if note else "failed"
        if note:
            parts.append(f"*{note}*")
    return "\n\n".join(parts) + "\n"


def default_export_path(session: Session, folder: Path) -> Path:
    """`<folder>/<title-slug>.md`, with -2, -3... so an existing file is never the default."""
    slug = re.sub(r"[^a-z0-9]+", "-", session.title.lower()).strip("-")[:40] or session.id
    candidate = folder / f"{slug}.md"
    number = 2
    while candidate.exists():
        candidate = folder / f"{slug}-{number}.md"
        number += 1
    return candidate


def write_export(session: Session, path: Path) -> None:
    """Write the Markdown, readable by the owner only (sessions hold private text), through
    the atomic writer: a failure (disk full, a bad value) leaves no empty or half file."""
    data = well_formed(session_markdown(session)).encode("utf-8")
    path.parent.mkdir(parents=True, exist_ok=True)
    write_atomic(path, data)


def write_session_copy(session: Session, path: Path) -> None:
    """The session file's content at `path` (atomic, 0600): copied back into the sessions
    folder later, it opens like any other session."""
    write_atomic(path, dumps(session_to_dict(session)))
