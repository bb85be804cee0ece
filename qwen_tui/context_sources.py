"""Where attachments come from: `@path` and `!command` in the draft, files, commands, piped
stdin, and fitting them to the context window. No UI: the chat screen asks and shows.

Every failure is an `AttachError` whose text is a sentence for the user; nothing here
prints or draws.
"""

from __future__ import annotations

import contextlib
import os
import re
import selectors
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import BinaryIO

from qwen_tui.attachment import Attachment
from qwen_tui.conversation import Message
from qwen_tui.well_formed import decode_input

FILE_LIMIT_BYTES = 4 << 20
"""Read at most this much of a file or of stdin: far beyond any context window (a 32K
window holds ~128 KB of text), and it keeps a stray `@big.log` from filling the RAM."""
COMMAND_LIMIT_BYTES = 64 << 10
"""Keep at most this much of each of a command's stdout and stderr (the rest is counted)."""
COMMAND_TIMEOUT_S = 30.0
"""A command still running after this is stopped (its process group killed)."""
BINARY_SNIFF_BYTES = 8192
"""A NUL byte in this much of the start marks a file as binary (as git and grep decide)."""

_FILE_REF = re.compile(r'(?:^|(?<=\s))@(?:"([^"\n]+)"|(\S+))')
_TRAILING_PUNCTUATION = ".,;:!?)]}'\""


class AttachError(Exception):
    """A file or command could not be attached; the message is for the user."""


# ---------------------------------------------------------------- the draft


@dataclass(frozen=True)
class FileRef:
    """An `@path` in the draft."""

    label: str
    """The path as typed."""
    path: Path
    """Where it points (relative paths from the working directory)."""


def command_in(draft: str) -> str | None:
    """The command of a draft that starts with `!` (`!ls -l` -> `ls -l`), else None."""
    text = draft.strip()
    if not text.startswith("!"):
        return None
    return text[1:].strip() or None


def file_refs(draft: str, cwd: Path) -> list[FileRef]:
    """The `@path`s of the draft that name something on disk, or look like a path (a `/` or
    a `.` in them) and so are meant as one: `@alice` in a sentence stays text.

    `@"a name with spaces"` quotes; a trailing `.` or `,` after a path ends the sentence.
    """
    refs: list[FileRef] = []
    for match in _FILE_REF.finditer(draft):
        quoted, bare = match.groups()
        label = quoted or bare
        path = resolve(label, cwd)
        if bare and not path.exists():
            trimmed = label.rstrip(_TRAILING_PUNCTUATION)
            if trimmed and trimmed != label and resolve(trimmed, cwd).exists():
                label, path = trimmed, resolve(trimmed, cwd)
        looks_like_path = quoted or "/" in label or "." in label.strip(".")
        if (path.exists() or looks_like_path) and all(ref.path != path for ref in refs):
            refs.append(FileRef(label, path))
    return refs


def resolve(label: str, cwd: Path) -> Path:
    path = Path(label).expanduser()
    return path if path.is_absolute() else cwd / path


def complete_path(fragment: str, cwd: Path, limit: int = 50) -> list[str]:
    """What an `@fragment` can be completed to: the names in its folder that start with
    it (folders end with `/`), sorted, hidden ones only when asked for with a leading dot."""
    folder_part, _, start = fragment.rpartition("/")
    folder_label = folder_part + "/" if fragment.count("/") else ""
    folder = resolve(folder_label or ".", cwd)
    try:
        entries = sorted(os.scandir(folder), key=lambda entry: entry.name)
    except OSError:
        return []
    found = []
    for entry in entries:
        if not entry.name.startswith(start) or (entry.name[0] == "." and start[:1] != "."):
            continue
        try:
            is_dir = entry.is_dir()
        except OSError:
            is_dir = False
        found.append(folder_label + entry.name + ("/" if is_dir else ""))
        if len(found) >= limit:
            break
    return found


def common_prefix(names: Sequence[str]) -> str:
    # Characters, not path parts: `@no` completes to `@notes` when notes.txt and notes.md.
    return os.path.commonprefix(list(names)) if names else ""  # noqa: RUF071


# ---------------------------------------------------------------- files and stdin


