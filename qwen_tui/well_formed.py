"""One rule for invalid text from outside, applied the moment it comes in."""

from __future__ import annotations

import re

REPLACEMENT = "\ufffd"
"""What invalid text becomes, everywhere: bytes that are not UTF-8 (stdin, argv, a server)
and lone surrogates (a JSON "\\ud800", Python's surrogateescape) are each one U+FFFD, the
moment they come in. Text that cannot be encoded as UTF-8 would fail later, far from its
cause: printing a reply, saving a session, sending the next turn to a server."""
_SURROGATE = re.compile("[\ud800-\udfff]")


def well_formed(text: str) -> str:
    """`text` with every lone surrogate replaced by U+FFFD (see REPLACEMENT)."""
    if text.isascii():
        return text
    return _SURROGATE.sub(REPLACEMENT, text)


def decode_input(data: bytes) -> str:
    """Bytes from outside (stdin, a pipe) as text: UTF-8, each invalid byte one U+FFFD."""
    return data.decode("utf-8", errors="replace")
