"""The keys each action ends up on, and the command palette's entries that show them."""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from typing import TYPE_CHECKING

from textual.app import SystemCommand
from textual.binding import Binding, BindingType
from textual.screen import Screen

from qwen_tui.actions import help_text
from qwen_tui.screens.chat_screen import ChatScreen
from qwen_tui.store.presets import Preset
from qwen_tui.widgets.session_sidebar import SessionList

if TYPE_CHECKING:
    from qwen_tui.app import QwenTuiApp


def declared_bindings(app_bindings: Iterable[BindingType]) -> list[Binding]:
    """Every binding with an id: the app's, the chat's, the session list's, the setup's."""
    from qwen_tui.screens.setup_screen import SetupScreen  # its bindings, not its screen

    declared = [*app_bindings, *ChatScreen.BINDINGS, *SessionList.BINDINGS, *SetupScreen.BINDINGS]
    return [b for b in declared if isinstance(b, Binding) and b.id]


def effective_key(bindings: Iterable[Binding], keys: Mapping[str, str], binding_id: str) -> str:
    """The key(s) bound to `binding_id` after the config's [keys] table (`keys`)."""
    for binding in bindings:
        if binding.id == binding_id:
            return keys.get(binding_id, binding.key)
    return ""


def palette_commands(app: QwenTuiApp, screen: Screen) -> Iterator[SystemCommand]:
    """Help, model setup and, on the chat screen, the presets and the screen's actions."""
    from qwen_tui.screens.setup_screen import SetupScreen

    yield SystemCommand(
        "Help",
        f"{help_text('app.help')} ({app.effective_key('app.help')})",
        app.action_help,
    )
    if not isinstance(screen, SetupScreen):
        yield SystemCommand(
            "Set up a model…",
            "Download a model, import a local one or prepare the demo model",
            app.open_setup,
        )
    if not isinstance(screen, ChatScreen):
        return
    for preset in app.presets.named.values():
        yield SystemCommand(
            f"Preset: {preset.name}",
            "Use its system prompt and sampling settings in this session",
            _use_preset(screen, preset),
        )
    for binding in ChatScreen.BINDINGS:
        assert isinstance(binding, Binding) and binding.id
        if binding.action == "stop" and not screen.generating:
            continue
        keys = app.effective_key(binding.id)
        yield SystemCommand(
            binding.description,
            f"{help_text(binding.id, binding.description)} ({keys})",
            _screen_action(screen, binding.action),
        )


def _screen_action(screen: Screen, action: str) -> Callable[[], object]:
    return lambda: screen.run_action(action)


def _use_preset(screen: ChatScreen, preset: Preset) -> Callable[[], object]:
    return lambda: screen.use_preset(preset)
