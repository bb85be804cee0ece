"""The reply being generated, from start to end: an empty one or the last one continued,
its pieces taken in with a save every PARTIAL_SAVE_S, its finish, a stop, a save on quitting."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import TYPE_CHECKING

from qwen_tui.chat.reply import ReplyStream
from qwen_tui.conversation import GenerationStats, Message
from qwen_tui.store import StoreError

if TYPE_CHECKING:
    from qwen_tui.chat.state import ChatState

PARTIAL_SAVE_S = 2.0
"""Save a streaming reply this often, so a crash loses at most this much of it."""
LIVE_STATS_S = 1.0
"""Refresh tok/s in the status bar at most this often while streaming (a repaint costs the
model's threads time on small machines)."""


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


class ReplyLifecycle:
    """The reply streaming into `chat`'s session, if any, and when it is saved."""

    def __init__(self, chat: ChatState) -> None:
        self.chat = chat
        self.streaming: ReplyStream | None = None

    def start_reply(self, model_name: str, context_used: int | None) -> list[Message]:
        """Add an empty assistant message to stream into; the conversation to send."""
        session = self.chat.session
        conversation = session.chat_messages()  # before the reply joins the session
        reply = Message("assistant", "", incomplete=True)
        session.messages.append(reply)
        self._stream_into(reply, model_name, context_used)
        return conversation

    def reply_to_continue(self) -> Message | None:
        """What continue adds to: the last message when it is a reply (stopped, cut short
        or edited: an edited reply is the last one); none while a reply streams."""
        messages = self.chat.session.messages
        if self.streaming is not None or not messages or messages[-1].role != "assistant":
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
        conversation = self.chat.session.chat_messages()
        # A copy: the reply grows while the engine reads the conversation in its thread.
        conversation[-1] = Message("assistant", reply.content, created=reply.created)
        reply.incomplete = True
        reply.stats = None  # the last generation's numbers are not this one's (nor "stopped")
        self._stream_into(reply, model_name, context_used)
        return conversation

    def _stream_into(self, reply: Message, model_name: str, context_used: int | None) -> None:
        self.chat.session.model = model_name  # also in partial saves and a stop by a signal
        self.streaming = ReplyStream(reply, context_before=context_used)

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
        chat = self.chat
        streaming.message.stats = streaming.partial_stats()
        try:
            chat.store.save(chat.session)
        except StoreError as error:
            chat.unsaved, chat.unsaved_error = chat.session, str(error)
            if streaming.partial_save_failed:
                return None
            streaming.partial_save_failed = True
            return error
        if chat.unsaved is chat.session:
            chat.unsaved, chat.unsaved_error = None, ""
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
        self.chat.session.updated = time.time()
        try:
            self.chat.save(self.chat.session, conversation=True)
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
        self.chat.save(self.chat.session, conversation=True)