def read_file(ref: FileRef, limit: int = FILE_LIMIT_BYTES) -> Attachment:
    """The file as an attachment; AttachError for a missing, unreadable or binary file."""
    label = ref.label
    try:
        if ref.path.is_dir():
            raise AttachError(f"@{label} is a folder: attach the files in it one by one")
        with ref.path.open("rb") as file:
            data = file.read(limit + 1)
    except FileNotFoundError:
        raise AttachError(f"@{label}: no such file") from None
    except OSError as error:
        raise AttachError(f"@{label}: {error.strerror or error}") from None
    if is_binary(data):
        raise AttachError(f"@{label} is a binary file: only text can be attached")
    return _text_attachment("file", label, data, limit)


def read_piped(stream: BinaryIO, limit: int = FILE_LIMIT_BYTES) -> Attachment | None:
    """All of a piped stdin as an attachment (None when it was empty). Read to the end even
    past `limit`, so the writer never dies of SIGPIPE halfway (`make 2>&1 | qwen-tui`)."""
    data = stream.read(limit + 1)
    while stream.read(1 << 20):
        pass
    if not data:
        return None
    if is_binary(data):
        raise AttachError("the piped input is binary: only text can be attached")
    return _text_attachment("stdin", "stdin", data, limit)


def is_binary(data: bytes) -> bool:
    return b"\x00" in data[:BINARY_SNIFF_BYTES]


def _text_attachment(kind: str, label: str, data: bytes, limit: int) -> Attachment:
    truncated = len(data) > limit
    text = decode_input(data[:limit])
    if truncated:
        text += f"\n[… cut here: only the first {limit >> 20} MB was read]"
    return Attachment(kind, label, text, truncated=truncated)  # type: ignore[arg-type]


def take_terminal_for_keys() -> None:
    """After a piped stdin was read: make the controlling terminal file descriptor 0, where
    the Textual driver reads keys and sets raw mode. AttachError without a terminal."""
    try:
        tty = os.open("/dev/tty", os.O_RDWR | os.O_NOCTTY)
    except OSError:
        raise AttachError(
            "stdin is a pipe and there is no terminal to take keys from: "
            "use `qwen-tui ask` to send piped text without the chat window"
        ) from None
    try:
        os.dup2(tty, 0)
    finally:
        os.close(tty)


# ---------------------------------------------------------------- commands


@dataclass
class _Captured:
    kept: bytearray
    dropped: int = 0


def run_command(
    command: str,
    cwd: Path,
    *,
    timeout_s: float = COMMAND_TIMEOUT_S,
    limit: int = COMMAND_LIMIT_BYTES,
    cancel: threading.Event | None = None,
) -> Attachment:
    """Run `command` with /bin/sh in `cwd` (stdin empty) and attach its exit status,
    stdout and stderr, each cut at `limit` bytes with a marker. A command that outlives
    `timeout_s` (or `cancel`) is killed with its whole process group."""
    try:
        process = subprocess.Popen(
            ["/bin/sh", "-c", command],
            cwd=cwd,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,  # its own group: a timeout kills its children too
        )
    except OSError as error:
        raise AttachError(f"could not run the command: {error.strerror or error}") from None
    out, err = _Captured(bytearray()), _Captured(bytearray())
    stopped = _collect(
        process, {process.stdout: out, process.stderr: err}, timeout_s, limit, cancel
    )
    status = None if stopped else process.wait()
    parts = [_decoded(out, limit, "stdout")]
    if err.kept or err.dropped:
        parts.append("[stderr]\n" + _decoded(err, limit, "stderr"))
    text = "\n".join(p for p in parts if p) or "[no output]"
    if stopped:
        text += f"\n[stopped: still running after {timeout_s:g} s]"
    truncated = bool(out.dropped or err.dropped)
    return Attachment("command", command, text, exit_status=status, truncated=truncated)


def _collect(
    process: subprocess.Popen[bytes],
    streams: dict[object, _Captured],
    timeout_s: float,
    limit: int,
    cancel: threading.Event | None,
) -> bool:
    """Read both pipes until they close; True when the command had to be stopped."""
    deadline = time.monotonic() + timeout_s
    selector = selectors.DefaultSelector()
    for stream in streams:
        selector.register(stream, selectors.EVENT_READ)  # type: ignore[arg-type]
    try:
        while selector.get_map():
            left = deadline - time.monotonic()
            if left <= 0 or (cancel is not None and cancel.is_set()):
                _kill_group(process)
                return True
            for key, _ in selector.select(min(left, 0.1)):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                captured = streams[key.fileobj]
                room = max(0, limit - len(captured.kept))
                captured.kept += chunk[:room]
                captured.dropped += len(chunk) - min(room, len(chunk))
        return False
    finally:
        selector.close()
        for stream in streams:
            stream.close()  # type: ignore[attr-defined]


