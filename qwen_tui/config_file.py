"""Read config.toml into a Config: the bytes, the TOML, then every section checked.

A missing file means all defaults. Anything wrong in it (a syntax error, an unknown key, a
wrong type or a value out of range) raises ConfigError with a one-line message naming the
file, line and key, e.g. `config.toml:7: [generation].top_p: expected a number in (0, 1],
got 1.5`.
"""

from __future__ import annotations

import re
import stat
import tomllib
from pathlib import Path
from typing import Any

from qwen_tui.config import Config, ConfigError, HubConfig, ModelConfig, RemoteConfig, UIConfig
from qwen_tui.config_lines import Reporter
from qwen_tui.config_rules import check_default_remote, section_values
from qwen_tui.conversation import DEFAULT_SYSTEM_PROMPT, GenerationSettings


def load_config(path: Path | None = None) -> Config:
    """Read `path` (default: paths.config_file); a missing file gives the defaults."""
    if path is None:
        from qwen_tui.paths import get_paths

        path = get_paths().config_file
    text = _read_text(path)
    if text is None:
        return Config()
    data = _parse(text, path)
    report = Reporter(path, text)
    # tomllib keeps the file's order, so the first mistake reported is the first in the file.
    sections = {name: section_values(name, value, report) for name, value in data.items()}
    generation = dict(sections.get("generation", {}))
    system_prompt = generation.pop("system_prompt", DEFAULT_SYSTEM_PROMPT)
    hub = HubConfig(**sections.get("hub", {}))
    model = ModelConfig(**sections.get("model", {}))
    remotes = tuple(RemoteConfig(**entry) for entry in sections.get("remotes", []))
    check_default_remote(model, remotes, report)
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
