"""visible_text.terminal_line/terminal_text: outside text made safe for a message line."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from qwen_tui.visible_text import terminal_line, terminal_text


def test_controls_become_visible() -> None:
    line = terminal_line("boom \x1b]0;pwned\x07\x1b[2J \x9b2J \r over\nnext \x00\x7f")
    assert line == "boom ␛]0;pwned␇␛[2J \\x9b2J ␍ over␊next ␀␡"


def test_lone_surrogates_become_replacement_characters() -> None:
    assert terminal_line("caf\udce9 \ud800") == "caf\ufffd \ufffd"


def test_terminal_text_keeps_newlines_only() -> None:
    assert terminal_text("one\x1b[A\ntwo\r") == "one␛[A\ntwo␍"


def test_any_object_is_shown_as_its_str() -> None:
    assert terminal_line(ValueError("bad \x1b]0;x\x07")) == "bad ␛]0;x␇"


@settings(max_examples=300)
@given(st.text(st.characters(codec=None)))
def test_no_control_or_surrogate_survives(text: str) -> None:
    for shown in (terminal_line(text), terminal_text(text)):
        shown.encode("utf-8")  # strict: no surrogate left
        controls = [c for c in shown if ord(c) < 0x20 or 0x7F <= ord(c) <= 0x9F]
        assert set(controls) <= {"\t", "\n"}
    assert "\n" not in terminal_line(text)
