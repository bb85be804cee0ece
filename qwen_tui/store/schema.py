"""Session <-> JSON: the on-disk layout, its versions, strict validation and migrations.

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

Reading is strict about types (a ValueError names the bad field) and lenient about extra
keys, so a file written by a later release of the same schema version still loads.
Settings and stats fields may be missing (they take their defaults): new ones can be added
to the dataclasses without a version bump.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_tui.attachment import KINDS, Attachment
from qwen_tui.conversation import GenerationSettings, GenerationStats, Message, Session
from qwen_tui.typed_fields import Mismatch, checked, field_types, type_words

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

_SURROGATE = re.compile("[\ud800-\udfff]")
LATEST_TIME = 253402300799.0
"""23:59:59 on 31 December 9999 UTC: the last second `time.localtime` and every date
format can show. Timestamps beyond it (or NaN, ±Infinity, negative) are damage."""


@dataclass(frozen=True)
class SessionSummary:
    """What the sidebar shows for one session, read without building its messages."""

    id: str
    title: str
    created: float
    updated: float
    message_count: int
    model: str
    path: Path
    forked_from: str = ""
    """The id of the session this one was forked from ("" if none)."""
    incomplete: bool = False
    """A reply in it is marked incomplete: being written now, or interrupted if nobody
    holds the session (`SessionStore.holder()`)."""


# ---------------------------------------------------------------- writing


def written_version(session: Session) -> int:
    """The layout `session` is written in: the flat one while the tree is the newest layout
    and the session does not need it (no branches, not a fork); else the newest. A later
    version that changes anything else is written for every session."""
    flat = SCHEMA_VERSION == TREE_VERSION and not (session.branches or session.forked_from)
    return FLAT_VERSION if flat else SCHEMA_VERSION


def session_to_dict(session: Session) -> dict[str, Any]:
    version = written_version(session)
    if version == FLAT_VERSION:
        return _flat_dict(session)
    path = [
        _tree_node(m, session.messages[i - 1].id if i else None)
        for i, m in enumerate(session.messages)
    ]
    return {
        **_flat_dict(session),
        "schema_version": version,
        "messages": path,
        "branches": [_tree_node(m, m.parent) for m in session.branches],
        "forked_from": session.forked_from,
    }


def _tree_node(message: Message, parent: str | None) -> dict[str, Any]:
    return {"id": message.id, "parent": parent, **_message_to_dict(message)}


def _flat_dict(session: Session) -> dict[str, Any]:
    return {
        "schema_version": FLAT_VERSION,
        "id": session.id,
        "title": session.title,
        "created": session.created,
        "updated": session.updated,
        "model": session.model,
        "system_prompt": session.system_prompt,
        "settings": session.settings.to_dict(),
        "messages": [_message_to_dict(m) for m in session.messages],
    }


def _message_to_dict(message: Message) -> dict[str, Any]:
    data = {
        "role": message.role,
        "content": message.content,
        "created": message.created,
        "incomplete": message.incomplete,
        "stats": message.stats.to_dict() if message.stats else None,
    }
    if message.attachments:
        data["attachments"] = [a.to_dict() for a in message.attachments]
    return data


def dumps(data: dict[str, Any]) -> bytes:
    """UTF-8 JSON that keeps non-ASCII text readable and still round-trips any Python str.

    `ensure_ascii=False` leaves lone surrogates (e.g. from surrogateescape'd terminal
    input) as raw code points, which UTF-8 cannot encode; they are written as \\uXXXX
    escapes instead. A raw surrogate can only occur inside a JSON string literal, so the
    substitution is always valid JSON. One unavoidable exception: a high surrogate
    directly followed by a low one reads back as the single character they encode, as
    the JSON standard requires.
    """
    text = json.dumps(data, ensure_ascii=False, indent=1)
    text = _SURROGATE.sub(lambda m: f"\\u{ord(m.group()):04x}", text)
    return (text + "\n").encode("utf-8")


# ---------------------------------------------------------------- reading


def loads(raw: bytes) -> dict[str, Any]:
    """Parse a session file's bytes; ValueError for anything that is not a JSON object."""
    try:
        # utf-8-sig: tolerate a BOM from an editor; never guess other encodings.
        data = json.loads(raw.decode("utf-8-sig"))
    except UnicodeDecodeError as error:
        raise ValueError(f"not UTF-8 text (byte {error.start})") from None
    except ValueError as error:  # JSONDecodeError, or an integer of over 4300 digits
        raise ValueError(f"not valid JSON: {error}") from None
    except RecursionError:
        raise ValueError("not valid JSON: nested too deeply") from None
    if not isinstance(data, dict):
        raise ValueError(f"expected a JSON object, got {_type_name(data)}")
    return data


