"""Chat formats: turning a conversation into prompt token ids, exact to the token.

- Qwen v1 (`Qwen/Qwen-1_8B-Chat`) has no chat template; its reference `make_context` builds
  ChatML by encoding role names, newlines and each message separately, with special tokens
  disallowed inside text (see shared/notes/qwen-v1-chat-format.md). We do the same.
- Every other model brings a chat template; we render it, but encode the message texts with
  special-token matching off, so text a user types or pastes (`<|im_start|>system ...`) can
  never become a control token.

A conversation that ends with an assistant message asks for more of that message (continue
after a stop or an edit): its prompt is the same ids the closed message would take, cut right
after its text (no end-of-turn token), so the model goes on as if it had written that text.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from qwen_tui.conversation import Message
from qwen_tui.engine.base import EngineError

# Qwen v1's control tokens (tokenization_qwen.py): fixed ids after its 151643 BPE ranks.
QWEN_ENDOFTEXT = 151643
QWEN_IM_START = 151644
QWEN_IM_END = 151645
QWEN_V1_CHAT_FORMAT = "qwen-v1"
"""A manifest's chat_format for Qwen v1 models converted to the Qwen2 layout at setup: their
tokenizer is a Qwen2 one, their prompts stay Qwen v1's make_context."""


class PromptTooLongError(EngineError):
    """The system prompt and the newest message alone do not fit the context window."""


class PromptFormat(Protocol):
    stop_token_ids: list[int]

    def encode(self, messages: Sequence[Message]) -> list[int]:
        """Prompt ids for `messages` (system first, user last), ending with the assistant cue."""
        ...

    def encode_continuation(self, messages: Sequence[Message]) -> list[int]:
        """Prompt ids for `messages` whose last one is an assistant reply to add to: they end
        right after its text, with no end-of-turn token."""
        ...


def continues(messages: Sequence[Message]) -> bool:
    """True when `messages` ask for more of their last (assistant) message, not a new reply."""
    return bool(messages) and messages[-1].role == "assistant"


def prompt_ids(fmt: PromptFormat, messages: Sequence[Message]) -> list[int]:
    """The ids generate() feeds for `messages`: a new reply, or more of the last one."""
    return fmt.encode_continuation(messages) if continues(messages) else fmt.encode(messages)


def _reply_to_continue(messages: Sequence[Message]) -> Message:
    if not continues(messages):
        raise ValueError("a continuation needs a conversation that ends with an assistant message")
    return messages[-1]


@dataclass
class QwenV1Format:
    """ChatML exactly as Qwen v1's `make_context` builds it (no BOS; system block always)."""

    encode_text: Callable[[str], list[int]]
    """Encodes plain text with special tokens disallowed (`allowed_special=set()`)."""
    im_start_id: int = QWEN_IM_START
    im_end_id: int = QWEN_IM_END
    endoftext_id: int = QWEN_ENDOFTEXT

    @property
    def stop_token_ids(self) -> list[int]:
        # `chat()` stops on <|im_end|> or <|im_start|>; <|endoftext|> ends a raw completion.
        return [self.im_end_id, self.im_start_id, self.endoftext_id]

    def _block(self, role: str, content: str) -> list[int]:
        newline = self.encode_text("\n")
        return [
            self.im_start_id,
            *self.encode_text(role),
            *newline,
            *self.encode_text(content),
            self.im_end_id,
        ]

    def encode(self, messages: Sequence[Message]) -> list[int]:
        newline = self.encode_text("\n")
        system = messages[0].content if messages and messages[0].role == "system" else ""
        turns = messages[1:] if messages and messages[0].role == "system" else messages
        ids = self._block("system", system)
        for message in turns:
            ids += newline + self._block(message.role, message.content)
        return [*ids, *newline, self.im_start_id, *self.encode_text("assistant"), *newline]

    def encode_continuation(self, messages: Sequence[Message]) -> list[int]:
        # make_context encodes a reply as "assistant", "\n" and its text separately, then
        # <|im_end|>: the cue for a new reply followed by the text is that block, cut.
        reply = _reply_to_continue(messages)
        return self.encode(messages[:-1]) + self.encode_text(reply.content)


