"""Plain data shared by every layer: messages, generation settings and stats. No I/O, no UI."""

from __future__ import annotations

import math
import time
from dataclasses import asdict, dataclass, field, fields, replace
from enum import StrEnum
from typing import Any, Literal

from qwen_tui.attachment import Attachment, prompt_text
from qwen_tui.well_formed import well_formed

Role = Literal["system", "user", "assistant"]
ROLE_LABELS: dict[str, str] = {"user": "You", "assistant": "Assistant", "system": "System"}
"""How each role is named to a person: above a message on screen and in an export."""


class StopReason(StrEnum):
    EOS = "eos"
    """The model ended its reply."""
    MAX_TOKENS = "max_tokens"
    """The reply reached max_new_tokens."""
    STOPPED = "stopped"
    """The user stopped it (escape / ctrl-c)."""
    ERROR = "error"
    """Generation raised; the partial text is kept."""


@dataclass(frozen=True)
class GenerationSettings:
    """Sampling settings of one session; new sessions start from the config defaults."""

    temperature: float = 0.7
    """0 means greedy decoding."""
    top_p: float = 0.8
    """Nucleus sampling: keep the smallest token set whose probability reaches this."""
    top_k: int = 20
    """Sample among the k most likely tokens (0 = no limit)."""
    repetition_penalty: float = 1.05
    """>1 discourages repeating tokens already in the context."""
    max_new_tokens: int = 512
    """Upper bound on the reply length in tokens."""
    seed: int | None = None
    """Fixed seed for reproducible sampling; None = random."""

    def with_changes(self, **changes: Any) -> GenerationSettings:
        return replace(self, **changes)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationSettings:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class Bound:
    """The values one number setting may take, and how to say so: one home for the bounds
    that config.toml, the command line and the settings dialog all check."""

    low: float
    high: float
    words: str
    """What a good value looks like, e.g. "a number from 0 to 5 (0 = greedy)"."""
    integer: bool = False
    low_open: bool = False
    """`low` itself is not allowed (top_p > 0)."""
    optional: bool = False
    """None (blank in the dialog) is allowed: the seed."""

    def allows(self, value: object) -> bool:
        if value is None:
            return self.optional
        if isinstance(value, bool) or not isinstance(value, int | float):
            return False
        if self.integer and not isinstance(value, int):
            return False
        if isinstance(value, float) and not math.isfinite(value):
            return False
        above = value > self.low if self.low_open else value >= self.low
        return above and value <= self.high

    def parse(self, text: str) -> int | float | None:
        """`text` as typed (command line, dialog) -> the value; ValueError says what is
        expected."""
        text = text.strip()
        value: int | float | None
        try:
            if not text and self.optional:
                value = None
            else:
                value = int(text) if self.integer else float(text)
        except ValueError:
            value = math.nan  # not a number at all: the same message as out of range
        if not self.allows(value):
            raise ValueError(f"expected {self.words}, got {text!r}")
        return value


SEED_LIMIT = 2**64 - 1
"""Seeds are 64-bit: torch's generator and the servers' seed fields take no more."""
MAX_NEW_TOKENS_LIMIT = 1_000_000
"""Far beyond any context window: only a typo goes further."""

SETTING_BOUNDS: dict[str, Bound] = {
    "temperature": Bound(0, 5, "a number from 0 to 5 (0 = greedy)"),
    "top_p": Bound(0, 1, "a number above 0, at most 1", low_open=True),
    "top_k": Bound(0, 1_000_000, "an integer from 0 to 1000000 (0 = no limit)", integer=True),
    "repetition_penalty": Bound(0, 5, "a number above 0, at most 5", low_open=True),
    "max_new_tokens": Bound(
        1, MAX_NEW_TOKENS_LIMIT, f"an integer from 1 to {MAX_NEW_TOKENS_LIMIT}", integer=True
    ),
    "seed": Bound(
        0,
        SEED_LIMIT,
        f"an integer from 0 to {SEED_LIMIT}, or none for a random seed",
        integer=True,
        optional=True,
    ),
}
"""GenerationSettings field -> its bound."""


