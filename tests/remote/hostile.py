"""Hostile replies for the replay server: what a malicious or broken OpenAI-compatible
server can send, as `Answer`s, by name (`REPLY_MODES`) and generated (`hostile_answers`).

Terminal attacks ride on text that reaches the user's terminal: OSC 0 retitles it, CSI 2J
clears it, OSC 52 writes the clipboard, BEL rings, C1 CSI (0x9b) is ESC [ on some terminals.
They can come in a reply, in an HTTP error body, or in an error event inside the stream.
Invalid text rides along: lone surrogates as JSON escapes, bytes that are not UTF-8.
"""

from __future__ import annotations

import json

from hypothesis import strategies as st

from tests.remote.sse_server import Answer, chunk_event, token_events

ATTACK = "\x1b]0;pwned\x07\x1b[2J\x1b]52;c;cHduZWQ=\x07\x9b31m\x07\r\x1bc"
"""Retitle, clear, write the clipboard, C1 CSI, bell, carriage return, full reset."""
CONTROL_BYTES = frozenset([*range(0x00, 0x09), *range(0x0B, 0x20), 0x7F, *range(0x80, 0xA0)])
"""C0 (but tab and newline), DEL and C1 as code points; on the wire C1 is two UTF-8 bytes
(0xc2 0x80-0x9f), which is how `raw_controls` looks for them."""


def raw_controls(data: bytes) -> list[str]:
    """Control characters in `data` that a terminal would act on: ESC, BEL, other C0 but
    tab and newline, DEL, and C1 whether UTF-8 encoded (c2 80-9f) or bare (80-9f outside
    a UTF-8 sequence)."""
    found = [f"0x{b:02x}" for b in data if (b < 0x20 and b not in (0x09, 0x0A)) or b == 0x7F]
    text = data.decode("utf-8", errors="surrogateescape")
    for char in text:
        code = ord(char)
        if 0x80 <= code <= 0x9F:
            found.append(f"C1 0x{code:02x}")
        elif 0xDC80 <= code <= 0xDC9F:  # a bare 0x80-0x9f byte that is not UTF-8
            found.append(f"raw 0x{code - 0xDC00:02x}")
    return found


def error_event(message: str) -> str:
    return "data: " + json.dumps({"error": {"message": message, "type": "server_error"}})


def reply_mode(mode: str, payload: str = ATTACK) -> Answer:
    """The answer for one named mode (see REPLY_MODES), carrying `payload` where it fits."""
    if mode == "error_500":
        return Answer(status=500, error=f"boom {payload}")
    if mode == "error_body_text":  # not JSON: the client shows the body as text
        return Answer(status=502, body=f"bad gateway {payload}".encode(errors="surrogatepass"))
    if mode == "error_body_bytes":  # not even UTF-8
        return Answer(status=500, body=b"caf\xe9 \x9b2J \x1b[31m \xff\xfe")
    if mode == "error_event":
        return Answer([chunk_event("Par"), error_event(f"oops {payload}")])
    if mode == "error_event_first":
        return Answer([error_event(payload)])
    if mode == "reply":  # in the reply itself: inert on a terminal, verbatim in the session
        return Answer(token_events(["Hi ", payload, " end"]))
    if mode == "lone_surrogate":
        return Answer(token_events(["S", "\ud800", "S", " ok"]))
    if mode == "split_surrogate_pair":  # a pair sent as two chunks: two lone halves
        return Answer(token_events(["A", "\ud83d", "\ude00", "B"]))
    if mode == "invalid_utf8_event":
        bad = b'data: {"choices":[{"index":0,"delta":{"content":"caf\xe9 \xc3"}}]}'
        return Answer([chunk_event("x"), bad, *token_events([" y"])])
    if mode == "huge_reply":  # 20,000 short paragraphs
        return Answer(token_events([f"para {i}\n\n" for i in range(20_000)]))
    if mode == "huge_error":
        return Answer(status=500, error=payload * 20_000)
    if mode == "cut_after_attack":
        return Answer(token_events(["A", payload, "B", "C"]), cut_after=2)
    raise ValueError(f"unknown reply mode {mode!r}")


REPLY_MODES = (
    "error_500",
    "error_body_text",
    "error_body_bytes",
    "error_event",
    "error_event_first",
    "reply",
    "lone_surrogate",
    "split_surrogate_pair",
    "invalid_utf8_event",
    "huge_error",
    "cut_after_attack",
)
"""Every mode but huge_reply (slow by design: the big fuzz run and its own test use it)."""

# Text a hostile server would send: mostly controls and escape-sequence pieces, with lone
# surrogates and ordinary characters mixed in.
hostile_text = st.text(
    alphabet=st.one_of(
        st.sampled_from(["\x1b", "\x07", "\x9b", "\x9d", "\r", "\n", "\x00", "\x7f", "]", "["]),
        st.characters(min_codepoint=0, max_codepoint=0x9F),
        st.characters(min_codepoint=0xD800, max_codepoint=0xDFFF),
        st.characters(),
    ),
    max_size=60,
)


@st.composite
def hostile_answers(draw: st.DrawFn) -> Answer:
    """One generated hostile answer: a mode, filled with generated text."""
    mode = draw(st.sampled_from([m for m in REPLY_MODES if m != "huge_error"]))
    payload = draw(hostile_text)
    if mode == "reply" and draw(st.booleans()):  # several chunks of hostile text
        chunks = draw(st.lists(hostile_text, min_size=1, max_size=5))
        return Answer(token_events(chunks))
    return reply_mode(mode, payload)


def streamed_text(answer: Answer) -> str | None:
    """The reply text a client must keep from `answer`: every content delta up to a cut or
    an error event; None when it cannot be known here (not a 200, bytes that are not UTF-8)."""
    if answer.status != 200:
        return None
    events = answer.events[: answer.cut_after] if answer.cut_after is not None else answer.events
    text = ""
    for event in events:
        if isinstance(event, bytes):
            return None
        if not event.startswith("data: {"):
            continue
        data = json.loads(event.removeprefix("data: "))
        if "error" in data:
            break
        for choice in data.get("choices") or ():
            text += (choice.get("delta") or {}).get("content") or ""
    return text
