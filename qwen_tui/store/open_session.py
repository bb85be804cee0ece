"""A session opened for the chat: its lock, or who else is writing it, and what was cut off.

What `SessionStore.open()` hands the UI and the CLI: enough to tell the user (read-only,
interrupted replies) and to let go of the lock, without reaching back into the store.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from qwen_tui.conversation import GenerationStats, Message, Session, StopReason
from qwen_tui.store.lock import LockHolder, SessionLock


@dataclass
class OpenSession:
    """A session opened by `SessionStore.open()`/`open_new()`; `close()` when done with it.

    Writable while `lock` is held. Read-only (`writer` set, `notice` says so) when another
    qwen-tui was writing it: do not save it then; to take it over later, close and open it
    again, which re-reads what the other instance wrote.
    """

    session: Session
    lock: SessionLock | None
    """Held until close(); None when read-only or when the folder could not be locked."""
    writer: LockHolder | None = None
    """The other process writing this session, when it was opened read-only."""
    notice: str | None = None
    """A sentence for the user: opened read-only, or could not be locked (saves may fail)."""
    interrupted: list[Message] = field(default_factory=list)
    """Replies left incomplete by a qwen-tui that is gone (crashed, killed, lost power):
    show them as interrupted, with their text, and offer to regenerate them."""

    @property
    def read_only(self) -> bool:
        return self.writer is not None

    def settle_interrupted(self) -> list[Message]:
        """Mark interrupted replies as stopped, so that a turn added after them does not
        leave them looking in progress forever. Their text is kept, and so is the token
        count a partial save recorded: a reply cut short is stopped, not failed."""
        settled, self.interrupted = self.interrupted, []
        for message in settled:
            message.incomplete = False
            message.stats = replace(
                message.stats or GenerationStats(), stop_reason=StopReason.STOPPED, error=None
            )
        return settled

    def close(self) -> None:
        if self.lock is not None:
            self.lock.release()

    def __enter__(self) -> OpenSession:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()
