"""What the UI spends while a reply streams: the pace of text updates, the cursor blink."""

from __future__ import annotations

import pytest

from qwen_tui.widgets.message_view import (
    STREAM_FLUSH_MAX_S,
    STREAM_FLUSH_S,
    UI_CPU_SHARE,
    StreamPacer,
)


class Clocks:
    """A wall clock and the UI thread's CPU clock, advanced by the test."""

    def __init__(self) -> None:
        self.wall = self.cpu = 0.0

    def wait(self, seconds: float, cpu_share: float) -> None:
        self.wall += seconds
        self.cpu += seconds * cpu_share


def pace(pacer: StreamPacer, clocks: Clocks, cpu_share: float, updates: int) -> list[float]:
    intervals = []
    for _ in range(updates):
        interval = pacer.next_interval()
        intervals.append(interval)
        clocks.wait(interval, cpu_share)
    return intervals


def test_costly_updates_are_spaced_out_up_to_the_limit_and_cheap_ones_come_back() -> None:
    clocks = Clocks()
    pacer = StreamPacer(lambda: clocks.wall, lambda: clocks.cpu)
    assert pace(pacer, clocks, UI_CPU_SHARE / 2, 3) == [STREAM_FLUSH_S] * 3
    busy = pace(pacer, clocks, 4 * UI_CPU_SHARE, 6)
    assert busy == sorted(busy) and busy[1] > busy[0]
    assert busy[-1] == STREAM_FLUSH_MAX_S
    calm = pace(pacer, clocks, UI_CPU_SHARE / 4, 6)
    assert calm == sorted(calm, reverse=True) and calm[-1] == STREAM_FLUSH_S


def test_a_share_at_the_budget_keeps_the_interval() -> None:
    clocks = Clocks()
    pacer = StreamPacer(lambda: clocks.wall, lambda: clocks.cpu)
    pace(pacer, clocks, 4 * UI_CPU_SHARE, 1)
    # The first interval answers the busy one before it; from then on the share is on budget.
    first, *rest = pace(pacer, clocks, UI_CPU_SHARE, 4)
    assert STREAM_FLUSH_S < first < STREAM_FLUSH_MAX_S
    assert rest == pytest.approx([first] * 3)


async def test_the_prompt_cursor_blinks_only_when_configured(make_app) -> None:
    """A blinking cursor is a redraw twice a second, forever: SSH traffic and CPU."""
    from qwen_tui.config import Config, UIConfig
    from tests.tui.conftest import settle
    from tests.tui.fake_engine import FakeEngine

    for blink in (False, True):
        app = make_app(FakeEngine("hi"), config=Config(ui=UIConfig(cursor_blink=blink)))
        async with app.run_test(size=(80, 24)) as pilot:
            await settle(app, pilot)
            assert app.chat_screen.prompt.cursor_blink is blink
