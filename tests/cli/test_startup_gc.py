"""cli.main holds the garbage collector off only for the app's launch (startup_gc.py).

A headless command (`ask` streams a reply, `setup` quantizes for minutes) must run with the
collector on, and no way out of main() may leave it off for the rest of the process.
"""

from __future__ import annotations

import gc

from qwen_tui.commands import reports
from tests.cli.in_process import run_main


def test_a_command_runs_with_the_collector_on(monkeypatch, tmp_path):
    monkeypatch.setenv("QWEN_TUI_HOME", str(tmp_path))
    seen: list[bool] = []

    def models(_args) -> int:
        seen.append(gc.isenabled())
        return 0

    monkeypatch.setattr(reports, "models", models)
    assert run_main("models").status == 0
    assert seen == [True]
    assert gc.isenabled()


def test_main_gives_the_collector_back_on_every_way_out(monkeypatch, tmp_path):
    monkeypatch.setenv("QWEN_TUI_HOME", str(tmp_path))
    assert run_main("--version").status == 0  # argparse's SystemExit
    assert gc.isenabled()
    assert run_main("--no-such-option").status == 2
    assert gc.isenabled()
    assert run_main("--session", "nope").status == 2  # an error before the app starts
    assert gc.isenabled()
