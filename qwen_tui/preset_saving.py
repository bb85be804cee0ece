"""Saves the settings dialog's values as the defaults for new sessions or as a named preset."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwen_tui.store.presets import Preset, PresetError, load_presets, save_defaults, save_preset

if TYPE_CHECKING:
    from qwen_tui.app import QwenTuiApp
    from qwen_tui.screens.settings_dialog import SessionSettings


def keep_settings(app: QwenTuiApp, result: SessionSettings) -> str | None:
    """Save `result` as the defaults or as a preset too, if asked, and reload the app's
    presets; what to tell the user (None: nothing more was asked)."""
    path = app.paths.presets_file
    try:
        if result.as_defaults:
            save_defaults(path, result.system_prompt, result.generation)
            notice = "Saved with this session and as your defaults for new sessions."
        elif result.preset_name:
            save_preset(path, Preset(result.preset_name, result.system_prompt, result.generation))
            notice = f"Saved with this session and as preset {result.preset_name!r}."
        else:
            return None
    except (OSError, PresetError) as error:
        app.notify(f"{path}: {error}", title="Could not save the preset", severity="error")
        return "Settings saved with this session only."
    app.presets = load_presets(path)
    return notice
