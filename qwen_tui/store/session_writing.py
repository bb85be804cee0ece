"""Session -> JSON bytes, in the layout `schema.written_version` picks for it."""

from __future__ import annotations

import json
import re
from typing import Any

from qwen_tui.conversation import Message, Session
from qwen_tui.store.schema import FLAT_VERSION, written_version

_SURROGATE = re.compile("[\ud800-\udfff]")


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
