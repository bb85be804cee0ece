"""What a good config.toml value is: types, ranges, the [keys] and [[remotes]] rules.

Each section's keys are the fields of its dataclass (types checked by typed_fields, the
checker session files use too); the constraints say what a good value looks like, in the
words the error message shows. A mistake raises ConfigError through the Reporter, which
adds the file and line.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import typing
from collections.abc import Callable
from functools import cache
from typing import Any
from urllib.parse import urlsplit

from qwen_tui.actions import ACTIVE_TOGETHER, DEFAULT_KEYS
from qwen_tui.config import (
    REMOTE_PREFIX,
    HubConfig,
    ModelConfig,
    RemoteConfig,
    UIConfig,
)
from qwen_tui.config_lines import Reporter, known_words
from qwen_tui.conversation import SETTING_BOUNDS, Bound, GenerationSettings
from qwen_tui.low_bit import LOW_BIT_FORMATS
from qwen_tui.typed_fields import checked, field_types, has_type, type_words


def threads_bound() -> Bound:
    """CPU threads for generation: 0 (one per physical core) up to twice the CPUs. More
    only slows decoding down (10,000 took 274 s for 5 tokens), and 100,000 crashed torch."""
    cpus = os.cpu_count() or 1
    return Bound(
        0,
        2 * cpus,
        f"an integer from 0 (one per physical core) to {2 * cpus} (twice this machine's "
        f"{cpus} CPUs)",
        integer=True,
    )


# (section, key) -> (test, what a good value looks like); types are checked before these.
Constraint = tuple[Callable[[Any], bool], str]
_CONSTRAINTS: dict[tuple[str, str], Constraint] = {
    ("model", "threads"): (lambda v: threads_bound().allows(v), threads_bound().words),
    ("model", "low_bit"): (lambda v: v in LOW_BIT_FORMATS, f"one of {', '.join(LOW_BIT_FORMATS)}"),
    # The sampling bounds live with GenerationSettings: the CLI and the dialog use them too.
    **{("generation", name): (bound.allows, bound.words) for name, bound in SETTING_BOUNDS.items()},
    ("hub", "endpoint"): (
        lambda v: v == "" or _is_http_url(v),
        'an http:// or https:// URL (or "" for the default)',
    ),
    ("remotes", "name"): (
        lambda v: re.fullmatch(r"[A-Za-z0-9][A-Za-z0-9._-]*", v) is not None,
        "a short name of letters, digits, '.', '_' and '-'",
    ),
    ("remotes", "base_url"): (lambda v: _is_http_url(v), "an http:// or https:// URL"),
    ("remotes", "model"): (lambda v: v.strip() != "", "the model id the server knows"),
    ("remotes", "api_key_env"): (
        lambda v: re.fullmatch(r"([A-Za-z_][A-Za-z0-9_]*)?", v) is not None,
        "the NAME of an environment variable holding the key (e.g. OPENAI_API_KEY), "
        "not the key itself",
    ),
    ("remotes", "context_length"): (lambda v: v >= 1, "an integer >= 1"),
    ("remotes", "connect_timeout"): (lambda v: v > 0, "a number of seconds > 0"),
    ("remotes", "read_timeout"): (lambda v: v > 0, "a number of seconds > 0"),
}
_REMOTE_REQUIRED = ("name", "base_url", "model")
# [generation] also holds the system prompt, which lives on Config, not GenerationSettings.
_EXTRA_KEYS: dict[str, dict[str, type]] = {"generation": {"system_prompt": str}}
_SECTIONS: dict[str, type] = {
    "model": ModelConfig,
    "generation": GenerationSettings,
    "hub": HubConfig,
    "ui": UIConfig,
    "remotes": RemoteConfig,
}
_TABLES = ("model", "generation", "hub", "ui")
"""Sections written as one [table]; `remotes` is an array of tables, `keys` a free table."""
_ALL_SECTIONS = (*_TABLES, "keys", "remotes")


def section_values(name: str, value: Any, report: Reporter) -> Any:
    """The checked values of one top-level table (a list of them for [[remotes]])."""
    if name not in _ALL_SECTIONS:
        _unknown_top_level(name, value, report)
    if name == "remotes":
        return _remotes(value, report)
    if not isinstance(value, dict):
        report.fail(name, None, f"expected a table [{name}], got {_show(value)}")
    return _keys(value, report) if name == "keys" else _section_values(name, value, report)


def _section_values(
    section: str, table: dict[str, Any], report: Reporter, entry: int | None = None
) -> dict[str, Any]:
    types_by_key = _field_types(section)
    values = {}
    for key, value in table.items():
        if section == "remotes" and key in _SECRET_KEYS:
            report.fail(section, key, _NO_SECRETS, entry)
        if key not in types_by_key:
            report.unknown_key(section, key, list(types_by_key), entry=entry)
        expected = types_by_key[key]
        if not has_type(value, expected, finite=True):
            problem = f"expected {_type_words(expected)}, got {_show(value)}"
            report.fail(section, key, problem, entry)
        test, wanted = _CONSTRAINTS.get((section, key), (lambda _: True, ""))
        if not test(value):
            report.fail(section, key, f"expected {wanted}, got {_show(value)}", entry)
        values[key] = checked(value, expected, finite=True)
    return values


_SECRET_KEYS = ("api_key", "apikey", "key", "token", "secret")
_NO_SECRETS = (
    "qwen-tui does not read API keys from files: put the key in an environment variable "
    "and name that variable in api_key_env"
)


def _unknown_top_level(name: str, value: Any, report: Reporter) -> typing.NoReturn:
    if isinstance(value, dict):
        close = difflib.get_close_matches(name, _ALL_SECTIONS, n=1)
        hint = f"did you mean [{close[0]}]?" if close else known_words("sections", _ALL_SECTIONS)
        report.fail(name, None, f"unknown section, {hint}")
    home = [s for s in _SECTIONS if name in _field_types(s)]
    table = (f"[[{home[0]}]]" if home[0] == "remotes" else f"[{home[0]}]") if home else ""
    hint = f"put it under {table}" if home else known_words("sections", _ALL_SECTIONS)
    report.fail_at_top(name, f"unknown top-level key, {hint}")


def check_default_remote(
    model: ModelConfig, remotes: tuple[RemoteConfig, ...], report: Reporter
) -> None:
    if not model.default.startswith(REMOTE_PREFIX):
        return
    if any(remote.model_name == model.default for remote in remotes):
        return
    names = ", ".join(remote.model_name for remote in remotes)
    hint = f"known: {names}" if names else "add one"
    wanted = model.default.removeprefix(REMOTE_PREFIX)
    report.fail("model", "default", f"no [[remotes]] entry is named {_show(wanted)}; {hint}")


def _remotes(value: Any, report: Reporter) -> list[dict[str, Any]]:
    """[[remotes]] entries: each complete, and no two with the same name."""
    if not isinstance(value, list) or not all(isinstance(item, dict) for item in value):
        got = "a table [remotes]" if isinstance(value, dict) else _show(value)
        report.fail(
            "remotes", None, f"expected [[remotes]] entries (an array of tables), got {got}"
        )
    entries = [_section_values("remotes", t, report, n) for n, t in enumerate(value, 1)]
    first_with_name: dict[str, int] = {}
    for number, entry in enumerate(entries, 1):
        missing = [key for key in _REMOTE_REQUIRED if key not in entry]
        if missing:
            report.fail("remotes", None, f"missing {', '.join(missing)} (required)", number)
        earlier = first_with_name.setdefault(entry["name"], number)
        if earlier != number:
            problem = f"{_show(entry['name'])} already names [[remotes]] #{earlier}"
            report.fail("remotes", "name", problem, number)
    return entries


@cache
def _field_types(section: str) -> dict[str, Any]:
    return field_types(_SECTIONS[section]) | _EXTRA_KEYS.get(section, {})


_UNTYPED_KEYS = frozenset(
    {"delete", "insert", "home", "end", "pageup", "pagedown", "backspace", "escape", "enter"}
    | {"tab", "up", "down", "left", "right"}
)
"""Keys that type no text (besides ctrl+, alt+ and f1..f24)."""


def _types_text(key: str) -> bool:
    """Whether `key` (a Textual key name) types a character: "r", "slash", "shift+r"."""
    key = key.strip()
    if key.startswith(("ctrl+", "alt+")) or key in _UNTYPED_KEYS:
        return False
    return re.fullmatch(r"f\d{1,2}", key) is None


def _keys(table: dict[str, Any], report: Reporter) -> dict[str, str]:
    for binding, keys in table.items():
        if binding not in DEFAULT_KEYS:
            report.unknown_key("keys", binding, list(DEFAULT_KEYS), what="binding id")
        parts = keys.split(",") if isinstance(keys, str) else []
        if not parts or not all(p.strip() and " " not in p.strip() for p in parts):
            wanted = 'a key such as "ctrl+n" (or several: "ctrl+n,f3")'
            report.fail("keys", binding, f"expected {wanted}, got {_show(keys)}")
        typed = [p.strip() for p in parts if _types_text(p)]
        if binding.startswith("sidebar.") and binding != "sidebar.toggle" and typed:
            report.fail(
                "keys",
                binding,
                f"{_show(typed[0])} types text, and text typed in the session list goes to "
                "the prompt: use ctrl+ or alt+ with it, an f key, delete or insert",
            )
    _check_clashes(table, report)
    return dict(table)


def _check_clashes(table: dict[str, Any], report: Reporter) -> None:
    """Bindings active at the same time (actions.ACTIVE_TOGETHER): one key, one action."""
    for together in ACTIVE_TOGETHER:
        owner: dict[str, str] = {}
        for binding in together:
            keys = table.get(binding, DEFAULT_KEYS[binding])
            for key in (k.strip() for k in keys.split(",")):
                other = owner.setdefault(key, binding)
                if other != binding:
                    culprit, first = (binding, other) if binding in table else (other, binding)
                    report.fail(
                        "keys",
                        culprit,
                        f"{_show(key)} is also bound to {_show(first)}: one key, one action",
                    )


_TYPE_WORDS = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}


def _type_words(expected: Any) -> str:
    return type_words(expected, _TYPE_WORDS, with_none=False)


def _show(value: Any, limit: int = 50) -> str:
    """A TOML value the way the user wrote it, on one line (json escapes control chars)."""
    if isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, dict):
        text = "a table"
    elif isinstance(value, str | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
    else:
        text = str(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _is_http_url(value: str) -> bool:
    parts = urlsplit(value)
    return parts.scheme in ("http", "https") and bool(parts.netloc)
