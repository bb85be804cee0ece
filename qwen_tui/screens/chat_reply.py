"""The reply on the chat screen: started once the model is there, streamed, finished, stopped."""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from qwen_tui.chat.reply import ReplyStream
from qwen_tui.conversation import GenerationStats, StopReason
from qwen_tui.messages import GenerationFinished, TokenReceived
from qwen_tui.visible_text import one_line

if TYPE_CHECKING:
    from qwen_tui.screens.chat_screen import ChatScreen

GATHER_S = 0.02
"""After the first piece of a reply, pieces gather this long before the UI takes them: one
message per piece keeps the UI and the worker passing the GIL back and forth, which held a
fast server to ~1,000 pieces a second and kept the UI busy all along."""


class ReplyOnScreen:
    """Mixed into ChatScreen (only): the reply's view and the status bar while it streams;
    the rules (saves, pieces, stats) are chat.replies' (chat/reply_lifecycle.py)."""

    async def _answer(self: ChatScreen) -> None:
        """Reply to the last user message now, or once the model has loaded."""
        if self.app.engine is None:
            view = self.messages_view.view_for(self.chat.wait_for_model())
            if view is not None:
                view.set_pending(True)
            return
        await self._start_reply()

    async def _start_reply(self: ChatScreen, continuing: bool = False) -> None:
        """Stream a new reply, or (`continuing`) more of the last one into its own view."""
        engine = self.app.engine
        assert engine is not None
        self._clear_pending()
        start = self.chat.replies.continue_reply if continuing else self.chat.replies.start_reply
        conversation = start(engine.info.name, self.status.context_used)
        streaming = self.chat.replies.streaming
        assert streaming is not None
        view = self.messages_view.view_for(streaming.message) if continuing else None
        self._reply_view = view = view or await self.messages_view.add(streaming.message)
        view.start_streaming()
        self.messages_view.follow()
        self.status.state = "generating"
        self.status.tok_s = self.status.ttft_s = None
        self.app.generate_reply(
            engine, conversation, self.session.settings, streaming.cancel, self, streaming.incoming
        )

    def _clear_pending(self: ChatScreen) -> None:
        pending = self.chat.clear_pending()
        view = self.messages_view.view_for(pending) if pending is not None else None
        if view is not None:
            view.set_pending(False)

    def on_token_received(self: ChatScreen, message: TokenReceived) -> None:
        streaming = self.chat.replies.streaming
        if streaming is None or message.text is not streaming.incoming:
            return  # a late piece of a reply already stopped by quitting
        if streaming.chunks:
            self.set_timer(GATHER_S, lambda: self._take_pieces(streaming))
        else:
            self._take_pieces(streaming)  # the first piece at once (TTFT)

    def _take_pieces(self: ChatScreen, streaming: ReplyStream) -> None:
        now = time.monotonic()
        taken = self.chat.replies.take(streaming, now)
        if taken is None:
            return
        if self._reply_view is not None and self._reply_view.is_attached:
            self._reply_view.append(taken.text)
        if taken.first:
            self.status.ttft_s = streaming.ttft_s
        if taken.live_stats:
            self.status.tok_s = streaming.tok_s(now)
            if streaming.context_used is not None:
                self.status.context_used = streaming.context_used
        self.status.unsaved = self.chat.unsaved is not None
        if taken.save_error is not None:
            error = str(taken.save_error)
            self.notify(error, title="Could not save the reply", severity="error")

    async def on_generation_finished(self: ChatScreen, message: GenerationFinished) -> None:
        finished = self.chat.replies.finish(message.stats)
        if finished is None:
            return
        view, self._reply_view = self._reply_view, None
        if view is not None and view.is_attached and finished.rest:
            view.append(finished.rest)
        self.status.unsaved = self.chat.unsaved is not None
        if finished.save_error is not None:
            error = str(finished.save_error)
            self.notify(error, title="Could not save the reply", severity="error", timeout=10)
        else:
            self.app.remember_session(self.session)
        stats = message.stats
        self._show_final_stats(stats)
        if stats.stop_reason is StopReason.ERROR:
            error = one_line(stats.error or "unknown error")
            self.notify(error, title="Generation failed", severity="error", timeout=10)
        self.refresh_sessions()
        if view is not None and view.is_attached:
            await view.finish()

    def _show_final_stats(self: ChatScreen, stats: GenerationStats) -> None:
        status = self.status
        status.state = self.app.model_state
        status.ttft_s = stats.ttft_s
        status.tok_s = stats.decode_tok_s
        if stats.prompt_tokens:
            status.context_used = stats.prompt_tokens + stats.generated_tokens

    def action_stop(self: ChatScreen) -> None:
        """Ask the engine to stop; the partial reply arrives as a STOPPED GenerationFinished.
        While editing the last message instead, leave the edit (the prompt is emptied)."""
        if self.chat.replies.stop():
            self.status.state = "stopping"
        elif self.chat.editing is not None:
            self._set_editing(None)
            self.prompt.clear()
            self.attaching.clear()

    def stop_and_save(self: ChatScreen) -> None:
        """Before quitting: stop the reply and save what there is, marked stopped."""
        self.save_with(self.session, self.chat.replies.stop_and_save, "Could not save the reply")

    async def action_regenerate(self: ChatScreen) -> None:
        """Drop the last answer and ask again (also answers a prompt left without one)."""
        if self.busy():
            return
        if not self.chat.can_regenerate():
            self.notify("Nothing to regenerate yet: send a message first.")
            return
        if not self._model_usable():
            return
        if (dropped := self.chat.drop_last_answer()) is not None:
            await self.messages_view.remove_message(dropped)
        await self._answer()
