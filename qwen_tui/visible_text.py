"""Make untrusted text safe to show: control characters become visible, nothing is interpreted.

Model output, pasted text, file contents and session titles can hold terminal escape sequences
(ESC, OSC 52 clipboard writes, BEL, C1 controls). Textual draws through its own renderer, but a
raw ESC in a cell could still reach the terminal, so every such string passes through
`visible_text()` before it reaches a widget. Rich markup is a separate matter: widgets that parse
markup (Static, Label, ListItem titles) must get `markup=False` or a `rich.text.Text`.
"""

from __future__ import annotations

import re

from qwen_tui.well_formed import well_formed

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


# ---------------------------------------------------------------- text for a terminal line
# What the CLI prints on stderr (and stdout lists) of outside text: server errors, exception
# messages, file names, titles, config keys. Kept apart from visible_text() above, which the
# UI's drawing rules may change, so that a message line has one rule of its own.

_LINE_CONTROL = re.compile(r"[\x00-\x08\x0a-\x1f\x7f\x80-\x9f]")


def terminal_line(text: object) -> str:
    """`text` (any object, as str()) safe to print on a terminal as part of a message line:
    every control character (C0 incl. CR and LF, DEL, C1) made visible, lone surrogates
    (undecodable input) replaced by U+FFFD, so nothing can move the cursor, retitle or clear
    the screen, ring the bell, or fail to encode."""
    return _LINE_CONTROL.sub(_picture, well_formed(str(text)))


def terminal_text(text: object) -> str:
    """`terminal_line` for several lines: newlines and tabs are kept, nothing else."""
    return "\n".join(terminal_line(line) for line in str(text).split("\n"))


def copyable_text(text: str) -> tuple[str, int]:
    """`text` as the screen shows it, for the clipboard: line ends normalised (a lone CR is a
    line break) and every other control character removed, not pictured. Raw, a reply's
    `ESC[201~` would end a terminal's bracketed paste and run what follows in the shell it is
    pasted into. Returns the text and how many characters were removed."""
    return _CONTROL.subn("", text.replace("\r\n", "\n").replace("\r", "\n"))
