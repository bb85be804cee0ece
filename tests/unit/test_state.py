"""state.toml: what the app remembers between runs, written atomically, never the config."""

from __future__ import annotations

import stat

from qwen_tui.paths import Paths
from qwen_tui.store.state import AppState, load_state, save_state


def test_state_round_trips_with_any_draft_text(paths: Paths):
    draft = 'line one\nline "two" \\ [section]\n= ␛ é'
    save_state(paths.state_file, AppState(last_session="20250101-000000-abc", draft=draft))
    assert load_state(paths.state_file) == AppState("20250101-000000-abc", draft)
    assert stat.S_IMODE(paths.state_file.stat().st_mode) == 0o600
    assert not paths.config_file.exists()


def test_no_state_file_is_a_first_start(paths: Paths):
    assert load_state(paths.state_file) == AppState()


def test_an_unreadable_state_file_is_moved_aside_and_ignored(paths: Paths):
    paths.state_dir.mkdir(parents=True)
    for damaged in ("last_session = [", "last_session = 3\n"):
        paths.state_file.write_text(damaged)
        assert load_state(paths.state_file) == AppState()
        assert not paths.state_file.exists()
        assert paths.state_file.with_name("state.toml.corrupt").read_text() == damaged