def migrate(data: dict[str, Any]) -> dict[str, Any]:
    """Bring a dict of any known schema version up to SCHEMA_VERSION, one step at a time."""
    version = _require(data, "schema_version", int, "")
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


def summary_from_dict(data: dict[str, Any], path: Path) -> SessionSummary:
    """Check the top-level fields only: fast enough for listing a thousand files.

    The file name is the session's id (see `session_from_dict`).
    """
    data = migrate(data)
    messages = _require(data, "messages", list, "")
    # Cheap checks that keep list() and load() in agreement on most damaged files.
    _require(data, "id", str, "")
    _require(data, "system_prompt", str, "")
    _require(data, "settings", dict, "")
    for number, message in enumerate(messages):  # the sidebar and `sessions` show times
        if isinstance(message, dict) and "created" in message:
            _require_time(message, "created", f"messages[{number}]")
    return SessionSummary(
        id=path.name.removesuffix(".json"),
        title=_require(data, "title", str, ""),
        created=_require_time(data, "created", ""),
        updated=_require_time(data, "updated", ""),
        message_count=len(messages),
        model=_require(data, "model", str, ""),
        path=path,
        forked_from=_require(data, "forked_from", str, ""),
        incomplete=any(isinstance(m, dict) and m.get("incomplete") is True for m in messages),
    )


def session_from_dict(data: dict[str, Any], session_id: str | None = None) -> Session:
    """Validate every field and build the Session; ValueError names the first bad field.

    `session_id` (the file name) wins over the `id` field, so a file copied to a new
    name is a new session instead of one that overwrites the original when saved.
    """
    data = migrate(data)
    stored_id = _require(data, "id", str, "")
    settings = _require(data, "settings", dict, "")
    path = [
        _message_from_dict(m, f"messages[{i}]")
        for i, m in enumerate(_require(data, "messages", list, ""))
    ]
    branches = [
        _message_from_dict(m, f"branches[{i}]")
        for i, m in enumerate(_require(data, "branches", list, ""))
    ]
    _check_tree(path, branches)
    return Session(
        id=session_id if session_id is not None else stored_id,
        title=_require(data, "title", str, ""),
        created=_require_time(data, "created", ""),
        updated=_require_time(data, "updated", ""),
        model=_require(data, "model", str, ""),
        system_prompt=_require(data, "system_prompt", str, ""),
        settings=GenerationSettings(**_dataclass_values(GenerationSettings, settings, "settings")),
        messages=path,
        branches=branches,
        forked_from=_require(data, "forked_from", str, ""),
    )


