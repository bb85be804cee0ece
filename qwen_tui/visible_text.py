"""Make untrusted text safe to show: control characters become visible, nothing is interpreted.

Model output, pasted text, file contents and session titles can hold terminal escape sequences
(ESC, OSC 52 clipboard writes, BEL, C1 controls). Textual draws through its own renderer, but a
raw ESC in a cell could still reach the terminal, so every such string passes through
`visible_text()` before it reaches a widget. Rich markup is a separate matter: widgets that parse
markup (Static, Label, ListItem titles) must get `markup=False` or a `rich.text.Text`.
"""

from __future__ import annotations

import re

# C0 controls except tab and newline, DEL, and the C1 range (0x80-0x9f, e.g. CSI 0x9b).
_CONTROL = re.compile(r"[\x00-\x08\x0b-\x1f\x7f\x80-\x9f]")


def _picture(match: re.Match[str]) -> str:
    code = ord(match.group())
    if code < 0x20:
        return chr(0x2400 + code)  # Unicode "control pictures": ESC -> ␛, BEL -> ␇
    if code == 0x7F:
        return "\u2421"  # ␡
    return f"\\x{code:02x}"  # C1 has no pictures: show its code


def visible_text(text: str) -> str:
    """`text` with line endings normalised and every other control character made visible.

    A lone CR is a line break too: terminals send each line break of a paste as one.
    """
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    return _CONTROL.sub(_picture, text)


def one_line(text: str) -> str:
    """`visible_text` on a single line (titles, list rows): newlines and tabs become spaces."""
    return " ".join(visible_text(text).split())
