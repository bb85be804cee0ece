"""The session on screen and the rules for changing it, without widgets.

The chat screen draws what this module decides: which session is shown and whether it may be
written, when it is saved (its first save locks it; a conversation that fails to save is kept
as `unsaved`), and which messages a prompt, an edit or a regenerate replaces. Its branches
(`chat.branches`, chat/branches.py) and the reply being streamed (`chat.replies`,
chat/reply_lifecycle.py) are kept beside it. Store failures come back as `StoreError`; the
screen tells the user.
"""

from __future__ import annotations

import contextlib
import logging
from dataclasses import dataclass, field

from qwen_tui import conversation_tree as tree
from qwen_tui.attachment import Attachment
from qwen_tui.chat.branches import Branches
from qwen_tui.chat.reply_lifecycle import ReplyLifecycle
from qwen_tui.config import Config
from qwen_tui.conversation import GenerationSettings, Message, Session
from qwen_tui.store import (
    OpenSession,
    SessionNotFoundError,
    SessionStore,
    SessionSummary,
    StoreError,
)
from qwen_tui.store.presets import Presets, new_session

log = logging.getLogger(__name__)


def open_new_session(config: Config, presets: Presets | None = None) -> OpenSession:
    """An empty session with the user's defaults (saved in the app, else config.toml's). Not
    locked (nor saved) yet: the chat locks it when its first message saves it, so sessions
    never used leave no files."""
    return OpenSession(new_session(config, presets or Presets()), None)


@dataclass
class Sent:
    """A prompt that joined the session and was saved."""

    message: Message
    replaced: list[Message]
    """The edited message and what followed it: they left the active path (kept as a
    branch beside the new prompt)."""
    settled: list[Message]
    """Replies an earlier process left interrupted, now marked stopped."""