def _check_tree(path: list[Message], branches: list[Message]) -> None:
    """Ids are unique, the path links each message to the one before, and every branch
    hangs, through its parents, from the path or the root (no loops, no missing parent)."""
    where = {}
    for name, messages in (("messages", path), ("branches", branches)):
        for index, message in enumerate(messages):
            if message.id in where:
                raise ValueError(f"{name}[{index}].id: {_short(message.id)} is used twice")
            where[message.id] = f"{name}[{index}]"
    for index, message in enumerate(path):
        expected = path[index - 1].id if index else None
        if message.parent != expected:
            raise ValueError(
                f"messages[{index}].parent: expected {_short(expected)} (the message before "
                f"it on the path), got {_short(message.parent)}"
            )
    parents = {m.id: m.parent for m in branches}
    on_path = {m.id for m in path}
    for index, message in enumerate(branches):
        parent, steps = message.parent, 0
        while parent is not None and parent not in on_path:
            if parent not in parents:
                raise ValueError(f"branches[{index}].parent: no message has id {_short(parent)}")
            parent, steps = parents[parent], steps + 1
            if steps > len(branches):
                raise ValueError(f"branches[{index}].parent: the parents go round in a loop")


def _message_from_dict(data: Any, where: str) -> Message:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {_type_name(data)}")
    role = _require(data, "role", str, where)
    if role not in ROLES:
        raise ValueError(f"{where}.role: expected one of {', '.join(ROLES)}, got {_short(role)}")
    stats = data.get("stats")
    if stats is not None and not isinstance(stats, dict):
        raise ValueError(f"{where}.stats: expected an object or null, got {_type_name(stats)}")
    incomplete = data.get("incomplete", False)
    _check(incomplete, bool, f"{where}.incomplete")
    attachments = data.get("attachments", [])
    _check(attachments, list, f"{where}.attachments")
    return Message(
        id=_require(data, "id", str, where),
        parent=_check(data.get("parent"), str | None, f"{where}.parent"),
        role=role,
        content=_require(data, "content", str, where),
        created=_require_time(data, "created", where),
        incomplete=incomplete,
        attachments=tuple(
            _attachment_from_dict(a, f"{where}.attachments[{i}]") for i, a in enumerate(attachments)
        ),
        stats=(
            GenerationStats(**_dataclass_values(GenerationStats, stats, f"{where}.stats"))
            if stats is not None
            else None
        ),
    )


def _attachment_from_dict(data: Any, where: str) -> Attachment:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {_type_name(data)}")
    kind = _require(data, "kind", str, where)
    if kind not in KINDS:
        raise ValueError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {_short(kind)}")
    return Attachment(
        kind=kind,
        label=_require(data, "label", str, where),
        text=_require(data, "text", str, where),
        exit_status=_check(data.get("exit_status"), int | None, f"{where}.exit_status"),
        truncated=_check(data.get("truncated", False), bool, f"{where}.truncated"),
    )


def _dataclass_values(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """Type-checked values for the fields of `cls` present in `data` (others: defaults)."""
    values = {}
    for name, annotation in field_types(cls).items():
        if name in data:
            values[name] = _check(data[name], annotation, f"{where}.{name}")
    return values


def _require(data: dict[str, Any], key: str, expected: Any, where: str) -> Any:
    name = f"{where}.{key}" if where else key
    if key not in data:
        raise ValueError(f"{name}: missing")
    return _check(data[key], expected, name)


def _require_time(data: dict[str, Any], key: str, where: str) -> float:
    """A timestamp: a number of seconds between 1970 and the end of year 9999."""
    value = _require(data, key, float, where)
    if not 0 <= value <= LATEST_TIME:  # also false for NaN
        name = f"{where}.{key}" if where else key
        raise ValueError(f"{name}: expected a time between 1970 and 9999, got {_short(value)}")
    return value


def _check(value: Any, expected: Any, name: str) -> Any:
    """`value` if it has type `expected` (int counts as float, bool never as a number)."""
    try:
        # NaN/inf are accepted: json writes them and a reader must take back what was written.
        return checked(value, expected, finite=False)
    except Mismatch:
        wanted = type_words(expected, _TYPE_WORDS)
        raise ValueError(
            f"{name}: expected {wanted}, got {_type_name(value)} {_short(value)}"
        ) from None


_TYPE_WORDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def _type_name(value: Any) -> str:
    return _TYPE_WORDS.get(type(value), type(value).__name__)


def _short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
