"""The session on screen and the rules for changing it, without widgets.

The chat screen draws what this module decides: which session is shown and whether it may be
written, when it is saved (before a reply, while it streams, at its end, after a failure), which
messages an edit or a regenerate replaces, the reply being streamed, and a reply edited (a
sibling of the old text) or continued from where its text ends. Store failures come
back as `StoreError` (or in `Taken.save_error`); the screen tells the user.
"""

from __future__ import annotations

import contextlib
import logging
import time
from dataclasses import dataclass, field

from qwen_tui import conversation_tree as tree
from qwen_tui.attachment import Attachment
from qwen_tui.chat.reply import ReplyStream
from qwen_tui.config import Config
from qwen_tui.conversation import GenerationSettings, GenerationStats, Message, Session
from qwen_tui.store import (
    OpenSession,
    SessionNotFoundError,
    SessionStore,
    SessionSummary,
    StoreError,
)
from qwen_tui.store.presets import Presets, new_session

log = logging.getLogger(__name__)

PARTIAL_SAVE_S = 2.0
"""Save a streaming reply this often, so a crash loses at most this much of it."""
LIVE_STATS_S = 1.0
"""Refresh tok/s in the status bar at most this often while streaming (a repaint costs the
model's threads time on small machines)."""


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
class Switched:
    """The active path took another branch at `index`: the screen redraws from there."""

    index: int
    left: list[Message]
    """What was shown from `index` on: now a branch."""
    joined: list[Message]
    """What is shown from `index` on now."""


@dataclass
class Taken:
    """What one take of the streamed pieces changed, for the screen to show."""

    text: str
    first: bool
    """The reply's first text: its TTFT is known now."""
    live_stats: bool
    """Time to refresh tok/s and the context count (at most every LIVE_STATS_S)."""
    save_error: StoreError | None = None
    """A partial save failed, reported once per reply (not every PARTIAL_SAVE_S)."""


@dataclass
class Finished:
    """A reply that ended, for the screen to show in full."""

    stream: ReplyStream
    rest: str
    """Its last text, which had not been taken yet."""
    save_error: StoreError | None
    """The final save failed: the reply is kept as `unsaved` (quitting asks about it)."""


