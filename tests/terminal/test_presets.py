"""A preset saved from the settings dialog with keys alone, then picked from the command
palette in another session, in the real app on a pty."""

from __future__ import annotations

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from qwen_tui.store.presets import load_presets
from tests.terminal.conftest import Launch

REPLIED = "word11"
TABS_TO_SAVE_AS_PRESET = 9
"""From the system prompt: six number fields, then Save, Save as my defaults, Save as preset."""


def test_save_a_preset_with_keys_and_use_it_from_the_palette(fake_home: Paths, launch: Launch):
    tui = launch()
    tui.wait_drawn()
    tui.type("First conversation\r")
    tui.wait_for_screen(REPLIED)
    tui.press("ctrl+s")
    tui.wait_for_screen("Save as preset")
    tui.type_slowly(" Answer in rhyme.")
    tui.press(*["tab"] * TABS_TO_SAVE_AS_PRESET, "enter")
    tui.wait_for_screen("Preset name")
    tui.type_slowly("Poet")
    tui.press("enter")
    tui.wait_for_screen("'Poet'")  # the notice (wrapped in its toast)
    [poet] = load_presets(fake_home.presets_file).named.values()
    assert poet.system_prompt.endswith(" Answer in rhyme.")

    tui.press("ctrl+n")
    tui.type("Second conversation\r")
    tui.wait_for_screen(lambda text: text.count(REPLIED) == 1 and "Second" in text)
    tui.press("ctrl+p")
    tui.type_slowly("Preset: Poet")
    tui.wait_for_screen("Use its system prompt")
    tui.press("enter")
    tui.wait_for_screen("in use")
    store = SessionStore(fake_home.sessions_dir)
    second = next(s for s in store.list() if s.title.startswith("Second"))
    assert store.load(second.id).system_prompt == poet.system_prompt
    tui.press("ctrl+q")
    assert tui.finish(timeout=30) == 0
