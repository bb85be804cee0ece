"""engine/memory.py: RAM given back to the system, measured as the process's RSS."""

from __future__ import annotations

import psutil
import pytest

from qwen_tui.engine import memory

MB = 2**20


def rss() -> int:
    return psutil.Process().memory_info().rss


@pytest.mark.skipif(memory._glibc() is None, reason="needs glibc's madvise")
def test_dropped_pages_leave_rss_and_neighbours_keep_their_values() -> None:
    import torch

    block = memory.mapped_empty((96 * MB,), torch.uint8)
    block.fill_(7)
    before = rss()
    # A tensor starting and ending mid-page: the pages it shares stay as they are.
    middle = block[100 : 64 * MB + 100]
    memory.drop_pages(middle)
    assert before - rss() > 60 * MB
    assert int(block[99]) == 7 and int(block[100]) == 7
    assert int(block[64 * MB + 100]) == 7 and int(block[-1]) == 7
