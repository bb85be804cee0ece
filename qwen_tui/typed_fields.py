"""Check an untyped value (from TOML or JSON) against a dataclass field's type annotation.

config.toml and session files both arrive as plain dicts that must become frozen
dataclasses; each used to carry its own checker, and they had started to disagree (one let
bool pass as a number in places the other did not). This is the one checker: it knows the
field types of a dataclass, whether a value has a type (bool is never a number, an int is
fine for a float, enums by value, unions and None), and the words for a type. The callers
keep their own message formats, which users and tests see.
"""

from __future__ import annotations

import enum
import math
import types
import typing
from collections.abc import Mapping
from dataclasses import fields
from functools import cache
from typing import Any


class Mismatch(ValueError):
    """The value does not have the expected type."""


@cache
def field_types(cls: type) -> dict[str, Any]:
    """Field name -> resolved type annotation, for a dataclass."""
    hints = typing.get_type_hints(cls)
    return {f.name: hints[f.name] for f in fields(cls)}


def options(expected: Any) -> tuple[Any, ...]:
    """The types a value may have: the members of a union, else `expected` alone."""
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        return typing.get_args(expected)
    return (expected,)


def checked(value: Any, expected: Any, *, finite: bool) -> Any:
    """`value` as type `expected` (an int becomes a float), or raise Mismatch.

    `finite`: NaN and infinities are not numbers (TOML); JSON readers pass False, since
    `json` writes them and a reader must take back what was written.
    """
    for option in options(expected):
        if option is float and _is_number(value):
            try:
                number = float(value)
            except OverflowError:  # an integer beyond float range
                continue
            if not finite or math.isfinite(number):
                return number
            continue
        if option is int and isinstance(value, int) and not isinstance(value, bool):
            return value
        if isinstance(option, type) and issubclass(option, enum.Enum):
            try:
                return option(value)
            except (ValueError, TypeError):
                continue
        if isinstance(option, type) and type(value) is option:
            return value
    raise Mismatch(value)


def has_type(value: Any, expected: Any, *, finite: bool) -> bool:
    try:
        checked(value, expected, finite=finite)
    except Mismatch:
        return False
    return True


def type_words(expected: Any, words: Mapping[Any, str], *, with_none: bool = True) -> str:
    """`expected` in words ("an integer or null"), from the caller's vocabulary."""
    wanted = [o for o in options(expected) if with_none or o is not type(None)] or [expected]
    return " or ".join(words.get(o, getattr(o, "__name__", str(o))) for o in wanted)


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)
