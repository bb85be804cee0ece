"""One unit convention for sizes (binary, written KB/MB/GB) and one wording for reply stats,
shared by the CLI and the TUI."""

from __future__ import annotations

import shutil
from collections import namedtuple
from pathlib import Path

import pytest

from qwen_tui.conversation import GenerationStats, StopReason
from qwen_tui.engine.stats import decode_rate, time_to_first_token
from qwen_tui.model_setup.download import DownloadError, check_disk_space
from qwen_tui.stats_text import full_stats_line, reply_stats_line
from qwen_tui.units import GB, MB, clock_text, human_bytes
from qwen_tui.widgets.status_bar import ram_text


@pytest.mark.parametrize(
    ("count", "unit", "text"),
    [
        (512, None, "512 B"),
        (1536, None, "1.5 KB"),
        (338.1 * 1024, None, "338.1 KB"),
        (3 * MB, None, "3.0 MB"),
        (GB, None, "1.0 GB"),
        (10**9, "GB", "0.93 GB"),  # a decimal GB is not a GB here
        (3680 * MB, "GB", "3.6 GB"),
    ],
)
def test_sizes_are_binary_multiples(count: float, unit: str | None, text: str) -> None:
    assert human_bytes(count, unit) == text  # type: ignore[arg-type]


def test_the_status_bar_shows_whole_megabytes_then_gigabytes() -> None:
    assert ram_text(300 * MB) == "300 MB"
    assert ram_text(int(1.25 * GB)) == "1.2 GB"


def test_the_disk_check_counts_gigabytes_as_the_setup_screen_does(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """It said 1e9 while the setup screen said 2**30: 3.2 GB needed, 3.0 GB shown."""
    usage = namedtuple("usage", "total used free")
    monkeypatch.setattr(shutil, "disk_usage", lambda _path: usage(10 * GB, 9 * GB, 1 * GB))
    with pytest.raises(DownloadError) as caught:
        check_disk_space(tmp_path, 3 * GB)
    assert "need 3.0 GB, only 1.0 GB is free. Free up 2.0 GB" in str(caught.value)


def test_clock_text() -> None:
    assert clock_text(75.9) == "1:15"
    assert clock_text(3 * 3600 + 5) == "3:00:05"


def test_the_decode_rate_counts_tokens_after_the_first() -> None:
    assert decode_rate(11, first_at=10.0, last_at=12.0) == 5.0
    assert decode_rate(1, first_at=10.0, last_at=10.0) is None  # one token: no rate
    assert decode_rate(5, first_at=None, last_at=None) is None
    assert time_to_first_token(9.5, 10.0) == 0.5
    assert time_to_first_token(9.5, None) is None


def test_the_reply_line_and_the_cli_line_share_their_figures() -> None:
    stats = GenerationStats(
        prompt_tokens=20,
        generated_tokens=8,
        ttft_s=0.314,
        decode_tok_s=12.49,
        stop_reason=StopReason.MAX_TOKENS,
        dropped_turns=2,
    )
    assert reply_stats_line(stats) == (
        "8 tokens · TTFT 0.31 s · 12.5 tok/s · max tokens reached · 2 old turns left out"
    )
    assert full_stats_line(stats) == (
        "TTFT 0.31 s · 12.5 tok/s · 20 prompt + 8 generated tokens · max_tokens"
        " · 2 oldest turns left out (context full)"
    )
    assert reply_stats_line(None) == ""
