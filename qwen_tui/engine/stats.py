"""The two speed figures of a reply, computed one way for every engine and the live status.

TTFT is the time from the request to the first token; the decode rate counts tokens after
the first one, over the time since it arrived (the first token's time is prefill, not decode).
"""

from __future__ import annotations


def time_to_first_token(started: float, first_at: float | None) -> float | None:
    """Seconds from `started` to the first token; None while there is none."""
    return None if first_at is None else first_at - started


def decode_rate(tokens: int, first_at: float | None, last_at: float | None) -> float | None:
    """Tokens per second after the first: (tokens - 1) / (last_at - first_at).

    None until two tokens arrived at different times: one token has no decode rate.
    """
    if first_at is None or last_at is None or tokens < 2 or last_at <= first_at:
        return None
    return (tokens - 1) / (last_at - first_at)
