"""Fault tests: kills, signals, full and read-only disks, two instances, hostile files.

The long SIGKILL loop is marked `faults` and runs only when asked for (`make faults`, i.e.
`pytest -m faults`); `make test` runs a short version of it.
"""

from __future__ import annotations

import pytest

from qwen_tui.paths import Paths
from qwen_tui.store import SessionStore
from tests.faults.asking import make_session


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers", "faults: the long fault loop (minutes); runs with make faults (-m faults)"
    )


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if "faults" in (config.option.markexpr or ""):
        return
    skip = pytest.mark.skip(reason="long fault loop: run it with make faults (-m faults)")
    for item in items:
        if item.get_closest_marker("faults"):
            item.add_marker(skip)


@pytest.fixture
def tiny_home(paths: Paths, tiny_quantized, install_into_home) -> Paths:
    """This test's QWEN_TUI_HOME with the tiny Qwen2 model installed."""
    install_into_home(tiny_quantized("qwen2"))
    return paths


@pytest.fixture
def session_id(tiny_home: Paths) -> str:
    """A saved session with one finished turn, for `ask --session` to continue."""
    session = make_session()
    SessionStore(tiny_home.sessions_dir).save(session)
    return session.id
