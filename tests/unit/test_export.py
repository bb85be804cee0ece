"""ctrl+e's Markdown export: never a traceback on odd values, never an empty or half file."""

from __future__ import annotations

from pathlib import Path

import pytest

from qwen_tui.conversation import Message, Session
from qwen_tui.store import export as session_export
from qwen_tui.store.export import write_export


def session(**changes: object) -> Session:
    made = Session(id="s1", title="T", created=1.0, updated=2.0)
    made.messages = [Message("user", "hi", created=1.5), Message("assistant", "yo", created=1.6)]
    for name, value in changes.items():
        setattr(made, name, value)
    return made


@pytest.mark.parametrize("when", [float("inf"), float("-inf"), float("nan"), 1e20])
def test_a_time_no_calendar_shows_is_exported_as_unknown(tmp_path: Path, when: float) -> None:
    path = tmp_path / "out.md"
    write_export(session(created=when), path)
    text = path.read_text(encoding="utf-8")
    assert text.startswith("# T\n\n*unknown date*") and "yo" in text
    assert path.stat().st_mode & 0o777 == 0o600


def test_a_failed_export_leaves_no_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def broken(_session: Session) -> str:
        raise RuntimeError("rendering failed")

    monkeypatch.setattr(session_export, "session_markdown", broken)
    with pytest.raises(RuntimeError):
        write_export(session(), tmp_path / "out.md")
    assert list(tmp_path.iterdir()) == []


def test_lone_surrogates_set_after_creation_still_export(tmp_path: Path) -> None:
    path = tmp_path / "out.md"
    made = session()
    made.title = "caf\udce9"  # e.g. a rename typed on a non-UTF-8 terminal
    write_export(made, path)
    assert path.read_text(encoding="utf-8").startswith("# caf\ufffd")
