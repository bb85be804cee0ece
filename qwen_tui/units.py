"""Sizes and times as people read them: one unit convention for the CLI and the TUI.

Sizes are binary multiples written KB, MB, GB (1 GB = 2**30 bytes), everywhere: the catalog's
download sizes, free disk and RAM, progress, model sizes, the status bar. Two conventions in
one flow (1e9 in the disk check, 2**30 on the setup screen) told a user different numbers
for the same bytes.
"""

from __future__ import annotations

from typing import Literal

KB = 2**10
MB = 2**20
GB = 2**30

Unit = Literal["B", "KB", "MB", "GB"]
_UNITS: dict[Unit, int] = {"B": 1, "KB": KB, "MB": MB, "GB": GB}


def human_bytes(count: float, unit: Unit | None = None, digits: int | None = None) -> str:
    """`340.1 KB`, `1.8 GB`: in `unit`, or the largest unit the count reaches.

    Digits by default: none for bytes, two below 1 of the unit (`0.25 GB`), else one.
    """
    if unit is None:
        unit = next((u for u in ("GB", "MB", "KB") if abs(count) >= _UNITS[u]), "B")
    value = count / _UNITS[unit]
    if digits is None:
        digits = 0 if unit == "B" else 2 if abs(value) < 1 else 1
    return f"{value:.{digits}f} {unit}"


def clock_text(seconds: float) -> str:
    """`m:ss` (or `h:mm:ss`) for an ETA or an elapsed time."""
    seconds = int(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return f"{hours}:{minutes:02d}:{secs:02d}" if hours else f"{minutes}:{secs:02d}"
