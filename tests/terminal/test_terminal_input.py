"""The splitter between keystrokes and pastes, fed read by read (no terminal needed)."""

from __future__ import annotations

from qwen_tui.terminal_input import (
    BURST_GAP_S,
    HOLD_S,
    UNFINISHED_PASTE_S,
    Pasted,
    TerminalInput,
    Typed,
    looks_pasted,
)

START, END = "\x1b[200~", "\x1b[201~"


def feed_all(reads: list[str], gap: float = 0.0) -> list[Typed | Pasted]:
    splitter = TerminalInput()
    now = 0.0
    pieces = []
    for data in reads:
        pieces += splitter.feed(data, now)
        now += gap
    return pieces + splitter.flush(now + UNFINISHED_PASTE_S)


def test_everything_between_the_markers_is_one_paste_even_escapes_and_crs():
    pieces = feed_all([f"a{START}SAFE\x1bX\rAFTER{END}b"])
    assert pieces == [Typed("a"), Pasted("SAFE\x1bX\rAFTER"), Typed("b")]


def test_markers_split_across_reads_are_still_found():
    reads = ["x\x1b[2", "00~one\r", "two\x1b", "[201", "~y"]
    assert feed_all(reads) == [Typed("x"), Pasted("one\rtwo"), Typed("y")]


def test_a_lone_escape_key_waits_a_moment_then_is_a_key():
    splitter = TerminalInput()
    assert splitter.feed("\x1b", 0.0) == []
    assert splitter.wait_s() == HOLD_S
    assert splitter.flush(HOLD_S) == [Typed("\x1b")]


def test_typing_and_keys_stay_keys():
    for read in ("hello\r", "\r", "\x1b[A", "\r\x1b[A", "\x1b[<35;10;5M\x1b[<35;11;5M", "ab"):
        assert not looks_pasted(read), read
        assert feed_all([read]) == [Typed(read)]


def test_a_burst_with_a_line_break_inside_is_a_paste_with_what_follows_it():
    reads = ["line one\rline two\r", "line three\r", "tail"]  # a long paste in 4 KB reads
    assert feed_all(reads, gap=BURST_GAP_S / 10) == [Pasted("line one\rline two\rline three\rtail")]


def test_a_key_after_the_burst_has_ended_is_a_key_again():
    splitter = TerminalInput()
    assert splitter.feed("a\rb", 0.0) == []
    assert splitter.flush(BURST_GAP_S) == [Pasted("a\rb")]
    assert splitter.feed("\r", 1.0) == [Typed("\r")]


def test_a_paste_whose_end_never_comes_ends_after_a_silence():
    splitter = TerminalInput()
    assert splitter.feed(f"{START}half a paste", 0.0) == []
    assert splitter.flush(UNFINISHED_PASTE_S / 2) == []
    assert splitter.flush(UNFINISHED_PASTE_S) == [Pasted("half a paste")]
