"""The suite names a machine's refusal of threads and processes (tests/conftest.py)."""

from __future__ import annotations

import errno

from tests.conftest import _refusal


def test_refused_threads_and_processes_are_recognised_through_the_chain() -> None:
    assert _refusal(RuntimeError("can't start new thread")) == "a new thread"
    try:
        try:
            raise BlockingIOError(errno.EAGAIN, "Resource temporarily unavailable")
        except OSError as fork_error:
            raise IndexError("list index out of range") from fork_error
    except IndexError as later:
        assert _refusal(later) == "a new process or thread"
    assert _refusal(IndexError("list index out of range")) is None
    assert _refusal(OSError(errno.ENOENT, "No such file")) is None