@dataclass
class ChatState:
    """The session shown, its lock, what is unsaved, the reply in progress."""

    store: SessionStore
    opened: OpenSession
    """The session shown, with its lock (read-only when another qwen-tui writes it)."""
    streaming: ReplyStream | None = None
    pending: Message | None = None
    """A user message waiting for the model to load."""
    editing: Message | None = None
    """The user message being edited: sending replaces it and everything after it."""
    unsaved: Session | None = None
    """A session whose conversation failed to save (and has not been saved since)."""
    unsaved_error: str = ""
    walked: Message | None = None
    """The message the user last switched to: the next switch acts on its siblings again,
    even if the branch it brought in has deeper ones."""
    sessions_stamp: int | None = field(default=None, repr=False)
    """The sessions folder's mtime when last checked (see sessions_changed)."""

    @property
    def session(self) -> Session:
        return self.opened.session

    @property
    def reply(self) -> Message | None:
        """The assistant message being streamed, if any."""
        return self.streaming.message if self.streaming else None

    @property
    def generating(self) -> bool:
        return self.streaming is not None

    # ------------------------------------------------------------ which session

    def show(self, opened: OpenSession) -> None:
        """Make `opened` the session prompts go to; the one before is closed (lock released)."""
        if opened is not self.opened:
            self.opened.close()
            self.opened = opened
        self.pending = None
        self.editing = None
        self.walked = None

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
        self.editing = self.walked = None
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
        self.walked = None
        return tree.leave_path(self.session, messages[-1])[0]

    # ------------------------------------------------------------ branches

    def add_sibling(self, of: Message, replacement: Message) -> list[Message]:
        """`replacement` takes the place of `of` (on the active path); `of` and what
        followed it stay as a branch beside it. Saved; returns what left the path. On a
        failed save the session is as before and StoreError is raised."""
        kept = list(self.session.messages), list(self.session.branches)
        left = tree.leave_path(self.session, of)
        self.session.messages.append(replacement)
        self.session.updated = time.time()
        try:
            self.save(self.session)
        except StoreError:
            self.session.messages, self.session.branches = kept
            raise
        return left

    def branch_target(self, focused: Message | None = None) -> Message | None:
        """The message whose siblings a switch walks: the focused one, else the one last
        switched to, else the last one on the active path that has siblings."""
        session = self.session
        parents = {m.parent for m in session.branches}
        with_siblings = [
            m
            for i, m in enumerate(session.messages)
            if (session.messages[i - 1].id if i else None) in parents
        ]
        for candidate in (focused, self.walked):
            if any(m is candidate for m in with_siblings):
                return candidate
        return with_siblings[-1] if with_siblings else None

    def switch_sibling(self, message: Message, step: int) -> Switched | None:
        """Show the sibling `step` places from `message` (on the active path) and the
        branch under it; saved, so `ask --session` and the next start continue it. None
        when there is no sibling that far. On a failed save nothing changes (raises)."""
        group = tree.siblings(self.session, message)
        place = next(i for i, m in enumerate(group) if m is message) + step
        if not 0 <= place < len(group) or step == 0:
            return None
        index = tree.path_index(self.session, message)
        left, joined = tree.switch_to(self.session, group[place])
        try:
            self.save(self.session)
        except StoreError:
            tree.switch_to(self.session, message)
            raise
        self.walked = group[place]
        if any(m is self.editing for m in left):
            self.editing = None  # its turn is not shown now: the text is sent as a new one
        return Switched(index, left, joined)

    def fork_at(self, message: Message) -> OpenSession:
        """A new session holding the active path up to `message`, saved and locked, to be
        shown next. Raises StoreError (nothing is left behind then)."""
        forked = tree.fork(self.session, message, Session())
        opened = self.store.open_new(forked)
        try:
            self.store.save(forked)
        except StoreError:
            opened.close()
            raise
        return opened

    def wait_for_model(self) -> Message:
        """The last prompt is answered once the model has loaded."""
        self.pending = self.session.messages[-1]
        return self.pending

    def clear_pending(self) -> Message | None:
        pending, self.pending = self.pending, None
        return pending

    # ------------------------------------------------------------ the reply

    def start_reply(self, model_name: str, context_used: int | None) -> list[Message]:
        """Add an empty assistant message to stream into; the conversation to send."""
        conversation = self.session.chat_messages()  # before the reply joins the session
        reply = Message("assistant", "", incomplete=True)
        self.session.messages.append(reply)
        self._stream_into(reply, model_name, context_used)
        return conversation

    def reply_to_continue(self) -> Message | None:
        """What continue adds to: the last message when it is a reply (stopped, cut short
        or edited: an edited reply is the last one); none while a reply streams."""
        messages = self.session.messages
        if self.generating or not messages or messages[-1].role != "assistant":
            return None
        return messages[-1]

    def continue_reply(self, model_name: str, context_used: int | None) -> list[Message]:
        """Stream more of the last reply into it; the conversation to send, which ends
        with that reply as it stands now (the engine continues it exactly there). Its new
        text is appended; its stats become this generation's (prompt + generated is then
        the context used, as for any reply)."""
        reply = self.reply_to_continue()
        if reply is None:
            raise ValueError("there is no reply to continue")
        # Tokenizers attach a space to the word after it: a prompt ending in a lone space
        # token asks for text the model has rarely seen (a stop keeps "... a "). The reply
        # goes on without its trailing spaces (invisible in Markdown anyway).
        reply.content = reply.content.rstrip(" ")
        conversation = self.session.chat_messages()
        # A copy: the reply grows while the engine reads the conversation in its thread.
        conversation[-1] = Message("assistant", reply.content, created=reply.created)
        reply.incomplete = True
        reply.stats = None  # the last generation's numbers are not this one's (nor "stopped")
        self._stream_into(reply, model_name, context_used)
        return conversation

    def _stream_into(self, reply: Message, model_name: str, context_used: int | None) -> None:
        self.session.model = model_name  # also in partial saves and a stop by a signal
        self.streaming = ReplyStream(reply, context_before=context_used)

    def replace_reply(self, message: Message, text: str) -> Message:
        """The one way an edited reply is saved: a reply with `text` takes the place of
        `message` (an answer on the active path, not the one streaming), which stays as a
        sibling branch with the turns that followed it (they answered its old text): the
        edited reply is then the last one, the one continue goes on from. Returns it. On a
        failed save the session is as before and StoreError is raised."""
        if message.role != "assistant" or not any(m is message for m in self.session.messages):
            raise ValueError("only a reply of the session shown can be edited")
        if message is self.reply:
            raise ValueError("a reply cannot be edited while it is being generated")
        edited = Message("assistant", text)
        self.add_sibling(message, edited)
        self.walked = None
        return edited

    def take(self, streaming: ReplyStream, now: float) -> Taken | None:
        """Move the waiting pieces into the reply; save it at the first piece and then every
        PARTIAL_SAVE_S. None when there was nothing (or the reply is over)."""
        first = streaming.chunks == 0
        text, pieces = streaming.incoming.take()
        if not pieces or streaming is not self.streaming:
            return None
        streaming.add(text, pieces, now)
        taken = Taken(text, first, now - streaming.last_live_stats >= LIVE_STATS_S)
        if taken.live_stats:
            streaming.last_live_stats = now
        last = streaming.last_partial_save
        if last is None or now - last >= PARTIAL_SAVE_S:
            streaming.last_partial_save = now
            taken.save_error = self._save_partial(streaming)
        return taken

    def _save_partial(self, streaming: ReplyStream) -> StoreError | None:
        streaming.message.stats = streaming.partial_stats()
        try:
            self.store.save(self.session)
        except StoreError as error:
            self.unsaved, self.unsaved_error = self.session, str(error)
            if streaming.partial_save_failed:
                return None
            streaming.partial_save_failed = True
            return error
        if self.unsaved is self.session:
            self.unsaved, self.unsaved_error = None, ""
        return None

    def finish(self, stats: GenerationStats) -> Finished | None:
        """The reply is over: it keeps `stats` and is saved. None if no reply was streaming
        (quitting ended it already)."""
        streaming, self.streaming = self.streaming, None
        if streaming is None:
            return None
        rest, _ = streaming.take_waiting(time.monotonic())
        streaming.message.stats = stats
        streaming.message.incomplete = False
        self.session.updated = time.time()
        try:
            self.save(self.session, conversation=True)
        except StoreError as error:
            return Finished(streaming, rest, error)
        return Finished(streaming, rest, None)

    def stop(self) -> bool:
        """Ask the engine to stop; the partial reply arrives as a STOPPED finish."""
        if self.streaming is None:
            return False
        self.streaming.cancel.set()
        return True

    def stop_and_save(self) -> None:
        """Before quitting: stop the reply and save what there is, marked stopped (no finish
        will come). Raises StoreError if the save fails."""
        streaming, self.streaming = self.streaming, None
        if streaming is None:
            return
        streaming.cancel.set()
        streaming.take_waiting(time.monotonic())
        streaming.message.incomplete = False
        streaming.message.stats = streaming.stopped_stats()
        self.save(self.session, conversation=True)
