"""What one reply cost, in words: the line under a reply (and in an export), the status
bar's figures and `ask --stats`. One wording, so the TUI and the CLI never disagree."""

from __future__ import annotations

from qwen_tui.conversation import GenerationStats, StopReason


def ttft_text(seconds: float) -> str:
    return f"TTFT {seconds:.2f} s"


def rate_text(tokens_per_s: float) -> str:
    return f"{tokens_per_s:.1f} tok/s"


def _speed(stats: GenerationStats) -> list[str]:
    parts = []
    if stats.ttft_s is not None:
        parts.append(ttft_text(stats.ttft_s))
    if stats.decode_tok_s is not None:
        parts.append(rate_text(stats.decode_tok_s))
    return parts


def reply_stats_line(stats: GenerationStats | None) -> str:
    """`42 tokens · TTFT 0.31 s · 12.5 tok/s`: under a reply, and in a Markdown export."""
    if stats is None:
        return ""
    parts = [f"{stats.generated_tokens} tokens", *_speed(stats)]
    if stats.stop_reason is StopReason.MAX_TOKENS:
        parts.append("max tokens reached")
    if stats.dropped_turns:
        parts.append(f"{stats.dropped_turns} old turns left out")
    return " · ".join(parts)


def full_stats_line(stats: GenerationStats) -> str:
    """`TTFT 0.31 s · 12.5 tok/s · 20 prompt + 8 generated tokens · eos`: `ask --stats`."""
    parts = _speed(stats)
    parts.append(f"{stats.prompt_tokens} prompt + {stats.generated_tokens} generated tokens")
    parts.append(str(stats.stop_reason))
    if stats.dropped_turns:
        parts.append(f"{stats.dropped_turns} oldest turns left out (context full)")
    return " · ".join(parts)