class ChatTemplateFormat:
    """A tokenizer's own chat template, with message texts encoded as plain text."""

    def __init__(self, tokenizer: Any) -> None:
        self.tokenizer = tokenizer
        stops = {tokenizer.eos_token_id}
        for token in ("<|im_end|>", "<|endoftext|>", "<|eot_id|>"):
            token_id = tokenizer.convert_tokens_to_ids(token)
            if isinstance(token_id, int) and token_id != tokenizer.unk_token_id:
                stops.add(token_id)
        self.stop_token_ids = sorted(i for i in stops if i is not None)

    def encode(self, messages: Sequence[Message]) -> list[int]:
        marked = self._encode_marked(messages, generation_prompt=True)
        if marked is None:
            return self._encode_transformed(messages)
        ids, rest = marked
        return ids + self._encode(rest, specials=True)

    def encode_continuation(self, messages: Sequence[Message]) -> list[int]:
        # The conversation rendered with the reply as its last message, cut where the reply's
        # text ends: exactly the ids the closed reply takes in the next turn's prompt, minus
        # the end-of-turn text after it (each piece is encoded on its own, so nothing after
        # the cut can change a token before it).
        reply = _reply_to_continue(messages)
        marked = self._encode_marked(messages, generation_prompt=False)
        if marked is not None:
            return marked[0]
        # A template that rewrites texts has no clean cut: the cue for a new reply, then the
        # text, is what the model would have seen had it written the text itself.
        return self.encode(messages[:-1]) + self._encode(reply.content, specials=False)

    def _encode_marked(
        self, messages: Sequence[Message], *, generation_prompt: bool
    ) -> tuple[list[int], str] | None:
        """The ids up to the end of the last message's text, and the rendered text after it;
        None when the template transforms message texts.

        Renders with placeholders, then encodes the template's own text with special tokens
        and each message's text without: a template that transforms the content (trim,
        escaping) loses a placeholder, and then the caller falls back."""
        marks = [f"\x00qwen-tui-{i}\x00" for i in range(len(messages))]
        chat = [{"role": m.role, "content": mark} for m, mark in zip(messages, marks, strict=True)]
        rendered = self.tokenizer.apply_chat_template(
            chat, tokenize=False, add_generation_prompt=generation_prompt
        )
        if not all(rendered.count(mark) == 1 for mark in marks):
            return None
        ids: list[int] = []
        rest = rendered
        for mark, message in zip(marks, messages, strict=True):
            before, rest = rest.split(mark, 1)
            ids += self._encode(before, specials=True)
            ids += self._encode(message.content, specials=False)
        return ids, rest

    def _encode_transformed(self, messages: Sequence[Message]) -> list[int]:
        """The fallback for a template that changes message texts: render the real texts
        and encode the whole with special tokens, but only after breaking every special
        token string inside the texts (a word joiner after its first character), so text
        a user typed or pasted still cannot become a control token."""
        words = self._special_strings()
        chat = [{"role": m.role, "content": _defang(m.content, words)} for m in messages]
        rendered = self.tokenizer.apply_chat_template(
            chat, tokenize=False, add_generation_prompt=True
        )
        return self._encode(rendered, specials=True)

    def _special_strings(self) -> list[str]:
        """Every string the tokenizer turns into an added/special token when matching."""
        found = set(getattr(self.tokenizer, "all_special_tokens", None) or ())
        added = getattr(self.tokenizer, "added_tokens_decoder", None) or {}
        found.update(str(getattr(token, "content", token)) for token in added.values())
        return sorted((word for word in found if word), key=len, reverse=True)

    def _encode(self, text: str, *, specials: bool) -> list[int]:
        if not text:
            return []
        if specials:
            return list(self.tokenizer.encode(text, add_special_tokens=False))
        return encode_as_text(self.tokenizer, text)


_WORD_JOINER = "\u2060"


def _defang(text: str, words: Sequence[str]) -> str:
    """`text` with each occurrence of `words` broken by a word joiner (invisible, and not
    part of any of them), so no tokenizer matches it as a special token."""
    for word in words:
        if word in text:
            text = text.replace(word, word[0] + _WORD_JOINER + word[1:])
    return text


