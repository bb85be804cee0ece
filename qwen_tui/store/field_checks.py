"""Checks of the values read from a session file, with messages that name the field.

The types are checked by typed_fields (the one checker, shared with config.toml); this says
what went wrong in JSON's words ("expected an integer or null, got a string 'x'"), and checks
what only session files have (timestamps a date can show). Each check returns the value or
raises ValueError naming the field, e.g. `messages[3].stats.ttft_s`.
"""

from __future__ import annotations

from typing import Any

from qwen_tui.typed_fields import Mismatch, checked, field_types, type_words

LATEST_TIME = 253402300799.0
"""23:59:59 on 31 December 9999 UTC: the last second `time.localtime` and every date
format can show. Timestamps beyond it (or NaN, ±Infinity, negative) are damage."""


def dataclass_values(cls: type, data: dict[str, Any], where: str) -> dict[str, Any]:
    """Type-checked values for the fields of `cls` present in `data` (others: defaults)."""
    values = {}
    for name, annotation in field_types(cls).items():
        if name in data:
            values[name] = check(data[name], annotation, f"{where}.{name}")
    return values


def require(data: dict[str, Any], key: str, expected: Any, where: str) -> Any:
    name = f"{where}.{key}" if where else key
    if key not in data:
        raise ValueError(f"{name}: missing")
    return check(data[key], expected, name)


def require_time(data: dict[str, Any], key: str, where: str) -> float:
    """A timestamp: a number of seconds between 1970 and the end of year 9999."""
    value = require(data, key, float, where)
    if not 0 <= value <= LATEST_TIME:  # also false for NaN
        name = f"{where}.{key}" if where else key
        raise ValueError(f"{name}: expected a time between 1970 and 9999, got {short(value)}")
    return value


def check(value: Any, expected: Any, name: str) -> Any:
    """`value` if it has type `expected` (int counts as float, bool never as a number)."""
    try:
        # NaN/inf are accepted: json writes them and a reader must take back what was written.
        return checked(value, expected, finite=False)
    except Mismatch:
        wanted = type_words(expected, TYPE_WORDS)
        raise ValueError(
            f"{name}: expected {wanted}, got {type_name(value)} {short(value)}"
        ) from None


TYPE_WORDS = {
    str: "a string",
    int: "an integer",
    float: "a number",
    bool: "true/false",
    list: "a list",
    dict: "an object",
    type(None): "null",
}


def type_name(value: Any) -> str:
    return TYPE_WORDS.get(type(value), type(value).__name__)


def short(value: Any, limit: int = 40) -> str:
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"
