"""Fixtures for terminal tests: a home with a model, and `launch` to start the real app on a pty.

The long hang-up loop is marked `faults` and runs only when asked for (`pytest -m faults`);
`make test` runs a short version of it.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest

from qwen_tui.paths import Paths
from tests.terminal.tui_process import TuiProcess
from tests.tui.conftest import install_fake_model

FAKE_MODEL = "fake-model"
FAKE_APP = ("-m", "tests.terminal.fake_app")
"""The real program with the FakeEngine in place of a loaded model (see fake_app.py)."""


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "faults" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="long fault loop: run it with -m faults")
    for item in items:
        if item.get_closest_marker("faults") and "terminal" in item.nodeid:
            item.add_marker(skip)


@pytest.fixture
def fake_home(paths: Paths) -> Paths:
    """This test's QWEN_TUI_HOME with a model the FakeEngine stands in for."""
    install_fake_model(paths, FAKE_MODEL)
    return paths


Launch = Callable[..., TuiProcess]


@pytest.fixture
def launch() -> Iterator[Launch]:
    """launch(*args, fake=True, **TuiProcess options): the app on a pty, killed at the end
    of the test if it is still running (a failed test never leaves one behind)."""
    started: list[TuiProcess] = []

    def start(*args: str, fake: bool = True, **options: object) -> TuiProcess:
        if fake:
            options.setdefault("prefix", FAKE_APP)
        tui = TuiProcess(*args, **options)  # type: ignore[arg-type]
        started.append(tui)
        return tui

    yield start
    for tui in started:
        tui.kill()
