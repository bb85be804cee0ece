"""Named presets (a system prompt with sampling settings) and the user's saved defaults.

Kept in `presets.toml` (Paths.presets_file), written by the app with tomli-w through the one
atomic writer; config.toml stays the user's and is never rewritten. Saved defaults, when there
are any, are what new sessions start from instead of config.toml's `system_prompt` and
`[generation]`: the user chose them later, from inside the app.

Every value is checked for its type by typed_fields and against the same bounds as
config.toml and the settings dialog (conversation.SETTING_BOUNDS). One bad preset is skipped
with a message naming it, the others load; a file that is not TOML at all is moved aside, so
nothing the user saved is overwritten unseen.
"""

from __future__ import annotations

import contextlib
import logging
import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from qwen_tui.config import Config
from qwen_tui.conversation import SETTING_BOUNDS, GenerationSettings, Session
from qwen_tui.paths import ensure_private_dir
from qwen_tui.store.atomic import write_atomic
from qwen_tui.typed_fields import Mismatch, checked, field_types

log = logging.getLogger(__name__)

PRESETS_VERSION = 1
MAX_NAME_CHARS = 60


class PresetError(Exception):
    """A preset name or file the user must fix; the message says how."""


@dataclass(frozen=True)
class Preset:
    name: str
    system_prompt: str
    settings: GenerationSettings


@dataclass(frozen=True)
class Presets:
    """What presets.toml holds, and what could not be used of it (one line each)."""

    named: dict[str, Preset] = field(default_factory=dict)
    defaults: Preset | None = None
    problems: list[str] = field(default_factory=list)


DEFAULTS_NAME = "my defaults"
"""How the saved defaults are named in messages; in the file they are the [defaults] table."""


def check_preset_name(name: str) -> str:
    """The name, stripped; PresetError if it cannot name a preset."""
    name = name.strip()
    if not name:
        raise PresetError("a preset needs a name")
    if len(name) > MAX_NAME_CHARS:
        raise PresetError(f"a preset name has at most {MAX_NAME_CHARS} characters")
    if not name.isprintable():
        raise PresetError("a preset name cannot hold control characters or line breaks")
    return name


def load_presets(path: Path) -> Presets:
    """Everything usable in the file; none if it does not exist."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return Presets()
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError) as error:
        moved = _move_aside(path)
        return Presets(problems=[f"{path.name} could not be read ({error}); {moved}"])
    problems: list[str] = []
    named: dict[str, Preset] = {}
    table = data.get("presets", {})
    if not isinstance(table, dict):
        problems.append(f"{path.name}: [presets] must be a table of presets")
        table = {}
    for name, entry in table.items():
        try:
            named[name] = _preset(check_preset_name(name), entry)
        except PresetError as error:
            problems.append(f"{path.name}: preset {name!r} skipped: {error}")
    defaults = None
    if "defaults" in data:
        try:
            defaults = _preset(DEFAULTS_NAME, data["defaults"])
        except PresetError as error:
            problems.append(f"{path.name}: [defaults] skipped: {error}")
    return Presets(named, defaults, problems)


def save_preset(path: Path, preset: Preset) -> None:
    """Add or replace one named preset. Raises PresetError or OSError."""
    name = check_preset_name(preset.name)
    data = _read_for_update(path)
    data["presets"][name] = _table(preset)
    _write(path, data)


def save_defaults(path: Path, system_prompt: str, settings: GenerationSettings) -> None:
    """What new sessions start from from now on. Raises OSError."""
    data = _read_for_update(path)
    data["defaults"] = _table(Preset(DEFAULTS_NAME, system_prompt, settings))
    _write(path, data)


def remove_preset(path: Path, name: str) -> bool:
    """Forget a named preset; False if there was none by that name. Raises OSError."""
    data = _read_for_update(path)
    if data["presets"].pop(name, None) is None:
        return False
    _write(path, data)
    return True


def new_session(config: Config, presets: Presets) -> Session:
    """A new session: from the saved defaults if the user saved some, else config.toml's."""
    if presets.defaults is not None:
        defaults = presets.defaults
        return Session(system_prompt=defaults.system_prompt, settings=defaults.settings)
    return Session(system_prompt=config.system_prompt, settings=config.generation)


def _preset(name: str, entry: object) -> Preset:
    if not isinstance(entry, dict):
        raise PresetError("it must be a table")
    system_prompt = entry.get("system_prompt", "")
    if not isinstance(system_prompt, str):
        raise PresetError("system_prompt must be text")
    values: dict[str, Any] = {}
    known = field_types(GenerationSettings)
    for key, value in entry.items():
        if key == "system_prompt":
            continue
        if key not in known:
            raise PresetError(f"unknown setting {key!r}")
        values[key] = _setting(key, value, known[key])
    return Preset(name, system_prompt, GenerationSettings(**values))


def _setting(key: str, value: object, expected: Any) -> Any:
    """`value` as setting `key`: of its type (typed_fields: an integer is fine for a number,
    true/false never is one) and within its bounds; PresetError says what a good value is."""
    bound = SETTING_BOUNDS[key]
    try:
        typed = checked(value, expected, finite=True)
    except Mismatch:
        pass
    else:
        if bound.allows(typed):
            return typed
    raise PresetError(f"{key}: expected {bound.words}, got {value!r}")


def _table(preset: Preset) -> dict[str, Any]:
    # TOML has no null: a random seed is a missing key, read back as None.
    settings = {k: v for k, v in preset.settings.to_dict().items() if v is not None}
    return {"system_prompt": preset.system_prompt, **settings}


def _read_for_update(path: Path) -> dict[str, Any]:
    """The file as a dict to change and write back: other entries are kept as they were."""
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        data = {}
    except (UnicodeDecodeError, tomllib.TOMLDecodeError):
        _move_aside(path)  # kept beside, never overwritten: the user may want it back
        data = {}
    if not isinstance(data.get("presets"), dict):
        data["presets"] = {}
    return data


def _write(path: Path, data: dict[str, Any]) -> None:
    data["version"] = PRESETS_VERSION
    ensure_private_dir(path.parent)
    write_atomic(path, tomli_w.dumps(data).encode("utf-8"))


def _move_aside(path: Path) -> str:
    aside = path.with_name(path.name + ".corrupt")
    log.warning("unreadable presets file %s: moved to %s", path, aside)
    with contextlib.suppress(OSError):
        os.replace(path, aside)
        return f"moved to {aside.name}"
    return "left as it is"
