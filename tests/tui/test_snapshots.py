"""Layout snapshots at 80x24 and 120x40 (SVGs under __snapshots__/; update with
`pytest tests/tui/test_snapshots.py --snapshot-update` and look at them before committing)."""

from __future__ import annotations

import pytest

from qwen_tui.app import QwenTuiApp
from qwen_tui.conversation import GenerationStats, Message, Session, StopReason
from qwen_tui.store import SessionStore
from qwen_tui.widgets.prompt_input import PromptInput
from tests.tui.conftest import FROZEN_NOW, settle
from tests.tui.fake_engine import FakeEngine

SIZES = [(80, 24), (120, 40)]

REPLY = """Here is a function that reverses a string:

```python
def reverse(text: str) -> str:
    return text[::-1]
```

- slicing with a step of `-1` walks backwards
- it works for any sequence"""


def fixed_sessions(store: SessionStore) -> Session:
    """Two older sessions and the one the snapshot shows, all with fixed times."""
    store.save(
        Session(
            id="20250601-101500-aaaaaa",
            title="Trip to Lisbon",
            updated=FROZEN_NOW - 3 * 86400,
            messages=[Message("user", "plan", created=FROZEN_NOW)],
        )
    )
    store.save(
        Session(
            id="20250614-090000-bbbbbb",
            title="[bold]Not markup[/bold]",
            updated=FROZEN_NOW - 7200,
            messages=[Message("user", "x", created=FROZEN_NOW)],
        )
    )
    stats = GenerationStats(
        prompt_tokens=31, generated_tokens=42, ttft_s=0.31, decode_tok_s=11.9, total_s=3.8
    )
    stopped = GenerationStats(
        prompt_tokens=80,
        generated_tokens=7,
        ttft_s=0.28,
        decode_tok_s=12.2,
        total_s=0.9,
        stop_reason=StopReason.STOPPED,
    )
    session = Session(
        id="20250615-120000-cccccc",
        title="Reverse a string",
        created=FROZEN_NOW - 300,
        updated=FROZEN_NOW - 120,
        messages=[
            Message("user", "How do I reverse a string in Python?", created=FROZEN_NOW),
            Message("assistant", REPLY, created=FROZEN_NOW, stats=stats),
            Message("user", "And a list, in place?", created=FROZEN_NOW),
            Message("assistant", "Call `items.reverse()`; it", created=FROZEN_NOW, stats=stopped),
        ],
    )
    store.save(session)
    return session


def snapshot_app(make_app, paths) -> QwenTuiApp:
    session = fixed_sessions(SessionStore(paths.sessions_dir))
    app = make_app(FakeEngine(fixed_stats=True), session_id=session.id, clock=lambda: FROZEN_NOW)
    app.process_rss = lambda: 300 * 1024 * 1024  # type: ignore[method-assign]
    return app


async def ready(pilot) -> None:
    await settle(pilot.app, pilot)
    pilot.app.chat_screen.query_one(PromptInput).cursor_blink = False
    await pilot.pause()


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_chat_screen(snap_compare, make_app, paths, size):
    assert snap_compare(snapshot_app(make_app, paths), terminal_size=size, run_before=ready)


@pytest.mark.parametrize("size", SIZES, ids=lambda s: f"{s[0]}x{s[1]}")
def test_settings_dialog(snap_compare, make_app, paths, size):
    async def open_settings(pilot) -> None:
        await ready(pilot)
        await pilot.press("ctrl+s")
        await pilot.pause()
        pilot.app.screen.query_one("#system-prompt").cursor_blink = False
        await pilot.pause()

    app = snapshot_app(make_app, paths)
    assert snap_compare(app, terminal_size=size, run_before=open_settings)


def test_no_model_installed(snap_compare, make_app):
    """The chat's notice, seen once the user closes the setup screen that opens first."""

    async def close_setup(pilot) -> None:
        await pilot.press("escape")
        await ready(pilot)

    app = make_app(models=(), clock=lambda: FROZEN_NOW)
    app.process_rss = lambda: 300 * 1024 * 1024  # type: ignore[method-assign]
    assert snap_compare(app, terminal_size=(80, 24), run_before=close_setup)