@dataclass(frozen=True)
class GenerationStats:
    """What one reply cost; shown under the reply and saved with it."""

    prompt_tokens: int = 0
    generated_tokens: int = 0
    ttft_s: float | None = None
    """Seconds from the request to the first generated token."""
    decode_tok_s: float | None = None
    """Tokens per second after the first one."""
    total_s: float = 0.0
    stop_reason: StopReason = StopReason.EOS
    dropped_turns: int = 0
    """Oldest turns left out because the history did not fit the context window."""
    reused_tokens: int = 0
    """Prompt tokens the model had already seen in an earlier turn (KV cache), not recomputed."""
    error: str | None = None

    def __post_init__(self) -> None:
        if self.error is not None:  # often a server's or an exception's own words
            object.__setattr__(self, "error", well_formed(self.error))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["stop_reason"] = str(self.stop_reason)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> GenerationStats:
        known = {f.name for f in fields(cls)}
        values = {k: v for k, v in data.items() if k in known}
        if "stop_reason" in values:
            values["stop_reason"] = StopReason(values["stop_reason"])
        return cls(**values)


def new_message_id() -> str:
    """Random, so ids made by two processes (or a fork) never need renumbering."""
    import secrets

    return secrets.token_hex(4)


@dataclass
class Message:
    role: Role
    content: str
    created: float = field(default_factory=time.time)
    stats: GenerationStats | None = None
    """Assistant replies only."""
    incomplete: bool = False
    """True while a reply is still streaming (or its process died mid-reply)."""
    attachments: tuple[Attachment, ...] = ()
    """Files and command output the user attached (user messages only); the model reads
    them after `content` (`for_model`)."""
    id: str = field(default_factory=new_message_id, compare=False)
    """Names the message within its session: what branches point at."""
    parent: str | None = field(default=None, compare=False)
    """The id of the message this one answers or follows, kept for messages off the active
    path (`Session.branches`); on the path the message before it is its parent."""

    def __post_init__(self) -> None:
        self.content = well_formed(self.content)

    def for_model(self) -> Message:
        """This message as the engine reads it: attachments rendered into the text."""
        if not self.attachments:
            return self
        text = prompt_text(self.content, self.attachments)
        return Message(self.role, text, created=self.created, stats=self.stats)

    @property
    def stopped(self) -> bool:
        return self.stats is not None and self.stats.stop_reason is StopReason.STOPPED

    @property
    def error(self) -> str | None:
        return self.stats.error if self.stats else None


DEFAULT_SYSTEM_PROMPT = "You are a helpful assistant."


def new_session_id() -> str:
    """Sortable by creation time, unique enough for one user's folder, safe as a file name."""
    import secrets

    return time.strftime("%Y%m%d-%H%M%S") + "-" + secrets.token_hex(3)


@dataclass
class Session:
    """One conversation as the user sees it in the sidebar."""

    id: str = field(default_factory=new_session_id)
    title: str = ""
    created: float = field(default_factory=time.time)
    updated: float = field(default_factory=time.time)
    model: str = ""
    """Name of the model that answered last (informational; any model can continue)."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    settings: GenerationSettings = field(default_factory=GenerationSettings)
    messages: list[Message] = field(default_factory=list)
    """The active path: the conversation shown, sent to the model and exported."""
    branches: list[Message] = field(default_factory=list)
    """Every other message (earlier replies, edited prompts and what followed them), each
    with its `parent`, in the order they left the active path (`conversation_tree`)."""
    forked_from: str = ""
    """The id of the session this one was forked from ("" if none)."""

    def __post_init__(self) -> None:
        self.title = well_formed(self.title)
        self.system_prompt = well_formed(self.system_prompt)
        self.model = well_formed(self.model)

    def chat_messages(self) -> list[Message]:
        """The system prompt followed by the turns: what the engine is asked to continue."""
        system = Message("system", self.system_prompt, created=self.created)
        return [system, *(m.for_model() for m in self.messages)]

    def add(self, role: Role, content: str, attachments: tuple[Attachment, ...] = ()) -> Message:
        message = Message(role, content, attachments=attachments)
        self.messages.append(message)
        self.updated = message.created
        if not self.title and role == "user":
            self.title = title_from_text(content or " ".join(a.label for a in attachments))
        return message


def title_from_text(text: str, limit: int = 60) -> str:
    """A one-line title from the first user message."""
    line = " ".join(text.split())
    return line if len(line) <= limit else line[: limit - 1] + "…"
