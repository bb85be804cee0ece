"""The app's bindings and the config's binding ids cannot drift apart."""

from __future__ import annotations

from qwen_tui.actions import DEFAULT_KEYS
from qwen_tui.app import QwenTuiApp
from qwen_tui.screens.chat_screen import ChatScreen
from qwen_tui.screens.setup_screen import SetupScreen
from qwen_tui.widgets.session_sidebar import SessionList


def test_every_rebindable_binding_has_its_documented_default() -> None:
    declared = {}
    for owner in (QwenTuiApp, ChatScreen, SessionList, SetupScreen):
        for binding in owner.BINDINGS:
            if getattr(binding, "id", None):
                declared[binding.id] = binding.key
    assert declared == DEFAULT_KEYS
