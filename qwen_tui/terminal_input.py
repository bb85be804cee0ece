"""What the terminal sends, split into keystrokes and pastes before any of it is read as keys.

Pasted text must never act as keys: a pasted ESC would stop a reply or close a dialog, a pasted
CR (terminals send every line break of a paste as a lone CR) would send a half-written
message. Two cases:

- Bracketed paste (the terminal wraps the paste in ESC[200~ ... ESC[201~): everything between
  the markers is text, whatever bytes it holds. Textual's own parser keeps reading escape
  sequences inside a paste and replays the ones it does not know as keys, so the markers are
  found here, before the parser sees anything.
- No bracketed paste (an old terminal, `tmux paste-buffer` without -p): a person types one key
  per read, so a single read holding a line break *followed by more text* is a paste, and so
  is whatever arrives right after it (a long paste comes in 4 KB reads).

No textual here: the driver feeds this and turns its pieces into key events or Paste events.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

PASTE_START = "\x1b[200~"
PASTE_END = "\x1b[201~"
BURST_GAP_S = 0.05
"""Input arriving within this long after a paste-like burst belongs to the same paste (reads
of one paste follow each other within microseconds; a person's next key takes far longer)."""
HOLD_S = 0.02
"""How long the start of a possible marker (e.g. a lone ESC) waits for the rest of it."""
UNFINISHED_PASTE_S = 1.0
"""A bracketed paste whose end marker never comes is ended after this much silence."""

# Escape sequences (CSI, SS3) a terminal sends for keys and mouse reports.
_SEQUENCE = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]|\x1bO.|\x1b.", re.DOTALL)
# A line break with a printable character somewhere after it.
_BREAK_THEN_TEXT = re.compile(r"[\r\n][^\x00-\x1f\x7f]", re.DOTALL)


@dataclass(frozen=True)
class Typed:
    """Keystrokes: for the terminal parser."""

    text: str


@dataclass(frozen=True)
class Pasted:
    """One paste, every character of it text (line breaks as the terminal sent them)."""

    text: str


Piece = Typed | Pasted


def looks_pasted(text: str) -> bool:
    """One read holding a line break followed by more text: no person types that fast."""
    return bool(_BREAK_THEN_TEXT.search(_SEQUENCE.sub("", text).replace("\r\n", "\n")))


def _held_prefix(text: str, marker: str) -> int:
    """Length of the longest end of `text` that could be the start of `marker`."""
    for size in range(min(len(marker) - 1, len(text)), 0, -1):
        if marker.startswith(text[-size:]):
            return size
    return 0


class TerminalInput:
    """Feed it the terminal's text as it is read; it returns keystrokes and pastes in order.

    `feed(text, now)` after each read, `flush(now)` when a read times out; `wait_s()` says how
    long the reader may wait for input before it must call `flush` (None: as long as it likes).
    """

    def __init__(self) -> None:
        self._held = ""
        """The end of the last read, if it may be the start of a paste marker."""
        self._held_at = 0.0
        self._bracketed: list[str] | None = None
        """The bracketed paste being received, or None outside one."""
        self._burst: list[str] | None = None
        """The unbracketed paste being received, or None."""
        self._last_input = 0.0

    def feed(self, text: str, now: float) -> list[Piece]:
        pieces: list[Piece] = []
        text, self._held = self._held + text, ""
        self._last_input = now
        while text:
            if self._bracketed is not None:
                text = self._in_paste(text, pieces)
            else:
                text = self._outside_paste(text, pieces, now)
        return pieces

    def _in_paste(self, text: str, pieces: list[Piece]) -> str:
        assert self._bracketed is not None
        end = text.find(PASTE_END)
        if end < 0:
            held = _held_prefix(text, PASTE_END)
            self._bracketed.append(text[: len(text) - held])
            self._held = text[len(text) - held :]
            return ""
        self._bracketed.append(text[:end])
        pieces.append(Pasted("".join(self._bracketed)))
        self._bracketed = None
        return text[end + len(PASTE_END) :]

    def _outside_paste(self, text: str, pieces: list[Piece], now: float) -> str:
        start = text.find(PASTE_START)
        if start >= 0:
            self._keys(text[:start], pieces, now)
            self._end_burst(pieces)  # a bracketed paste ends any unbracketed one
            self._bracketed = []
            return text[start + len(PASTE_START) :]
        held = _held_prefix(text, PASTE_START) if self._burst is None else 0
        self._keys(text[: len(text) - held], pieces, now)
        if held:
            self._held, self._held_at = text[len(text) - held :], now
        return ""

    def _keys(self, text: str, pieces: list[Piece], now: float) -> None:
        if not text:
            return
        if self._burst is None and looks_pasted(text):
            self._burst = []
        if self._burst is not None:
            self._burst.append(text)
        else:
            pieces.append(Typed(text))

    def _end_burst(self, pieces: list[Piece]) -> None:
        if self._burst is not None:
            pieces.append(Pasted("".join(self._burst)))
            self._burst = None

    def flush(self, now: float) -> list[Piece]:
        """What waited long enough: a held lone ESC is a key, a burst or an unfinished
        bracketed paste is over."""
        pieces: list[Piece] = []
        quiet = now - self._last_input
        if self._burst is not None and quiet >= BURST_GAP_S:
            self._end_burst(pieces)
        if self._bracketed is not None:
            if quiet >= UNFINISHED_PASTE_S:
                self._bracketed.append(self._held)
                self._held = ""
                pieces.append(Pasted("".join(self._bracketed)))
                self._bracketed = None
        elif self._held and now - self._held_at >= HOLD_S:
            held, self._held = self._held, ""
            pieces.append(Typed(held))
        return pieces

    def wait_s(self) -> float | None:
        """How long a read may block before `flush` has something to do."""
        if self._held and self._bracketed is None:
            return HOLD_S
        if self._burst is not None:
            return BURST_GAP_S
        if self._bracketed is not None:
            return UNFINISHED_PASTE_S
        return None