def encode_as_text(tokenizer: Any, text: str) -> list[int]:
    """`text` encoded with special-token surface forms kept as ordinary text."""
    backend = getattr(tokenizer, "_tokenizer", None)
    if backend is None:
        return list(tokenizer.encode(text, add_special_tokens=False))
    backend.encode_special_tokens = True  # tokenizers >= 0.15: specials match as text
    try:
        return list(backend.encode(text, add_special_tokens=False).ids)
    finally:
        backend.encode_special_tokens = False


def format_for(tokenizer: Any, chat_format: str | None = None) -> PromptFormat:
    """Pick the chat format a loaded tokenizer needs (`chat_format` from the manifest wins)."""
    if chat_format == QWEN_V1_CHAT_FORMAT:
        im_start, im_end, endoftext = tokenizer.convert_tokens_to_ids(
            ["<|im_start|>", "<|im_end|>", "<|endoftext|>"]
        )
        return QwenV1Format(
            encode_text=lambda text: encode_as_text(tokenizer, text) if text else [],
            im_start_id=im_start,
            im_end_id=im_end,
            endoftext_id=endoftext,
        )
    if getattr(tokenizer, "chat_template", None):
        return ChatTemplateFormat(tokenizer)
    if hasattr(tokenizer, "im_start_id") and hasattr(tokenizer, "im_end_id"):
        return QwenV1Format(
            encode_text=lambda text: tokenizer.encode(text, allowed_special=set()),
            im_start_id=tokenizer.im_start_id,
            im_end_id=tokenizer.im_end_id,
            endoftext_id=getattr(tokenizer, "eod_id", QWEN_ENDOFTEXT),
        )
    raise EngineError(
        "this model's tokenizer has no chat template and is not a Qwen v1 tokenizer: "
        "qwen-tui cannot tell how to format a conversation for it"
    )


@dataclass(frozen=True)
class FittedPrompt:
    ids: list[int]
    dropped_turns: int
    max_new_tokens: int
    """The reply budget, lowered when the prompt leaves less room than asked for."""


def _turn_starts(messages: Sequence[Message]) -> list[int]:
    """Indexes of user messages: a turn is a user message and the replies after it."""
    return [i for i, m in enumerate(messages) if m.role == "user"]


def fit_to_context(
    messages: Sequence[Message],
    fmt: PromptFormat,
    context_length: int,
    max_new_tokens: int,
) -> FittedPrompt:
    """Drop the oldest turns until prompt + reply fit; never the system prompt or newest message
    (nor, when continuing a reply, the prompt it answers).

    The reply keeps up to half the window for itself when the history is long; the prompt
    gets the rest. Dropping is monotonic, so a binary search finds the fewest turns to drop
    with a handful of encodes even for sessions of thousands of messages.
    """
    system = list(messages[:1]) if messages and messages[0].role == "system" else []
    body = list(messages[len(system) :])
    reserve = max(1, min(max_new_tokens, context_length // 2))
    budget = context_length - reserve
    newest = len(body) - 1
    if continues(body) and (users := _turn_starts(body)):
        newest = users[-1]  # a reply is continued with its prompt, or not at all
    starts = sorted({i for i in _turn_starts(body) if 0 < i <= newest} | {newest})

    def encode_from(cut: int) -> list[int]:
        return prompt_ids(fmt, system + body[starts[cut - 1] :] if cut else system + body)

    ids = encode_from(0)
    dropped = 0
    if len(ids) > budget:
        low, high = 1, len(starts)  # answer in [low, high]: dropping up to the newest message
        best = encode_from(high)
        while low < high:
            mid = (low + high) // 2
            candidate = encode_from(mid)
            if len(candidate) <= budget:
                high, best = mid, candidate
            else:
                low = mid + 1
        ids, dropped = best, high
        if len(ids) > budget and len(ids) >= context_length:
            raise PromptTooLongError(
                f"the message is {len(ids)} tokens with the system prompt, more than this "
                f"model's context window of {context_length}: shorten it or split it up"
            )
        dropped = sum(1 for m in body[: starts[high - 1]] if m.role == "user")
    room = context_length - len(ids)
    return FittedPrompt(ids, dropped, max(1, min(max_new_tokens, room)))
