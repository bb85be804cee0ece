"""The one type checker config.toml and session files share (qwen_tui/typed_fields.py)."""

from __future__ import annotations

import enum
from pathlib import Path

import pytest

from qwen_tui.config import ConfigError
from qwen_tui.config_file import load_config
from qwen_tui.typed_fields import Mismatch, checked, type_words


class Colour(enum.Enum):
    RED = "red"


@pytest.mark.parametrize(
    ("value", "expected", "finite", "result"),
    [
        (1, float, True, 1.0),
        (2, int | None, True, 2),
        (None, int | None, True, None),
        (float("nan"), float, False, "nan"),
        ("red", Colour, True, Colour.RED),
        ("x", str, True, "x"),
    ],
)
def test_values_of_the_right_type_come_back_converted(value, expected, finite, result) -> None:
    got = checked(value, expected, finite=finite)
    assert str(got) == result if result == "nan" else got == result and type(got) is type(result)


@pytest.mark.parametrize(
    ("value", "expected", "finite"),
    [
        (True, float, True),  # bool is never a number
        (True, int, False),
        (float("inf"), float, True),  # TOML: not a number; JSON passes finite=False
        (10**400, float, False),  # beyond float range
        ("blue", Colour, True),
        (1, str, True),
        (None, int, True),
    ],
)
def test_values_of_another_type_are_a_mismatch(value, expected, finite) -> None:
    with pytest.raises(Mismatch):
        checked(value, expected, finite=finite)


def test_type_words_use_the_callers_vocabulary() -> None:
    words = {int: "an integer", type(None): "null"}
    assert type_words(int | None, words) == "an integer or null"
    assert type_words(int | None, words, with_none=False) == "an integer"


@pytest.mark.parametrize(
    ("line", "message"),
    [
        ("temperature = true", "[generation].temperature: expected a number, got true"),
        ("top_p = nan", "[generation].top_p: expected a number, got nan"),
        ("temperature = 1" + "0" * 400, "[generation].temperature: expected a number, got 1000"),
    ],
)
def test_config_reports_the_mismatch_on_its_line(tmp_path: Path, line: str, message: str) -> None:
    path = tmp_path / "config.toml"
    path.write_text(f"[generation]\n{line}\n")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert str(caught.value).startswith(f"{path}:2: {message}")
