"""Where in config.toml a mistake is: the line of a section or key, and the message.

tomllib gives values without positions, so a mistake found after parsing is located by
scanning the text (approximately: good enough to look at) and raised as ConfigError with
`file:line: [section].key: problem`.
"""

from __future__ import annotations

import difflib
import json
import re
import typing
from pathlib import Path

from qwen_tui.config import ConfigError


class Reporter:
    """Raises ConfigError for a section/key, with the line found by scanning the text."""

    def __init__(self, path: Path, text: str) -> None:
        self.path = path
        # Not splitlines(): TOML ends lines with \n only; \x0c, \u2028... are not breaks.
        self.lines = text.split("\n")

    def fail(
        self, section: str, key: str | None, problem: str, entry: int | None = None
    ) -> typing.NoReturn:
        """`entry` numbers an array-of-tables entry from 1: `[[remotes]] #2.base_url`."""
        table = f"[{section}]" if entry is None else f"[[{section}]] #{entry}"
        name = f"{table}.{_toml_key(key)}" if key is not None else table
        raise ConfigError(f"{name}: {problem}", self.path, self._line(section, key, entry))

    def fail_at_top(self, name: str, problem: str) -> typing.NoReturn:
        """A top-level key (not a table) that has no place there."""
        raise ConfigError(f"{name}: {problem}", self.path, self._line(None, name))

    def unknown_key(
        self,
        section: str,
        key: str,
        known: list[str],
        what: str = "key",
        entry: int | None = None,
    ) -> typing.NoReturn:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {_toml_key(close[0])}?" if close else known_words(f"{what}s", known)
        self.fail(section, key, f"unknown {what}, {hint}", entry)

    def _line(self, section: str | None, key: str | None, entry: int | None = None) -> int | None:
        """Where the key (or section) is written; approximate, good enough to look at."""
        start, end = 0, len(self.lines)
        header = self._header(section, entry) if section is not None else None
        if header is not None:
            if key is None:
                return header + 1
            start = header
            following = self._find(_ANY_HEADER, header + 1, end)
            end = following if following is not None else end
        target = key if key is not None else section
        if target is None:
            return None
        pattern = _key_pattern(target)
        found = self._find(pattern, start, end)
        if found is None:  # dotted keys or inline tables elsewhere: `model.threads = 2`
            found = self._find(pattern, 0, len(self.lines))
        return found + 1 if found is not None else None

    def _header(self, section: str, entry: int | None) -> int | None:
        """The line index of `[section]`, or of the entry-th `[[section]]`."""
        if entry is None:
            return self._find(_header_pattern(section), 0, len(self.lines))
        pattern = _array_header_pattern(section)
        found = [i for i, line in enumerate(self.lines) if pattern.search(line)]
        return found[entry - 1] if entry <= len(found) else None

    def _find(self, pattern: re.Pattern[str], start: int, end: int) -> int | None:
        for index in range(start, end):
            line = self.lines[index]
            if pattern.search(line) and not line.lstrip().startswith("#"):
                return index
        return None


_ANY_HEADER = re.compile(r"^\s*\[")


def _header_pattern(section: str) -> re.Pattern[str]:
    name = re.escape(section)
    return re.compile(rf"""^\s*\[\s*(?:{name}|"{name}"|'{name}')\s*\]""")


def _array_header_pattern(section: str) -> re.Pattern[str]:
    name = re.escape(section)
    return re.compile(rf"""^\s*\[\[\s*(?:{name}|"{name}"|'{name}')\s*\]\]""")


def _key_pattern(key: str) -> re.Pattern[str]:
    name = re.escape(key)
    return re.compile(rf"""(?:^|[\s{{,.])(?:{name}|"{name}"|'{name}')\s*[=.\]]""")


def _toml_key(key: str) -> str:
    """A key as TOML needs it written: binding ids like session.new need quotes."""
    return key if re.fullmatch(r"[A-Za-z0-9_-]+", key) else json.dumps(key, ensure_ascii=False)


def known_words(what: str, names: typing.Iterable[str]) -> str:
    return f"known {what}: {', '.join(names)}"
