"""User settings: `config.toml` read with tomllib into frozen, validated dataclasses.

The file is the user's: qwen-tui reads it and never rewrites it. A missing file means all
defaults. Anything wrong in it (a syntax error, an unknown key, a wrong type or a value out
of range) raises ConfigError with a one-line message naming the file, line and key, e.g.
`config.toml:7: [generation].top_p: expected a number in (0, 1], got 1.5`.
`config.example.toml` documents every key; a test keeps it equal to the defaults here.
"""

from __future__ import annotations

import difflib
import json
import math
import os
import re
import stat
import tomllib
import types
import typing
from collections.abc import Callable
from dataclasses import dataclass, field, fields
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from qwen_tui.actions import ACTIVE_TOGETHER, DEFAULT_KEYS
from qwen_tui.conversation import DEFAULT_SYSTEM_PROMPT, SETTING_BOUNDS, Bound, GenerationSettings
from qwen_tui.low_bit import LOW_BIT_FORMATS

REMOTE_PREFIX = "remote:"
"""Model names starting with this open a [[remotes]] entry: `--model remote:lab`."""


class ConfigError(Exception):
    """config.toml cannot be used; str() is one line naming the file, line and key."""

    def __init__(self, message: str, path: Path, line: int | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


@dataclass(frozen=True)
class ModelConfig:
    default: str = ""
    """Installed model name, repo id or `remote:NAME` to open; "" = the only/first installed
    model (demo)."""
    threads: int = 0
    """CPU threads for generation; 0 = number of physical cores."""
    low_bit: str = "sym_int4"
    """Format for newly quantized models: sym_int4, asym_int4, sym_int8 or nf4."""


@dataclass(frozen=True)
class HubConfig:
    endpoint: str = ""
    """Model hub URL; "" = the HF_ENDPOINT env var, else https://huggingface.co."""
    token: str = ""
    """Hub access token for gated repos; prefer the HF_TOKEN env var over storing it here."""
    hf_transfer: bool = False
    """Download large files with hf_transfer (faster on fast links)."""


@dataclass(frozen=True)
class UIConfig:
    theme: str = "textual-dark"
    """Textual theme name."""
    show_stats: bool = True
    """Show tokens, TTFT and tok/s under each reply."""
    sidebar: bool = True
    """Show the sessions sidebar at start."""
    cursor_blink: bool = False
    """Blink the prompt's cursor: every blink redraws it (traffic over SSH, CPU taken from
    the model on small machines)."""


@dataclass(frozen=True)
class RemoteConfig:
    """One `[[remotes]]` entry: a model served by an OpenAI-compatible server."""

    name: str
    """Short name used as `--model remote:NAME`: letters, digits, '.', '_' and '-'."""
    base_url: str
    """The server's OpenAI API root, e.g. http://127.0.0.1:8080/v1 (llama.cpp, vLLM, Ollama)."""
    model: str
    """Model id the server knows, as its /v1/models lists it."""
    api_key_env: str = ""
    """Name of the environment variable holding the API key; "" = the server needs none."""
    context_length: int = 8192
    """Tokens the served model attends to (prompt plus reply); older turns are left out beyond."""
    connect_timeout: float = 10.0
    """Seconds to wait for the server to accept the connection."""
    read_timeout: float = 120.0
    """Seconds to wait for the next bytes of an answer (long prompts, a model still loading)."""
    extended_sampling: bool = True
    """Also send top_k and repetition_penalty, which llama.cpp, vLLM and Ollama understand;
    false for servers that reject fields outside OpenAI's API (such as api.openai.com)."""

    @property
    def model_name(self) -> str:
        """How `--model`, the model switcher and sessions name it: `remote:NAME`."""
        return REMOTE_PREFIX + self.name


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    """[model]: which model to open and how to run it."""
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    """[generation]: sampling defaults for new sessions."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """[generation].system_prompt: system prompt of new sessions."""
    hub: HubConfig = field(default_factory=HubConfig)
    """[hub]: where models are downloaded from."""
    ui: UIConfig = field(default_factory=UIConfig)
    """[ui]: looks."""
    keys: dict[str, str] = field(default_factory=dict)
    """[keys]: binding id -> key(s), only the ones the user rebinds (App.set_keymap format)."""
    remotes: tuple[RemoteConfig, ...] = ()
    """[[remotes]]: models on OpenAI-compatible servers, opened as `--model remote:NAME`."""
    path: Path | None = field(default=None, compare=False)
    """The file read; None when there was none (all defaults)."""
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """Problems worth telling the user that do not stop the app (e.g. a readable token)."""


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


def load_config(path: Path | None = None) -> Config:
    """Read `path` (default: paths.config_file); a missing file gives the defaults."""
    if path is None:
        from qwen_tui.paths import get_paths

        path = get_paths().config_file
    text = _read_text(path)
    if text is None:
        return Config()
    data = _parse(text, path)
    report = _Reporter(path, text)
    # tomllib keeps the file's order, so the first mistake reported is the first in the file.
    sections = {name: _section(name, value, report) for name, value in data.items()}
    generation = dict(sections.get("generation", {}))
    system_prompt = generation.pop("system_prompt", DEFAULT_SYSTEM_PROMPT)
    hub = HubConfig(**sections.get("hub", {}))
    model = ModelConfig(**sections.get("model", {}))
    remotes = tuple(RemoteConfig(**entry) for entry in sections.get("remotes", []))
    _check_default_remote(model, remotes, report)
    return Config(
        model=model,
        generation=GenerationSettings(**generation),
        system_prompt=system_prompt,
        hub=hub,
        ui=UIConfig(**sections.get("ui", {})),
        keys=sections.get("keys", {}),
        remotes=remotes,
        path=path,
        warnings=_token_warnings(path, hub),
    )


# ---------------------------------------------------------------- reading the file


def _read_text(path: Path) -> str | None:
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        return None
    except IsADirectoryError:
        raise ConfigError("is a folder, expected a TOML file", path) from None
    except OSError as error:
        raise ConfigError(f"could not read: {error.strerror or error}", path) from None
    try:
        return raw.decode("utf-8-sig")  # tolerate the BOM some editors add
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise ConfigError(
            f"not UTF-8 text (byte 0x{raw[error.start]:02x}); save the file as UTF-8", path, line
        ) from None


def _parse(text: str, path: Path) -> dict[str, Any]:
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as error:
        # Python 3.11's error has no line attribute; the position is in the message.
        message = str(error)
        match = re.search(r"\s*\(at line (\d+), column (\d+)\)$", message)
        if match:
            reason = message[: match.start()]
            line = int(match.group(1))
            raise ConfigError(
                f"TOML syntax error: {reason} (column {match.group(2)})", path, line
            ) from None
        line = text.count("\n") + 1 if "end of document" in message else None
        raise ConfigError(f"TOML syntax error: {message}", path, line) from None


# ---------------------------------------------------------------- validating


def _section(name: str, value: Any, report: _Reporter) -> Any:
    """The checked values of one top-level table (a list of them for [[remotes]])."""
    if name not in _ALL_SECTIONS:
        report.unknown_top_level(name, value)
    if name == "remotes":
        return _remotes(value, report)
    if not isinstance(value, dict):
        report.fail(name, None, f"expected a table [{name}], got {_show(value)}")
    return _keys(value, report) if name == "keys" else _section_values(name, value, report)


def _section_values(
    section: str, table: dict[str, Any], report: _Reporter, entry: int | None = None
) -> dict[str, Any]:
    types_by_key = _field_types(section)
    values = {}
    for key, value in table.items():
        if section == "remotes" and key in _SECRET_KEYS:
            report.fail(section, key, _NO_SECRETS, entry)
        if key not in types_by_key:
            report.unknown_key(section, key, list(types_by_key), entry=entry)
        expected = types_by_key[key]
        if not _has_type(value, expected):
            problem = f"expected {_type_words(expected)}, got {_show(value)}"
            report.fail(section, key, problem, entry)
        test, wanted = _CONSTRAINTS.get((section, key), (lambda _: True, ""))
        if not test(value):
            report.fail(section, key, f"expected {wanted}, got {_show(value)}", entry)
        values[key] = float(value) if expected is float else value
    return values


_SECRET_KEYS = ("api_key", "apikey", "key", "token", "secret")
_NO_SECRETS = (
    "qwen-tui does not read API keys from files: put the key in an environment variable "
    "and name that variable in api_key_env"
)


def _check_default_remote(
    model: ModelConfig, remotes: tuple[RemoteConfig, ...], report: _Reporter
) -> None:
    if not model.default.startswith(REMOTE_PREFIX):
        return
    if any(remote.model_name == model.default for remote in remotes):
        return
    names = ", ".join(remote.model_name for remote in remotes)
    hint = f"known: {names}" if names else "add one"
    wanted = model.default.removeprefix(REMOTE_PREFIX)
    report.fail("model", "default", f"no [[remotes]] entry is named {_show(wanted)}; {hint}")


def _remotes(value: Any, report: _Reporter) -> list[dict[str, Any]]:
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
    cls = _SECTIONS[section]
    hints = typing.get_type_hints(cls)
    found = {f.name: hints[f.name] for f in fields(cls)}
    return found | _EXTRA_KEYS.get(section, {})


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


def _keys(table: dict[str, Any], report: _Reporter) -> dict[str, str]:
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


def _check_clashes(table: dict[str, Any], report: _Reporter) -> None:
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


def _has_type(value: Any, expected: Any) -> bool:
    """TOML value check: bool is not a number, an int is fine for a float, no NaN/inf."""
    if typing.get_origin(expected) in (typing.Union, types.UnionType):
        return any(_has_type(value, option) for option in typing.get_args(expected))
    if expected is float:
        number = isinstance(value, int | float) and not isinstance(value, bool)
        return number and math.isfinite(value)
    if expected is int:
        return isinstance(value, int) and not isinstance(value, bool)
    return isinstance(expected, type) and type(value) is expected


def _type_words(expected: Any) -> str:
    options = [o for o in typing.get_args(expected) if o is not type(None)] or [expected]
    words = {str: "a string", int: "an integer", float: "a number", bool: "true or false"}
    return " or ".join(words.get(o, getattr(o, "__name__", str(o))) for o in options)


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


def _token_warnings(path: Path, hub: HubConfig) -> tuple[str, ...]:
    if not hub.token:
        return ()
    try:
        mode = stat.S_IMODE(path.stat().st_mode)
    except OSError:
        return ()
    if not mode & 0o077:
        return ()
    return (
        f"{path} holds a hub token and other users can read it (mode {mode:04o}); "
        f"run: chmod 600 {path} (or use the HF_TOKEN environment variable)",
    )


class _Reporter:
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

    def unknown_top_level(self, name: str, value: Any) -> typing.NoReturn:
        if isinstance(value, dict):
            close = difflib.get_close_matches(name, _ALL_SECTIONS, n=1)
            hint = f"did you mean [{close[0]}]?" if close else _known("sections", _ALL_SECTIONS)
            self.fail(name, None, f"unknown section, {hint}")
        home = [s for s in _SECTIONS if name in _field_types(s)]
        table = (f"[[{home[0]}]]" if home[0] == "remotes" else f"[{home[0]}]") if home else ""
        hint = f"put it under {table}" if home else _known("sections", _ALL_SECTIONS)
        raise ConfigError(
            f"{name}: unknown top-level key, {hint}", self.path, self._line(None, name)
        )

    def unknown_key(
        self,
        section: str,
        key: str,
        known: list[str],
        what: str = "key",
        entry: int | None = None,
    ) -> typing.NoReturn:
        close = difflib.get_close_matches(key, known, n=1)
        hint = f"did you mean {_toml_key(close[0])}?" if close else _known(f"{what}s", known)
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


def _known(what: str, names: typing.Iterable[str]) -> str:
    return f"known {what}: {', '.join(names)}"
