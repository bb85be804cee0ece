"""The session file's layout: its versions, which one a session is written in, migrations.

The flat layout (schema_version 1)::

    {"schema_version": 1, "id": str, "title": str, "created": float, "updated": float,
     "model": str, "system_prompt": str, "settings": {GenerationSettings fields},
     "messages": [{"role": "system"|"user"|"assistant", "content": str, "created": float,
                   "incomplete": bool, "stats": {GenerationStats fields} | null,
                   "attachments": [{"kind": "file"|"command"|"stdin", "label": str,
                                    "text": str, "exit_status": int | null,
                                    "truncated": bool}]}]}

"attachments" came later within version 1: a message without it has none, and it is only
written when a message has some, so sessions without attachments stay byte-for-byte what
older releases wrote. (An older release reading a session with attachments loads it
without them.)

The tree layout (schema_version 2) is version 1 plus::

    "messages": [{"id": str, "parent": str | null, ...}],   the active path, in order
    "branches": [{"id": str, "parent": str | null, ...}],   every other message
    "forked_from": str                                        a session id, or ""

Each message names its parent; the active path's first message has none and each next one
names the one before it. "branches" holds the other replies and earlier edits in the order
they left the active path (`conversation_tree`). Version 1 files read as a tree with one
path (migration 1 -> 2 numbers their messages). A session with no branches and no fork
origin is still written in version 1's layout: byte for byte what earlier releases wrote,
so they keep reading it. Only a session with branches (or forked from another) is written
as version 2, which a release knowing version 1 only refuses ("upgrade qwen-tui to open
it") rather than loading it without its branches.

Reading (session_reading.py) is strict about types (a ValueError names the bad field) and
lenient about extra keys, so a file written by a later release of the same schema version
still loads. Settings and stats fields may be missing (they take their defaults): new ones
can be added to the dataclasses without a version bump. Writing is session_writing.py.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from qwen_tui.conversation import Session
from qwen_tui.store.field_checks import require

SCHEMA_VERSION = 2
"""The newest layout this release reads and writes: the tree."""
TREE_VERSION = 2
"""The version that added branches (`written_version`)."""
FLAT_VERSION = 1
"""The layout sessions without branches are written in (see the module's docstring)."""
ROLES = ("system", "user", "assistant")


class NewerSchemaError(ValueError):
    """The file was written by a newer qwen-tui: not damage, so it is left where it is."""


Migration = Callable[[dict[str, Any]], dict[str, Any]]


def _tree_from_flat(data: dict[str, Any]) -> dict[str, Any]:
    """1 -> 2: the flat list becomes the active path of a tree without branches."""
    messages = data.get("messages")
    if isinstance(messages, list):
        numbered, parent = [], None
        for number, message in enumerate(messages, 1):
            if isinstance(message, dict):  # anything else is reported by the validation
                message = {**message, "id": f"m{number}", "parent": parent}
                parent = message["id"]
            numbered.append(message)
        data = {**data, "messages": numbered}
    return {**data, "branches": [], "forked_from": ""}


MIGRATIONS: dict[int, Migration] = {1: _tree_from_flat}
"""Step N turns a version-N dict into a version-N+1 dict."""


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a dict of any known schema version up to SCHEMA_VERSION, one step at a time."""
    version = require(data, "schema_version", int, "")
    if version > SCHEMA_VERSION:
        raise NewerSchemaError(
            f"schema_version {version} is newer than this qwen-tui understands "
            f"({SCHEMA_VERSION}): upgrade qwen-tui to open it"
        )
    if version < 1:
        raise ValueError(f"schema_version: expected 1 or more, got {version}")
    while version < SCHEMA_VERSION:
        data = MIGRATIONS[version](data)
        version += 1
        data["schema_version"] = version
    return data


def written_version(session: Session) -> int:
    """The layout `session` is written in: the flat one while the tree is the newest layout
    and the session does not need it (no branches, not a fork); else the newest. A later
    version that changes anything else is written for every session."""
    flat = SCHEMA_VERSION == TREE_VERSION and not (session.branches or session.forked_from)
    return FLAT_VERSION if flat else SCHEMA_VERSION
