"""JSON bytes -> Session (or the sidebar's summary of one), every field checked.

Strict about types, lenient about extra keys (see schema.py): a ValueError names the first
bad field; a file from a newer qwen-tui raises NewerSchemaError. Older versions are
migrated first.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_tui.attachment import KINDS, Attachment
from qwen_tui.conversation import GenerationSettings, GenerationStats, Message, Session
from qwen_tui.store.field_checks import (
    check,
    dataclass_values,
    require,
    require_time,
    short,
    type_name,
)
from qwen_tui.store.schema import ROLES, migrate


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
        raise ValueError(f"expected a JSON object, got {type_name(data)}")
    return data


def summary_from_dict(data: dict[str, Any], path: Path) -> SessionSummary:
    """Check the top-level fields only: fast enough for listing a thousand files.

    The file name is the session's id (see `session_from_dict`).
    """
    data = migrate(data)
    messages = require(data, "messages", list, "")
    # Cheap checks that keep list() and load() in agreement on most damaged files.
    require(data, "id", str, "")
    require(data, "system_prompt", str, "")
    require(data, "settings", dict, "")
    for number, message in enumerate(messages):  # the sidebar and `sessions` show times
        if isinstance(message, dict) and "created" in message:
            require_time(message, "created", f"messages[{number}]")
    return SessionSummary(
        id=path.name.removesuffix(".json"),
        title=require(data, "title", str, ""),
        created=require_time(data, "created", ""),
        updated=require_time(data, "updated", ""),
        message_count=len(messages),
        model=require(data, "model", str, ""),
        path=path,
        forked_from=require(data, "forked_from", str, ""),
        incomplete=any(isinstance(m, dict) and m.get("incomplete") is True for m in messages),
    )


def session_from_dict(data: dict[str, Any], session_id: str | None = None) -> Session:
    """Validate every field and build the Session; ValueError names the first bad field.

    `session_id` (the file name) wins over the `id` field, so a file copied to a new
    name is a new session instead of one that overwrites the original when saved.
    """
    data = migrate(data)
    stored_id = require(data, "id", str, "")
    settings = require(data, "settings", dict, "")
    path = [
        _message_from_dict(m, f"messages[{i}]")
        for i, m in enumerate(require(data, "messages", list, ""))
    ]
    branches = [
        _message_from_dict(m, f"branches[{i}]")
        for i, m in enumerate(require(data, "branches", list, ""))
    ]
    _check_tree(path, branches)
    return Session(
        id=session_id if session_id is not None else stored_id,
        title=require(data, "title", str, ""),
        created=require_time(data, "created", ""),
        updated=require_time(data, "updated", ""),
        model=require(data, "model", str, ""),
        system_prompt=require(data, "system_prompt", str, ""),
        settings=GenerationSettings(**dataclass_values(GenerationSettings, settings, "settings")),
        messages=path,
        branches=branches,
        forked_from=require(data, "forked_from", str, ""),
    )


def _check_tree(path: list[Message], branches: list[Message]) -> None:
    """Ids are unique, the path links each message to the one before, and every branch
    hangs, through its parents, from the path or the root (no loops, no missing parent)."""
    where = {}
    for name, messages in (("messages", path), ("branches", branches)):
        for index, message in enumerate(messages):
            if message.id in where:
                raise ValueError(f"{name}[{index}].id: {short(message.id)} is used twice")
            where[message.id] = f"{name}[{index}]"
    for index, message in enumerate(path):
        expected = path[index - 1].id if index else None
        if message.parent != expected:
            raise ValueError(
                f"messages[{index}].parent: expected {short(expected)} (the message before "
                f"it on the path), got {short(message.parent)}"
            )
    parents = {m.id: m.parent for m in branches}
    on_path = {m.id for m in path}
    for index, message in enumerate(branches):
        parent, steps = message.parent, 0
        while parent is not None and parent not in on_path:
            if parent not in parents:
                raise ValueError(f"branches[{index}].parent: no message has id {short(parent)}")
            parent, steps = parents[parent], steps + 1
            if steps > len(branches):
                raise ValueError(f"branches[{index}].parent: the parents go round in a loop")


def _message_from_dict(data: Any, where: str) -> Message:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type_name(data)}")
    role = require(data, "role", str, where)
    if role not in ROLES:
        raise ValueError(f"{where}.role: expected one of {', '.join(ROLES)}, got {short(role)}")
    stats = data.get("stats")
    if stats is not None and not isinstance(stats, dict):
        raise ValueError(f"{where}.stats: expected an object or null, got {type_name(stats)}")
    incomplete = data.get("incomplete", False)
    check(incomplete, bool, f"{where}.incomplete")
    attachments = data.get("attachments", [])
    check(attachments, list, f"{where}.attachments")
    return Message(
        id=require(data, "id", str, where),
        parent=check(data.get("parent"), str | None, f"{where}.parent"),
        role=role,
        content=require(data, "content", str, where),
        created=require_time(data, "created", where),
        incomplete=incomplete,
        attachments=tuple(
            _attachment_from_dict(a, f"{where}.attachments[{i}]") for i, a in enumerate(attachments)
        ),
        stats=(
            GenerationStats(**dataclass_values(GenerationStats, stats, f"{where}.stats"))
            if stats is not None
            else None
        ),
    )


def _attachment_from_dict(data: Any, where: str) -> Attachment:
    if not isinstance(data, dict):
        raise ValueError(f"{where}: expected an object, got {type_name(data)}")
    kind = require(data, "kind", str, where)
    if kind not in KINDS:
        raise ValueError(f"{where}.kind: expected one of {', '.join(KINDS)}, got {short(kind)}")
    return Attachment(
        kind=kind,
        label=require(data, "label", str, where),
        text=require(data, "text", str, where),
        exit_status=check(data.get("exit_status"), int | None, f"{where}.exit_status"),
        truncated=check(data.get("truncated", False), bool, f"{where}.truncated"),
    )