def _kill_group(process: subprocess.Popen[bytes]) -> None:
    with contextlib.suppress(ProcessLookupError):
        os.killpg(process.pid, signal.SIGKILL)
    process.wait()


def _decoded(captured: _Captured, limit: int, name: str) -> str:
    text = decode_input(bytes(captured.kept))
    if captured.dropped:
        text += f"\n[… {captured.dropped} more bytes of {name} cut: only {limit} were kept]"
    return text


# ---------------------------------------------------------------- the context window


@dataclass(frozen=True)
class DraftParts:
    """What sending the draft would do."""

    message: Message
    """The user message: the draft's text, what is attached already, then its @files."""
    problems: tuple[str, ...] = ()
    """@files that exist but cannot be attached (binary, a folder, unreadable): sending
    refuses until the draft is fixed."""
    unknown: tuple[str, ...] = ()
    """@words that name no file here (a typo, `@pytest.mark.skip` in pasted code): said
    before sending, then sent as the text they are."""


def draft_parts(draft: str, attached: Sequence[Attachment], cwd: Path) -> DraftParts:
    attachments = list(attached)
    problems, unknown = [], []
    for ref in file_refs(draft, cwd):
        if not ref.path.exists():
            unknown.append(f"@{ref.label}: no such file here, sent as text")
            continue
        try:
            attachments.append(read_file(ref))
        except AttachError as error:
            problems.append(str(error))
    message = Message("user", draft, attachments=tuple(attachments))
    return DraftParts(message, tuple(problems), tuple(unknown))


def estimate_tokens(messages: Sequence[Message]) -> int:
    """Without a tokenizer (the model is loading): about four characters a token."""
    return sum(len(m.content) // 4 + 4 for m in messages)


def prompt_room(context_length: int, max_new_tokens: int) -> int:
    """Tokens a prompt may take: what the reply keeps for itself is not for attachments.
    The same reserve as `fit_to_context`: up to half the window. 0 for an unknown window."""
    if context_length <= 0:
        return 0
    return context_length - max(1, min(max_new_tokens, context_length // 2))


def fit_to_tokens(
    message: Message,
    room: int,
    count: Callable[[Message], int],
) -> Message:
    """`message` with its attachments cut (the largest first) until `count` says it fits in
    `room` tokens; each cut one ends with a marker. Unchanged when it fits already."""
    attachments = list(message.attachments)
    for _ in range(12):  # each round recounts; a few rounds converge
        needed = count(replace(message, attachments=tuple(attachments)))
        if needed <= room or not attachments:
            break
        largest = max(range(len(attachments)), key=lambda i: len(attachments[i].text))
        attachment = attachments[largest]
        # Tokens scale about with characters: keep the share that fits, and always at
        # least one character less per token too many, so every round gets closer.
        size = len(_before_cut(attachment.text)[0])
        keep = min(int(size * room / needed), size - (needed - room))
        attachments[largest] = cut(attachment, max(keep, 0))
    return replace(message, attachments=tuple(attachments))


_CUT_MARKER = re.compile(r"\n\[… (\d+) characters cut here to fit the context window\]\Z")


def _before_cut(text: str) -> tuple[str, int]:
    """The text without the marker of an earlier cut, and how much that cut left out."""
    if marker := _CUT_MARKER.search(text):
        return text[: marker.start()], int(marker.group(1))
    return text, 0


def cut(attachment: Attachment, keep: int) -> Attachment:
    """The first `keep` characters of the attachment, with a marker saying how much is left
    out (cutting again counts what earlier cuts left out too)."""
    text, earlier = _before_cut(attachment.text)
    keep = min(keep, len(text))
    left_out = len(text) - keep + earlier
    marker_text = f"\n[… {left_out} characters cut here to fit the context window]"
    return replace(attachment, text=text[:keep] + marker_text, truncated=True)
