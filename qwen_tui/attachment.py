"""Text attached to a user message (a file, a command's output, piped stdin): the plain data,
and how the model reads it. No I/O, no UI (reading files and running commands:
`context_sources`).

The model gets the message's typed text, then each attachment in a fenced block under a
header line. The fence is longer than any run of backticks inside the text, so nothing in
an attachment can close its block early; chat-format control strings (`<|im_end|>`, ...)
inside it are broken with a word joiner, so they stay text even for a server that
tokenises with special tokens on; terminal control characters are made visible.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Literal

from qwen_tui.visible_text import one_line, visible_text

AttachmentKind = Literal["file", "command", "stdin"]
KINDS: tuple[AttachmentKind, ...] = ("file", "command", "stdin")

_WORD_JOINER = "\u2060"
_CONTROL_TOKEN = re.compile(r"<\|([A-Za-z0-9_]+)\|>")
"""`<|im_start|>`, `<|im_end|>`, `<|endoftext|>`, `<|eot_id|>`, ...: the chat formats'
control strings."""
_BACKTICKS = re.compile(r"`{3,}")
_ESCAPE_SEQUENCE = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]"  # CSI: colours, cursor moves (ls --color, grep, compilers)
    r"|\x1b\][^\x07\x1b]*(?:\x07|\x1b\\)"  # OSC: titles, hyperlinks, clipboard writes
    r"|\x1b[@-Z\\-_]"  # other two-byte escapes
)


def strip_escapes(text: str) -> str:
    """`text` without terminal escape sequences (colours are noise to the model); any
    control character left is made visible by `visible_text`."""
    return _ESCAPE_SEQUENCE.sub("", text) if "\x1b" in text else text


@dataclass(frozen=True)
class Attachment:
    """One attached text, as saved in the session and shown collapsed under the message."""

    kind: AttachmentKind
    label: str
    """The path as typed (file), the command line (command), or "stdin"."""
    text: str
    """The text itself (for a command: stdout, then stderr under a marker)."""
    exit_status: int | None = None
    """A command's exit status; None for files, stdin, and a command stopped by its timeout."""
    truncated: bool = False
    """Part of the text was left out (too big); `text` ends with a marker saying so."""

    def __post_init__(self) -> None:
        # Outside text: terminal controls never reach a widget or the model raw.
        object.__setattr__(self, "text", visible_text(strip_escapes(self.text)))
        object.__setattr__(self, "label", visible_text(self.label))

    def title(self) -> str:
        """One line naming it: `file notes.txt`, `$ ls -l (exit 0)`, `stdin`."""
        match self.kind:
            case "file":
                head = f"file {self.label}"
            case "command":
                status = "timed out" if self.exit_status is None else f"exit {self.exit_status}"
                head = f"$ {self.label} ({status})"
            case _:
                head = "piped stdin"
        lines = self.text.count("\n") + (1 if self.text and not self.text.endswith("\n") else 0)
        note = ", truncated" if self.truncated else ""
        return one_line(f"{head} · {lines} line{'' if lines == 1 else 's'}{note}")

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "label": self.label,
            "text": self.text,
            "exit_status": self.exit_status,
            "truncated": self.truncated,
        }


def neutralise(text: str) -> str:
    """`text` with every chat control string broken by an invisible word joiner."""
    return _CONTROL_TOKEN.sub(lambda m: "<" + _WORD_JOINER + m.group()[1:], text)


def _fence(text: str) -> str:
    longest = max((len(run) for run in _BACKTICKS.findall(text)), default=2)
    return "`" * max(3, longest + 1)


def render(attachment: Attachment, number: int) -> str:
    """How the model reads one attachment: a header line and a fenced block."""
    body = neutralise(attachment.text)
    fence = _fence(body)
    header = f"[Attachment {number}: {neutralise(attachment.title())}]"
    return f"{header}\n{fence}\n{body.rstrip(chr(10))}\n{fence}"


def prompt_text(content: str, attachments: tuple[Attachment, ...] | list[Attachment]) -> str:
    """A user message as the model reads it: the typed text, then its attachments."""
    if not attachments:
        return content
    blocks = [render(a, i) for i, a in enumerate(attachments, start=1)]
    return "\n\n".join([content, *blocks] if content else blocks)