@dataclass
class ChatState:
    """The session shown, its lock, what is unsaved, its branches, the reply in progress."""

    store: SessionStore
    opened: OpenSession
    """The session shown, with its lock (read-only when another qwen-tui writes it)."""
    pending: Message | None = None
    """A user message waiting for the model to load."""
    editing: Message | None = None
    """The user message being edited: sending replaces it and everything after it."""
    unsaved: Session | None = None
    """A session whose conversation failed to save (and has not been saved since)."""
    unsaved_error: str = ""
    sessions_stamp: int | None = field(default=None, repr=False)
    """The sessions folder's mtime when last checked (see sessions_changed)."""
    branches: Branches = field(init=False, repr=False)
    """Walking, adding and forking branches of the session shown."""
    replies: ReplyLifecycle = field(init=False, repr=False)
    """The reply being streamed into the session shown, if any."""

    def __post_init__(self) -> None:
        self.branches = Branches(self)
        self.replies = ReplyLifecycle(self)

    @property
    def session(self) -> Session:
        return self.opened.session

    @property
    def reply(self) -> Message | None:
        """The assistant message being streamed, if any."""
        streaming = self.replies.streaming
        return streaming.message if streaming else None

    @property
    def generating(self) -> bool:
        return self.replies.streaming is not None

    # ------------------------------------------------------------ which session

    def show(self, opened: OpenSession) -> None:
        """Make `opened` the session prompts go to; the one before is closed (lock released)."""
        if opened is not self.opened:
            self.opened.close()
            self.opened = opened
        self.pending = None
        self.editing = None
        self.branches.walked = None

    def close(self) -> None:
        self.opened.close()

    def read_only_text(self) -> str:
        writer = self.opened.writer
        who = writer.describe() if writer else "another qwen-tui"
        return (
            f"Read-only: this session is open in another qwen-tui ({who}). "
            "Open it again from the sidebar once that one has closed it."
        )

    def unsaved_summary(self) -> SessionSummary:
        """A sidebar row for the current session before its first message saves it."""
        session = self.session
        return SessionSummary(
            id=session.id,
            title=session.title or "New session",
            created=session.created,
            updated=session.updated,
            message_count=len(session.messages),
            model=session.model,
            path=self.store.path_for(session.id),
        )

    def sessions_changed(self) -> bool:
        """True when the sessions folder changed since the last call: another process
        (`qwen-tui ask --new-session`, a second qwen-tui) added, replaced or removed a file
        (saves replace files by renaming, which changes the folder's mtime)."""
        try:
            stamp: int | None = self.store.dir.stat().st_mtime_ns
        except OSError:
            stamp = None
        changed, self.sessions_stamp = stamp != self.sessions_stamp, stamp
        return changed

    def delete(self, session_id: str) -> bool:
        """Delete a session's file; True when it was the one shown (show another then)."""
        # Never saved (a new, empty session) or already gone: nothing to remove.
        with contextlib.suppress(SessionNotFoundError):
            self.store.delete(session_id)
        return session_id == self.session.id

    # ------------------------------------------------------------ saving

    def save(self, session: Session, *, conversation: bool = False) -> None:
        """Save `session` (locking the shown one first if it is new). `conversation`: what
        failed to save exists only in memory now (a reply), so it is kept as `unsaved` and
        quitting must not lose it silently. Raises StoreError."""
        try:
            self._lock_new_session(session)
            self.store.save(session)
        except StoreError as error:
            log.warning("save failed: %s", error)
            if conversation:
                self.unsaved, self.unsaved_error = session, str(error)
            raise
        if session is self.unsaved:
            self.unsaved, self.unsaved_error = None, ""

    def _lock_new_session(self, session: Session) -> None:
        """New sessions start unlocked (they leave no file until used): lock before the
        first save. Raises SessionLockedError if another process took the same id."""
        opened = self.opened
        unlocked = opened.lock is None and not opened.read_only
        shown = session is opened.session and unlocked
        if shown and not self.store.path_for(session.id).exists():
            self.opened = self.store.open_new(session)

    def rename(self, session: Session, title: str) -> None:
        """Give `session` a new title and save it; unchanged if the save fails (raises)."""
        old, session.title = session.title, title
        try:
            self.save(session)
        except StoreError:
            session.title = old
            raise

    def change_settings(
        self, session: Session, system_prompt: str, generation: GenerationSettings
    ) -> None:
        """New system prompt and settings, saved with `session`; unchanged if that fails."""
        old = (session.system_prompt, session.settings)
        session.system_prompt, session.settings = system_prompt, generation
        try:
            self.save(session)
        except StoreError:
            session.system_prompt, session.settings = old
            raise

    # ------------------------------------------------------------ turns

    def send(self, text: str, attachments: tuple[Attachment, ...] = ()) -> Sent:
        """Add the user's prompt and what is attached to it (replacing the edited message and
        what followed it) and save.
        If saving fails the session is as before and StoreError is raised: the prompt box
        still holds the text, so nothing typed is lost."""
        kept = list(self.session.messages), list(self.session.branches), self.session.title
        replaced = self._drop_edited()
        settled = self.opened.settle_interrupted()  # a new turn ends them for good
        message = self.session.add("user", text, attachments)
        try:
            self.save(self.session)
        except StoreError:
            self.session.messages, self.session.branches, self.session.title = kept
            raise
        self.editing = self.branches.walked = None
        return Sent(message, replaced, settled)

    def _drop_edited(self) -> list[Message]:
        """The edited prompt and its answers become a branch beside the new prompt."""
        if self.editing is None or not any(m is self.editing for m in self.session.messages):
            return []
        return tree.leave_path(self.session, self.editing)

    def last_user_message(self) -> Message | None:
        """What editing starts from: the last prompt (none while a reply streams)."""
        if self.generating:
            return None
        return next((m for m in reversed(self.session.messages) if m.role == "user"), None)

    def can_regenerate(self) -> bool:
        """A prompt ends the conversation, or a prompt and its answer."""
        messages = self.session.messages
        return bool(messages) and (
            messages[-1].role == "user" or (len(messages) > 1 and messages[-2].role == "user")
        )

    def drop_last_answer(self) -> Message | None:
        """Regenerating sets the last answer aside (none when the prompt has no answer yet):
        it stays a sibling of the new one."""
        messages = self.session.messages
        if not messages or messages[-1].role != "assistant":
            return None
        self.branches.walked = None
        return tree.leave_path(self.session, messages[-1])[0]

    # ------------------------------------------------------------ waiting for the model

    def wait_for_model(self) -> Message:
        """The last prompt is answered once the model has loaded."""
        self.pending = self.session.messages[-1]
        return self.pending

    def clear_pending(self) -> Message | None:
        pending, self.pending = self.pending, None
        return pending
