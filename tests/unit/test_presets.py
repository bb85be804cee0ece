"""presets.toml: named presets and saved defaults round-trip, are checked like config.toml,
and nothing the user saved is lost to a bad entry or a damaged file."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest

from qwen_tui.config import Config
from qwen_tui.conversation import GenerationSettings
from qwen_tui.store.presets import (
    Preset,
    PresetError,
    load_presets,
    new_session,
    remove_preset,
    save_defaults,
    save_preset,
)

TERSE = Preset("Terse", "Answer in one line.", GenerationSettings(temperature=0.2, top_k=5))
SEEDED = Preset("Poet 🎭", "Rhyme.", GenerationSettings(temperature=1.3, seed=42))


def test_presets_and_defaults_round_trip(tmp_path: Path) -> None:
    path = tmp_path / "state" / "presets.toml"
    save_preset(path, TERSE)
    save_preset(path, SEEDED)
    save_defaults(path, "Be brief.", GenerationSettings(max_new_tokens=64))
    presets = load_presets(path)
    assert presets.named == {"Terse": TERSE, "Poet 🎭": SEEDED}
    assert presets.named["Terse"].settings.seed is None  # a random seed stays random
    assert presets.defaults is not None
    assert presets.defaults.system_prompt == "Be brief."
    assert presets.defaults.settings == GenerationSettings(max_new_tokens=64)
    assert presets.problems == []
    assert path.parent.stat().st_mode & 0o077 == 0  # private, like the sessions


def test_saving_one_preset_keeps_the_others_and_replaces_its_namesake(tmp_path: Path) -> None:
    path = tmp_path / "presets.toml"
    save_preset(path, TERSE)
    save_defaults(path, "Be brief.", GenerationSettings())
    save_preset(path, Preset("Terse", "Changed.", GenerationSettings()))
    presets = load_presets(path)
    assert presets.named["Terse"].system_prompt == "Changed."
    assert presets.defaults is not None and presets.defaults.system_prompt == "Be brief."
    assert remove_preset(path, "Terse") and not remove_preset(path, "Terse")
    assert load_presets(path).named == {} and load_presets(path).defaults is not None


def test_new_sessions_start_from_saved_defaults_else_from_the_config(tmp_path: Path) -> None:
    path = tmp_path / "presets.toml"
    config = Config(system_prompt="From config.", generation=GenerationSettings(top_k=7))
    session = new_session(config, load_presets(path))
    assert (session.system_prompt, session.settings.top_k) == ("From config.", 7)
    save_defaults(path, "Saved in the app.", GenerationSettings(top_k=3))
    session = new_session(config, load_presets(path))
    assert (session.system_prompt, session.settings.top_k) == ("Saved in the app.", 3)


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ("temperature = 9.0", "temperature: expected"),
        ("top_k = 1.5", "top_k: expected"),
        ('seed = "x"', "seed: expected"),
        ("top_p = true", "top_p: expected"),
        ("top_p = nan", "top_p: expected"),
        # An integer beyond float range (it used to escape as an OverflowError).
        pytest.param("temperature = " + "9" * 400, "temperature: expected", id="huge-integer"),
        ('colour = "red"', "unknown setting 'colour'"),
        ("system_prompt = 3", "system_prompt must be text"),
    ],
)
def test_a_bad_preset_is_skipped_by_name_and_the_others_load(
    tmp_path: Path, entry: str, words: str
) -> None:
    path = tmp_path / "presets.toml"
    save_preset(path, TERSE)
    path.write_text(path.read_text() + f'\n[presets."Bad one"]\n{entry}\n')
    presets = load_presets(path)
    assert list(presets.named) == ["Terse"]
    [problem] = presets.problems
    assert "'Bad one' skipped" in problem and words in problem


def test_a_damaged_file_is_moved_aside_never_overwritten(tmp_path: Path) -> None:
    path = tmp_path / "presets.toml"
    path.write_text("[presets.Terse\nnot toml")
    presets = load_presets(path)
    assert presets.named == {} and "could not be read" in presets.problems[0]
    aside = tmp_path / "presets.toml.corrupt"
    assert aside.read_text() == "[presets.Terse\nnot toml"
    save_preset(path, TERSE)  # a fresh file; the damaged one is still beside it
    assert load_presets(path).named == {"Terse": TERSE} and aside.exists()


@pytest.mark.parametrize("name", ["", "   ", "two\nlines", "\x1b[31mred", "x" * 61])
def test_names_that_cannot_name_a_preset(tmp_path: Path, name: str) -> None:
    with pytest.raises(PresetError):
        save_preset(tmp_path / "presets.toml", Preset(name, "", GenerationSettings()))
    assert not (tmp_path / "presets.toml").exists()


def test_the_file_is_plain_toml_a_person_can_edit(tmp_path: Path) -> None:
    path = tmp_path / "presets.toml"
    save_preset(path, SEEDED)
    data = tomllib.loads(path.read_text())
    assert data["version"] == 1
    assert data["presets"]["Poet 🎭"] == {"system_prompt": "Rhyme.", **_settings(SEEDED)}


def _settings(preset: Preset) -> dict[str, object]:
    return {k: v for k, v in preset.settings.to_dict().items() if v is not None}
