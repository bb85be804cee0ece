"""The chat: sessions sidebar, the conversation, the prompt box and the status bar.

This screen draws the session being shown and the reply being streamed; the rules (which
session, when it is saved, what an edit replaces) live in `qwen_tui.chat.state`. The app owns
the engine and runs the workers; they report here with messages (see `qwen_tui.messages`).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import Screen

from qwen_tui.attachment import Attachment
from qwen_tui.chat.reply import ReplyStream
from qwen_tui.chat.state import ChatState
from qwen_tui.context_sources import command_in
from qwen_tui.conversation import GenerationStats, Message, Session, StopReason
from qwen_tui.messages import (
    ContextCounted,
    GenerationFinished,
    ModelStateChanged,
    SessionsListed,
    TokenReceived,
)
from qwen_tui.screens.branch_keys import BRANCH_BINDINGS, BranchKeys
from qwen_tui.screens.draft_attachments import DraftAttachments
from qwen_tui.screens.model_picker import ModelPicker, model_key
from qwen_tui.screens.reply_editing import can_continue, edit_reply
from qwen_tui.screens.session_file_prompt import ask_export
from qwen_tui.screens.session_questions import apply_settings, ask_delete, ask_rename, ask_settings
from qwen_tui.screens.settings_dialog import SessionSettings
from qwen_tui.screens.unsaved_quit import UnsavedQuit
from qwen_tui.store import OpenSession, StoreError
from qwen_tui.store.presets import Preset
from qwen_tui.visible_text import copyable_text, one_line, visible_text
from qwen_tui.widgets.draft_info import DraftInfo
from qwen_tui.widgets.message_list import MessageList
from qwen_tui.widgets.message_view import MessageView
from qwen_tui.widgets.prompt_input import PromptInput
from qwen_tui.widgets.session_sidebar import SessionSidebar
from qwen_tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from qwen_tui.app import QwenTuiApp

SIDEBAR_MIN_WIDTH = 60
"""Below this terminal width the sidebar hides itself (ctrl+b still shows it)."""
NARROW_WIDTH = 100
"""Below this width the sidebar gets narrower."""
RAM_REFRESH_S = 3.0
SESSIONS_WATCH_S = 2.0
"""How often the sessions folder is checked for sessions other processes wrote (a stat)."""
GATHER_S = 0.02
"""After the first piece of a reply, pieces gather this long before the UI takes them: one
message per piece keeps the UI and the worker passing the GIL back and forth, which held a
fast server to ~1,000 pieces a second and kept the UI busy all along."""


class ChatScreen(BranchKeys, Screen[None]):
    """One session at a time; the app's only permanent screen."""

    # Priority so the prompt box's own ctrl+y (redo) / ctrl+e (end of line) do not win.
    BINDINGS = [  # noqa: RUF012 (Textual reads class-level BINDINGS)
        Binding("ctrl+n", "new_session", "New session", id="session.new", priority=True),
        Binding("ctrl+r", "regenerate", "Regenerate", id="session.regenerate", priority=True),
        Binding("ctrl+b", "toggle_sidebar", "Sidebar", id="sidebar.toggle", priority=True),
        Binding("escape", "stop", "Stop", id="generation.stop", priority=True),
        Binding("ctrl+s", "settings", "Settings", id="session.settings", priority=True),
        Binding("ctrl+e", "export", "Export", id="session.export", priority=True),
        Binding("ctrl+y", "copy", "Copy answer", id="message.copy", priority=True),
        Binding("ctrl+o", "switch_model", "Model", id="model.switch", priority=True),
        Binding("f5", "edit_reply", "Edit answer", id="message.edit", priority=True),
        Binding("ctrl+g", "continue_reply", "Continue", id="generation.continue", priority=True),
        *BRANCH_BINDINGS,
    ]

    app: QwenTuiApp

    def __init__(self, chat: ChatState) -> None:
        super().__init__()
        self.chat = chat
        """The rules: the session shown, its lock, saves, the reply being streamed."""
        self._reply_view: MessageView | None = None
        self._sidebar_wanted = True
        self.attaching = DraftAttachments(self)
        """`@path`, `!command` and piped text: what goes with the next message."""

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        with Horizontal(id="main"):
            yield SessionSidebar(self.app.clock, text_target="#prompt", id="sidebar")
            with Vertical(id="chat"):
                yield MessageList(id="messages")
                yield DraftInfo(id="draft-info")
                yield PromptInput(id="prompt")
        yield StatusBar(id="status")

    @property
    def opened(self) -> OpenSession:
        """The session shown, with its lock (read-only when another qwen-tui writes it)."""
        return self.chat.opened

    @property
    def session(self) -> Session:
        return self.chat.session

    @property
    def reply(self) -> Message | None:
        """The assistant message being streamed, if any."""
        return self.chat.reply

    @property
    def generating(self) -> bool:
        return self.chat.generating

    @property
    def messages_view(self) -> MessageList:
        return self.query_one(MessageList)

    @property
    def prompt(self) -> PromptInput:
        return self.query_one(PromptInput)

    @property
    def sidebar(self) -> SessionSidebar:
        return self.query_one(SessionSidebar)

    @property
    def status(self) -> StatusBar:
        return self.query_one(StatusBar)

    async def on_mount(self) -> None:
        self._sidebar_wanted = self.app.config.ui.sidebar
        self.messages_view.show_stats = self.app.config.ui.show_stats
        self.prompt.cursor_blink = self.app.config.ui.cursor_blink
        self._apply_model_state(self.app.model_state_message())
        self._place_sidebar()
        await self.show_session(self.opened)
        if draft := self.app.draft_for(self.session):  # typed, not sent, when it last ran
            self.prompt.set_prompt(draft)
        if piped := self.app.take_piped():  # `some-command | qwen-tui`
            self.attaching.add(piped)
        self.set_interval(RAM_REFRESH_S, self._refresh_ram)
        self._refresh_ram()
        self.chat.sessions_changed()  # the folder as it is now; later changes refresh the list
        self.set_interval(SESSIONS_WATCH_S, self._watch_sessions_folder)
        self.prompt.focus()

    def on_resize(self, event: Resize) -> None:
        # Only on a real change: a class on the screen restyles every widget in it.
        narrow = event.size.width < NARROW_WIDTH
        if narrow != self.has_class("-narrow"):
            self.set_class(narrow, "-narrow")
        self._place_sidebar()

    def _place_sidebar(self) -> None:
        shown = self._sidebar_wanted and self.size.width >= SIDEBAR_MIN_WIDTH
        if shown != self.sidebar.display:
            self.sidebar.display = shown

    def action_toggle_sidebar(self) -> None:
        self._sidebar_wanted = not self.sidebar.display
        self.sidebar.display = self._sidebar_wanted
        if self._sidebar_wanted:
            self.sidebar.session_list.focus()
        elif self.sidebar.has_focus_within or self.focused is None:
            self.prompt.focus()

    def _watch_sessions_folder(self) -> None:
        """Sessions written by another process appear in the list."""
        if self.chat.sessions_changed():
            self.refresh_sessions()

    def _refresh_ram(self) -> None:
        # Whole megabytes: an unchanged value does not redraw the status bar.
        self.status.rss_bytes = self.app.process_rss() >> 20 << 20

    # ------------------------------------------------------------ sessions

    async def show_session(self, opened: OpenSession) -> None:
        """Show `opened` and make it the session prompts go to; the one shown before is
        closed (its lock released)."""
        self.chat.show(opened)
        self._set_editing(None)
        # The numbers of the session shown before are not this one's.
        self.status.tok_s = self.status.ttft_s = self.status.context_used = None
        await self.messages_view.show_session(opened.session)
        self.sidebar.mark_current(opened.session.id)
        self.app.remember_session(opened.session)
        self._refresh_notice()
        if opened.notice:
            self.notify(opened.notice, title="Session", severity="warning", timeout=10)
        self.app.count_context(self)
        self.refresh_sessions()

    def on_unmount(self) -> None:
        self.chat.close()

    def writable(self) -> bool:
        """False (and say why) when another qwen-tui is writing this session."""
        if self.opened.read_only:
            self.notify(self.chat.read_only_text(), title="Read-only", severity="warning")
        return not self.opened.read_only

    def refresh_sessions(self) -> None:
        """Re-read the sidebar's list (in a worker: it reads the session files)."""
        self.app.list_sessions(self.sidebar.query_text, self)

    async def on_sessions_listed(self, message: SessionsListed) -> None:
        if self.app.return_code is not None:
            return  # quitting: the sidebar may be unmounted already
        for problem in message.problems:
            self.notify(problem, title="Damaged session file", severity="warning", timeout=15)
        if message.query != self.sidebar.query_text:
            return  # an older search; a newer one is on its way
        summaries = message.summaries
        if not message.query and all(s.id != self.session.id for s in summaries):
            summaries = [self.chat.unsaved_summary(), *summaries]
        await self.sidebar.show(summaries)

    def on_session_sidebar_search_changed(self, message: SessionSidebar.SearchChanged) -> None:
        self.refresh_sessions()

    def busy(self) -> bool:
        """True (and tell the user) while a reply streams: it belongs to this session."""
        if self.generating:
            keys = self.app.effective_key("generation.stop")
            self.notify(f"A reply is being generated: wait, or press {keys} to stop it.")
        return self.generating

    async def on_session_sidebar_open_requested(
        self, message: SessionSidebar.OpenRequested
    ) -> None:
        is_current = message.summary.id == self.session.id
        if is_current and not self.opened.read_only:
            self.prompt.focus()
            return
        if self.busy():
            return
        if is_current:
            self.opened.close()  # to take over a read-only session, let go of it first
        try:
            opened = self.app.store.open(message.summary.id)
        except StoreError as error:
            self.notify(str(error), title="Could not open the session", severity="error")
            self.refresh_sessions()
            return
        await self.show_session(opened)
        self.prompt.focus()

    async def action_new_session(self) -> None:
        """Show a new empty session; it is saved with its first message."""
        if self.busy():
            return
        if self.session.messages or self.opened.read_only:  # else it already is a new one
            await self.show_session(self.app.open_new_session())
        self.prompt.focus()

    async def on_session_sidebar_new_requested(self) -> None:
        await self.action_new_session()

    def on_session_sidebar_rename_requested(self, message: SessionSidebar.RenameRequested) -> None:
        ask_rename(self, message.summary)

    def on_session_sidebar_delete_requested(self, message: SessionSidebar.DeleteRequested) -> None:
        ask_delete(self, message.summary)

    def _back_to_prompt(self) -> None:
        """After a dialog or a sidebar action the keyboard belongs to the prompt again: the
        next sentence typed must not land on the list's commands."""
        self.prompt.focus()

    def save_with(self, session: Session, save: Callable[[], object], failure: str) -> bool:
        """Run `save` (a ChatState call that saves `session`); on failure say why under
        `failure` and return False."""
        try:
            save()
        except StoreError as error:
            self.notify(str(error), title=failure, severity="error", timeout=10)
            return False
        finally:
            self.status.unsaved = self.chat.unsaved is not None
        if session is self.session:
            self.app.remember_session(session)  # a new session's first save names it
        return True

    def save_or_tell(self, session: Session, failure: str, conversation: bool = False) -> bool:
        """Save `session`, or say why not under `failure` (see ChatState.save)."""
        save = partial(self.chat.save, session, conversation=conversation)
        return self.save_with(session, save, failure)

    # ------------------------------------------------------------ sending

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        if self.busy() or not self.writable():
            return
        if command_in(message.text) is None and not self._model_usable():
            return  # (a !command runs without a model)
        self.attaching.submit(message.text, self._send)

    def on_text_area_changed(self, event: PromptInput.Changed) -> None:
        if event.text_area is self.prompt:
            self.attaching.changed()

    def on_prompt_input_remove_attachment_requested(self) -> None:
        self.attaching.remove_last()

    async def _send(self, text: str, attachments: tuple[Attachment, ...] = ()) -> None:
        if self.busy() or not self.writable():
            return
        try:
            sent = self.chat.send(text, attachments)
        except StoreError as error:  # nothing typed is lost: the prompt keeps the text
            title = "Could not send: saving the session failed"
            self.notify(str(error), title=title, severity="error", timeout=10)
            return
        self.app.remember_session(self.session)  # a new session's first save names it
        self._set_editing(None)
        self.prompt.clear()
        self.attaching.sent()
        self._refresh_footers(sent.settled)
        for old in sent.replaced:
            await self.messages_view.remove_message(old)
        await self.messages_view.add(sent.message)
        self.messages_view.follow()
        self.refresh_sessions()
        await self._answer()

    def _refresh_footers(self, messages: list[Message]) -> None:
        for message in messages:
            view = self.messages_view.view_for(message)
            if view is not None:
                view.refresh_footer()

    def _model_usable(self) -> bool:
        """A prompt can be answered now or after loading; else say why (the text stays)."""
        state = self.app.model_state
        if state == "none":
            self.notify(self.app.no_model_message(), title="No model", severity="warning")
        elif state == "error":
            keys = self.app.effective_key("model.switch")
            self.notify(
                f"The model did not load; press {keys} to choose one.",
                title="No model",
                severity="warning",
            )
        return state in ("loading", "ready")

    async def _answer(self) -> None:
        """Reply to the last user message now, or once the model has loaded."""
        if self.app.engine is None:
            view = self.messages_view.view_for(self.chat.wait_for_model())
            if view is not None:
                view.set_pending(True)
            return
        await self._start_reply()

    async def _start_reply(self, continuing: bool = False) -> None:
        """Stream a new reply, or (`continuing`) more of the last one into its own view."""
        engine = self.app.engine
        assert engine is not None
        self._clear_pending()
        start = self.chat.continue_reply if continuing else self.chat.start_reply
        conversation = start(engine.info.name, self.status.context_used)
        streaming = self.chat.streaming
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

    def _clear_pending(self) -> None:
        pending = self.chat.clear_pending()
        view = self.messages_view.view_for(pending) if pending is not None else None
        if view is not None:
            view.set_pending(False)

    def on_token_received(self, message: TokenReceived) -> None:
        streaming = self.chat.streaming
        if streaming is None or message.text is not streaming.incoming:
            return  # a late piece of a reply already stopped by quitting
        if streaming.chunks:
            self.set_timer(GATHER_S, lambda: self._take_pieces(streaming))
        else:
            self._take_pieces(streaming)  # the first piece at once (TTFT)

    def _take_pieces(self, streaming: ReplyStream) -> None:
        now = time.monotonic()
        taken = self.chat.take(streaming, now)
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

    async def on_generation_finished(self, message: GenerationFinished) -> None:
        finished = self.chat.finish(message.stats)
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

    def _show_final_stats(self, stats: GenerationStats) -> None:
        status = self.status
        status.state = self.app.model_state
        status.ttft_s = stats.ttft_s
        status.tok_s = stats.decode_tok_s
        if stats.prompt_tokens:
            status.context_used = stats.prompt_tokens + stats.generated_tokens

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            # Without a reply to stop or an edit to leave, escape goes on to the focused
            # widget / dialogs.
            editing = self.chat.editing is not None and self.focused is self.prompt
            return self.generating or editing
        return True

    def action_stop(self) -> None:
        """Ask the engine to stop; the partial reply arrives as a STOPPED GenerationFinished.
        While editing the last message instead, leave the edit (the prompt is emptied)."""
        if self.chat.stop():
            self.status.state = "stopping"
        elif self.chat.editing is not None:
            self._set_editing(None)
            self.prompt.clear()
            self.attaching.clear()

    def stop_and_save(self) -> None:
        """Before quitting: stop the reply and save what there is, marked stopped."""
        self.save_with(self.session, self.chat.stop_and_save, "Could not save the reply")

    # ------------------------------------------------------------ quitting

    def ready_to_quit(self) -> bool:
        """Stop the reply and save; True when nothing would be lost by quitting now.
        Otherwise ask what to do with the unsaved session (the answer may quit the app)."""
        self.stop_and_save()
        return UnsavedQuit(self).ready()

    # ------------------------------------------------------------ model

    def on_model_state_changed(self, message: ModelStateChanged) -> None:
        self._apply_model_state(message)
        if message.state == "ready":
            self.app.count_context(self)
            if self.chat.pending is not None and not self.generating:
                self.call_later(self._start_reply)
        elif message.state == "error":
            self._clear_pending()  # the prompt stays saved; ctrl+r answers it later

    def _apply_model_state(self, message: ModelStateChanged) -> None:
        status = self.status
        status.state = "generating" if self.generating else message.state
        if message.info is not None:
            status.model_name = message.info.name
            status.low_bit = message.info.low_bit
            status.context_size = message.info.context_length
        self._refresh_notice()

    def _refresh_notice(self) -> None:
        """The note under the conversation: no model / model failed / read-only session."""
        parts = []
        state = self.app.model_state
        if state == "none":
            parts.append(self.app.no_model_message())
        elif state == "error":
            keys = self.app.effective_key("model.switch")
            error = self.app.model_state_message().error
            parts.append(f"The model could not be loaded: {error}\n\n{keys} picks another one.")
        if self.opened.read_only:
            parts.append(self.chat.read_only_text())
        self.messages_view.show_notice(visible_text("\n\n".join(parts)))

    def on_context_counted(self, message: ContextCounted) -> None:
        self.status.context_used = message.tokens

    def action_switch_model(self) -> None:
        if self.busy():
            return
        models = self.app.available_models()
        current = model_key(self.app.model) if self.app.model else None

        def switch(name: str | None) -> None:
            self._back_to_prompt()
            if name is None or (name == current and self.app.model_state == "ready"):
                return
            chosen = next((m for m in models if model_key(m) == name), None)
            if chosen is not None and not self.busy():
                self.app.switch_model(chosen)

        self.app.push_screen(ModelPicker(models, current), switch)

    # ------------------------------------------------------------ other actions

    async def action_regenerate(self) -> None:
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

    def action_edit_reply(self) -> None:
        edit_reply(self, then_continue=self.action_continue_reply)

    async def action_continue_reply(self) -> None:
        if can_continue(self):  # (else it said why not)
            await self._start_reply(continuing=True)

    def on_prompt_input_edit_last_requested(self) -> None:
        last_user = self.chat.last_user_message()
        if last_user is None:
            return
        self._set_editing(last_user)
        self.prompt.set_prompt(last_user.content)
        self.attaching.restore(last_user.attachments)

    def _set_editing(self, message: Message | None) -> None:
        self.chat.editing = message
        prompt = self.query_one(PromptInput)
        prompt.set_class(message is not None, "-editing")
        # Emptying the prompt keeps the edit (ctrl+u and a new text replace the turn too);
        # escape leaves it.
        hint = "editing your last message: enter resends, escape cancels"
        prompt.border_title = hint if message else None

    def action_settings(self) -> None:
        ask_settings(self, self.session)

    def use_preset(self, preset: Preset) -> None:
        """The preset's system prompt and sampling settings become this session's."""
        notice = f"Preset {preset.name!r} in use: saved with this session."
        result = SessionSettings(preset.system_prompt, preset.settings)
        apply_settings(self, self.session, result, notice)

    def action_copy(self) -> None:
        focused = self.focused
        if isinstance(focused, MessageView):
            text = focused.message.content
        else:
            answers = [m for m in self.session.messages if m.role == "assistant" and m.content]
            if not answers:
                self.notify("No answer to copy yet.")
                return
            text = answers[-1].content
        text, removed = copyable_text(text)
        self.app.copy_to_clipboard(text)
        note = f" ({removed} control characters left out)" if removed else ""
        self.notify(f"Copied {len(text)} characters to the clipboard{note}.")

    def action_export(self) -> None:
        ask_export(self, self.session)
