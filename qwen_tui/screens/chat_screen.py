"""The chat: sessions sidebar, the conversation, the prompt box and the status bar.

This screen owns the session being shown and the reply being streamed. The app owns the
engine and runs the workers; they report here with messages (see `qwen_tui.messages`).
"""

from __future__ import annotations

import logging
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import Screen

from qwen_tui.attachment import Attachment
from qwen_tui.context_sources import command_in
from qwen_tui.conversation import GenerationStats, Message, Session, StopReason
from qwen_tui.messages import (
    ContextCounted,
    GenerationFinished,
    ModelStateChanged,
    SessionsListed,
    StreamedText,
    TokenReceived,
)
from qwen_tui.screens.confirm_dialog import ConfirmDialog
from qwen_tui.screens.draft_attachments import DraftAttachments
from qwen_tui.screens.model_picker import ModelPicker, model_key
from qwen_tui.screens.session_export import default_export_path, write_export
from qwen_tui.screens.settings_dialog import SessionSettings, SettingsDialog
from qwen_tui.screens.text_input_dialog import TextInputDialog
from qwen_tui.screens.unsaved_dialog import UnsavedChoice, UnsavedDialog, write_session_copy
from qwen_tui.store import OpenSession, SessionNotFoundError, SessionSummary, StoreError
from qwen_tui.visible_text import copyable_text, one_line, visible_text
from qwen_tui.widgets.draft_info import DraftInfo
from qwen_tui.widgets.message_list import MessageList
from qwen_tui.widgets.message_view import MessageView
from qwen_tui.widgets.prompt_input import PromptInput
from qwen_tui.widgets.session_sidebar import SessionSidebar
from qwen_tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from qwen_tui.app import QwenTuiApp

log = logging.getLogger(__name__)

PARTIAL_SAVE_S = 2.0
"""Save a streaming reply this often, so a crash loses at most this much of it."""
LIVE_STATS_S = 1.0
"""Refresh tok/s in the status bar at most this often while streaming (a repaint costs the
model's threads time on small machines; see STREAM_FLUSH_S)."""
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


@dataclass
class ReplyStream:
    """The reply being generated: its message and view, how to stop it, its live numbers."""

    message: Message
    view: MessageView
    cancel: threading.Event = field(default_factory=threading.Event)
    incoming: StreamedText = field(default_factory=StreamedText)
    """Pieces the worker sent that the UI has not taken yet."""
    started: float = field(default_factory=time.monotonic)
    first_token_at: float | None = None
    chunks: int = 0
    """Pieces received; the engine sends about one per token."""
    last_live_stats: float = 0.0
    context_before: int | None = None
    """Tokens the conversation took before this reply (the status bar's ctx while it grows)."""
    last_partial_save: float | None = None
    """None until the first piece, which is saved at once."""
    partial_save_failed: bool = False

    def add(self, text: str, pieces: int, now: float) -> None:
        self.message.content += text
        self.chunks += pieces
        if self.first_token_at is None:
            self.first_token_at = now

    def partial_save_due(self, now: float) -> bool:
        last = self.last_partial_save
        return last is None or now - last >= PARTIAL_SAVE_S

    @property
    def ttft_s(self) -> float | None:
        return None if self.first_token_at is None else self.first_token_at - self.started

    def tok_s(self, now: float) -> float | None:
        """Pieces per second after the first (what the status bar shows while streaming)."""
        if self.first_token_at is None or now <= self.first_token_at:
            return None
        return (self.chunks - 1) / (now - self.first_token_at)


class ChatScreen(Screen[None]):
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
    ]

    app: QwenTuiApp

    def __init__(self, opened: OpenSession) -> None:
        super().__init__()
        self.opened = opened
        """The session shown, with its lock (read-only when another qwen-tui writes it)."""
        self._streaming: ReplyStream | None = None
        self.pending: Message | None = None
        """A user message waiting for the model to load."""
        self._editing: Message | None = None
        self._sidebar_wanted = True
        self.unsaved: Session | None = None
        """A session whose conversation failed to save (and has not been saved since)."""
        self._unsaved_error = ""
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

    @property
    def session(self) -> Session:
        return self.opened.session

    @property
    def reply(self) -> Message | None:
        """The assistant message being streamed, if any."""
        return self._streaming.message if self._streaming else None

    @property
    def generating(self) -> bool:
        return self._streaming is not None

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
        self._sessions_stamp = self._sessions_folder_stamp()
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

    def _sessions_folder_stamp(self) -> int | None:
        try:
            return self.app.store.dir.stat().st_mtime_ns
        except OSError:
            return None

    def _watch_sessions_folder(self) -> None:
        """Sessions written by another process (`qwen-tui ask --new-session`, a second
        qwen-tui) appear in the list: any file added, replaced or removed changes the
        folder's mtime (saves replace files by renaming)."""
        stamp = self._sessions_folder_stamp()
        if stamp != self._sessions_stamp:
            self._sessions_stamp = stamp
            self.refresh_sessions()

    def _refresh_ram(self) -> None:
        # Whole megabytes: an unchanged value does not redraw the status bar.
        self.status.rss_bytes = self.app.process_rss() >> 20 << 20

    # ------------------------------------------------------------ sessions

    async def show_session(self, opened: OpenSession) -> None:
        """Show `opened` and make it the session prompts go to; the one shown before is
        closed (its lock released)."""
        if opened is not self.opened:
            self.opened.close()
            self.opened = opened
        self.pending = None
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
        self.opened.close()

    def _writable(self) -> bool:
        """False (and say why) when another qwen-tui is writing this session."""
        if self.opened.read_only:
            self.notify(self._read_only_text(), title="Read-only", severity="warning")
        return not self.opened.read_only

    def _read_only_text(self) -> str:
        writer = self.opened.writer
        who = writer.describe() if writer else "another qwen-tui"
        return (
            f"Read-only: this session is open in another qwen-tui ({who}). "
            "Open it again from the sidebar once that one has closed it."
        )

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
            summaries = [self._unsaved_summary(), *summaries]
        await self.sidebar.show(summaries)

    def _unsaved_summary(self) -> SessionSummary:
        """A row for the current session before its first message saves it."""
        session = self.session
        return SessionSummary(
            id=session.id,
            title=session.title or "New session",
            created=session.created,
            updated=session.updated,
            message_count=len(session.messages),
            model=session.model,
            path=self.app.store.path_for(session.id),
        )

    def on_session_sidebar_search_changed(self, message: SessionSidebar.SearchChanged) -> None:
        self.refresh_sessions()

    def _busy(self) -> bool:
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
        if self._busy():
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
        if self._busy():
            return
        if self.session.messages or self.opened.read_only:  # else it already is a new one
            await self.show_session(self.app.open_new_session())
        self.prompt.focus()

    async def on_session_sidebar_new_requested(self) -> None:
        await self.action_new_session()

    def on_session_sidebar_rename_requested(self, message: SessionSidebar.RenameRequested) -> None:
        summary = message.summary

        def rename(title: str | None) -> None:
            self._back_to_prompt()
            if title is None:
                return
            is_current = summary.id == self.session.id
            session = self.session if is_current else self._load(summary.id)
            if session is None:
                return
            old_title, session.title = session.title, title
            if self._save(session, "Could not rename the session"):
                self.refresh_sessions()
            else:
                session.title = old_title

        self.app.push_screen(TextInputDialog("Rename session", summary.title), rename)

    def on_session_sidebar_delete_requested(self, message: SessionSidebar.DeleteRequested) -> None:
        summary = message.summary
        if summary.id == self.session.id and (self._busy() or not self._writable()):
            return
        title = one_line(summary.title) or "(untitled)"
        question = f"Delete “{title}” ({summary.message_count} messages)? This removes its file."

        async def delete(confirmed: bool | None) -> None:
            self._back_to_prompt()
            if confirmed:
                await self._delete_session(summary.id, title)

        self.app.push_screen(ConfirmDialog("Delete session", question, "Delete"), delete)

    async def _delete_session(self, session_id: str, title: str) -> None:
        try:
            self.app.store.delete(session_id)
        except SessionNotFoundError:
            pass  # never saved (a new, empty session) or already gone: nothing to remove
        except StoreError as error:
            self.notify(str(error), title="Could not delete the session", severity="error")
            return
        self.notify(f"Deleted “{title}”.")
        if session_id != self.session.id:
            self.refresh_sessions()
            return
        await self.show_session(self.app.open_new_session())

    def _back_to_prompt(self) -> None:
        """After a dialog or a sidebar action the keyboard belongs to the prompt again: the
        next sentence typed must not land on the list's commands."""
        self.prompt.focus()

    def _lock_new_session(self, session: Session) -> None:
        """Lock the shown session before its first save (new sessions start unlocked)."""
        opened = self.opened
        unlocked = opened.lock is None and not opened.read_only
        if session is opened.session and unlocked:
            never_saved = not self.app.store.path_for(session.id).exists()
            if never_saved:
                self.opened = self.app.store.open_new(session)  # raises if someone has it

    def _load(self, session_id: str) -> Session | None:
        try:
            return self.app.store.load(session_id)
        except StoreError as error:
            self.notify(str(error), title="Could not open the session", severity="error")
            return None

    def _save(
        self,
        session: Session,
        failure: str = "Could not save the session",
        *,
        conversation: bool = False,
    ) -> bool:
        """Save `session`, or say why not. `conversation`: what failed to save exists only
        in memory now (a reply), so quitting must not lose it silently."""
        try:
            self._lock_new_session(session)
            self.app.store.save(session)
        except StoreError as error:
            log.warning("save failed: %s", error)
            self.notify(str(error), title=failure, severity="error", timeout=10)
            if conversation:
                self._set_unsaved(session, str(error))
            return False
        if session is self.unsaved:
            self._set_unsaved(None)
        if session is self.session:
            self.app.remember_session(session)  # a new session's first save names it
        return True

    def _set_unsaved(self, session: Session | None, error: str = "") -> None:
        self.unsaved, self._unsaved_error = session, error
        self.status.unsaved = session is not None

    # ------------------------------------------------------------ sending

    async def on_prompt_input_submitted(self, message: PromptInput.Submitted) -> None:
        if self._busy() or not self._writable():
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
        if self._busy() or not self._writable():
            return
        kept = list(self.session.messages)
        title = self.session.title
        removed = self._drop_edited()
        settled = self.opened.settle_interrupted()  # a new turn ends them for good
        user_message = self.session.add("user", text, attachments)
        if not self._save(self.session, "Could not send: saving the session failed"):
            self.session.messages = kept  # nothing typed is lost: the prompt keeps the text
            self.session.title = title
            return
        self._set_editing(None)
        self.prompt.clear()
        self.attaching.sent()
        self._refresh_footers(settled)
        for old in removed:
            await self.messages_view.remove_message(old)
        await self.messages_view.add(user_message)
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

    def _drop_edited(self) -> list[Message]:
        """When editing, the edited message and everything after it leave the session."""
        if self._editing is None or self._editing not in self.session.messages:
            return []
        index = self.session.messages.index(self._editing)
        removed = self.session.messages[index:]
        del self.session.messages[index:]
        return removed

    async def _answer(self) -> None:
        """Reply to the last user message now, or once the model has loaded."""
        if self.app.engine is None:
            self.pending = self.session.messages[-1]
            view = self.messages_view.view_for(self.pending)
            if view is not None:
                view.set_pending(True)
            return
        await self._start_reply()

    async def _start_reply(self) -> None:
        engine = self.app.engine
        assert engine is not None
        self._clear_pending()
        conversation = self.session.chat_messages()  # before the reply joins the session
        reply = Message("assistant", "", incomplete=True)
        self.session.messages.append(reply)
        self.session.model = engine.info.name  # also in partial saves and a stop by a signal
        view = await self.messages_view.add(reply)
        view.start_streaming()
        self.messages_view.follow()
        self._streaming = streaming = ReplyStream(reply, view)
        streaming.context_before = self.status.context_used
        self.status.state = "generating"
        self.status.tok_s = self.status.ttft_s = None
        self.app.generate_reply(
            engine, conversation, self.session.settings, streaming.cancel, self, streaming.incoming
        )

    def _clear_pending(self) -> None:
        if self.pending is not None:
            view = self.messages_view.view_for(self.pending)
            if view is not None:
                view.set_pending(False)
        self.pending = None

    def on_token_received(self, message: TokenReceived) -> None:
        streaming = self._streaming
        if streaming is None or message.text is not streaming.incoming:
            return  # a late piece of a reply already stopped by quitting
        if streaming.chunks:
            self.set_timer(GATHER_S, lambda: self._take_pieces(streaming))
        else:
            self._take_pieces(streaming)  # the first piece at once (TTFT)

    def _take_pieces(self, streaming: ReplyStream) -> None:
        text, pieces = streaming.incoming.take()
        if not pieces or streaming is not self._streaming:
            return
        now = time.monotonic()
        first = streaming.chunks == 0
        streaming.add(text, pieces, now)
        if streaming.view.is_attached:
            streaming.view.append(text)
        if first:
            self.status.ttft_s = streaming.ttft_s
        if now - streaming.last_live_stats >= LIVE_STATS_S:
            streaming.last_live_stats = now
            self.status.tok_s = streaming.tok_s(now)
            if streaming.context_before is not None:  # a piece is about one token
                self.status.context_used = streaming.context_before + streaming.chunks
        if streaming.partial_save_due(now):  # on the UI thread, but never after a render
            streaming.last_partial_save = now
            self._save_partial(streaming)

    def _save_partial(self, streaming: ReplyStream) -> None:
        # The count goes with the text: a process killed now leaves a reply that says how
        # far it got (the store settles it as stopped), not "0 tokens".
        streaming.message.stats = GenerationStats(generated_tokens=streaming.chunks)
        try:
            self.app.store.save(self.session)
        except StoreError as error:
            self._set_unsaved(self.session, str(error))
            if not streaming.partial_save_failed:  # tell once per reply, not every 2 s
                streaming.partial_save_failed = True
                self.notify(str(error), title="Could not save the reply", severity="error")
            return
        if self.unsaved is self.session:
            self._set_unsaved(None)

    async def on_generation_finished(self, message: GenerationFinished) -> None:
        if self._streaming is not None:
            self._take_pieces(self._streaming)  # the last pieces may still be gathering
        streaming, self._streaming = self._streaming, None
        if streaming is None:
            return
        stats = message.stats
        streaming.message.stats = stats
        streaming.message.incomplete = False
        self.session.updated = time.time()
        # Saved before the final render, which can take a while for a long reply.
        self._save(self.session, "Could not save the reply", conversation=True)
        self._show_final_stats(stats)
        if stats.stop_reason is StopReason.ERROR:
            error = one_line(stats.error or "unknown error")
            self.notify(error, title="Generation failed", severity="error", timeout=10)
        self.refresh_sessions()
        if streaming.view.is_attached:
            await streaming.view.finish()

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
            editing = self._editing is not None and self.focused is self.prompt
            return self.generating or editing
        return True

    def action_stop(self) -> None:
        """Ask the engine to stop; the partial reply arrives as a STOPPED GenerationFinished.
        While editing the last message instead, leave the edit (the prompt is emptied)."""
        if self._streaming is not None:
            self._streaming.cancel.set()
            self.status.state = "stopping"
        elif self._editing is not None:
            self._set_editing(None)
            self.prompt.clear()
            self.attaching.clear()

    def stop_and_save(self) -> None:
        """Before quitting: stop the reply and save what there is, marked stopped."""
        if self._streaming is not None:
            self._take_pieces(self._streaming)
        streaming, self._streaming = self._streaming, None
        if streaming is None:
            return
        streaming.cancel.set()
        streaming.message.incomplete = False
        streaming.message.stats = GenerationStats(
            generated_tokens=streaming.chunks, stop_reason=StopReason.STOPPED
        )
        self._save(self.session, "Could not save the reply", conversation=True)

    # ------------------------------------------------------------ quitting

    def ready_to_quit(self) -> bool:
        """Stop the reply and save; True when nothing would be lost by quitting now.
        Otherwise ask what to do with the unsaved session (the answer may quit the app)."""
        self.stop_and_save()
        if isinstance(self.app.screen, UnsavedDialog):
            return False  # already asking
        unsaved = self.unsaved
        if unsaved is None or self._save(unsaved, "Still could not save", conversation=True):
            return True
        self._ask_about_unsaved()
        return False

    def _ask_about_unsaved(self) -> None:
        assert self.unsaved is not None
        title = one_line(self.unsaved.title) or "New session"
        self.app.push_screen(UnsavedDialog(title, self._unsaved_error), self._unsaved_answer)

    def _unsaved_answer(self, choice: UnsavedChoice | None) -> None:
        session = self.unsaved
        if session is None or choice == "quit":
            self.app.exit(0)
        elif choice is None:
            self._back_to_prompt()
        elif choice == "retry":
            if self._save(session, "Still could not save", conversation=True):
                self.app.exit(0)
            else:
                self._ask_about_unsaved()
        else:
            self._write_unsaved_elsewhere(session, choice)

    def _write_unsaved_elsewhere(self, session: Session, choice: UnsavedChoice) -> None:
        """Save a copy (the session file's format) or export Markdown, then quit."""
        if choice == "export":
            title, default = "Export as Markdown to", default_export_path(session, Path.cwd())
        else:
            title, default = "Save a copy of the session to", Path.cwd() / f"{session.id}.json"

        def chosen(answer: str | None) -> None:
            if answer is None:
                self._ask_about_unsaved()
                return
            path = Path(answer).expanduser()
            path = path if path.is_absolute() else Path.cwd() / path
            try:
                if path.exists():
                    raise FileExistsError(17, "exists already: choose another name")
                if choice == "export":
                    write_export(session, path)
                else:
                    write_session_copy(session, path)
            except OSError as error:
                reason = f"{path}: {error.strerror or error}"
                self.notify(reason, title="Could not write it there", severity="error")
                self._ask_about_unsaved()
                return
            self.app.exit(0)

        self.app.push_screen(TextInputDialog(title, str(default)), chosen)

    # ------------------------------------------------------------ model

    def on_model_state_changed(self, message: ModelStateChanged) -> None:
        self._apply_model_state(message)
        if message.state == "ready":
            self.app.count_context(self)
            if self.pending is not None and not self.generating:
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
            parts.append(self._read_only_text())
        self.messages_view.show_notice(visible_text("\n\n".join(parts)))

    def on_context_counted(self, message: ContextCounted) -> None:
        self.status.context_used = message.tokens

    def action_switch_model(self) -> None:
        if self._busy():
            return
        models = self.app.available_models()
        current = model_key(self.app.model) if self.app.model else None

        def switch(name: str | None) -> None:
            self._back_to_prompt()
            if name is None or (name == current and self.app.model_state == "ready"):
                return
            chosen = next((m for m in models if model_key(m) == name), None)
            if chosen is not None and not self._busy():
                self.app.switch_model(chosen)

        self.app.push_screen(ModelPicker(models, current), switch)

    # ------------------------------------------------------------ other actions

    async def action_regenerate(self) -> None:
        """Drop the last answer and ask again (also answers a prompt left without one)."""
        if self._busy():
            return
        messages = self.session.messages
        has_prompt = bool(messages) and (
            messages[-1].role == "user" or (len(messages) > 1 and messages[-2].role == "user")
        )
        if not has_prompt:
            self.notify("Nothing to regenerate yet: send a message first.")
            return
        if not self._model_usable():
            return
        if messages[-1].role == "assistant":
            await self.messages_view.remove_message(messages.pop())
        await self._answer()

    def on_prompt_input_edit_last_requested(self) -> None:
        if self.generating:
            return
        last_user = next((m for m in reversed(self.session.messages) if m.role == "user"), None)
        if last_user is None:
            return
        self._set_editing(last_user)
        self.prompt.set_prompt(last_user.content)
        self.attaching.restore(last_user.attachments)

    def _set_editing(self, message: Message | None) -> None:
        self._editing = message
        prompt = self.query_one(PromptInput)
        prompt.set_class(message is not None, "-editing")
        # Emptying the prompt keeps the edit (ctrl+u and a new text replace the turn too);
        # escape leaves it.
        hint = "editing your last message: enter resends, escape cancels"
        prompt.border_title = hint if message else None

    def action_settings(self) -> None:
        session = self.session
        dialog = SettingsDialog(session.system_prompt, session.settings)
        self.app.push_screen(dialog, lambda result: self._apply_settings(session, result))

    def _apply_settings(self, session: Session, result: SessionSettings | None) -> None:
        self._back_to_prompt()
        if result is None:
            return
        old = (session.system_prompt, session.settings)
        session.system_prompt, session.settings = result.system_prompt, result.generation
        if not self._save(session, "Could not save the settings"):
            session.system_prompt, session.settings = old
            return
        if session is self.session:
            self.messages_view.refresh_system_line()
            self.app.count_context(self)
        self.notify("Settings saved with this session.")

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
        session = self.session
        default = default_export_path(session, Path.cwd())

        def chosen(answer: str | None) -> None:
            self._back_to_prompt()
            if answer is None:
                return
            path = Path(answer).expanduser()
            path = path if path.is_absolute() else Path.cwd() / path
            if not path.exists():
                self._export(session, path)
                return
            replace = ConfirmDialog("Export", f"{path} exists. Replace it?", "Replace")
            self.app.push_screen(replace, lambda yes: self._export(session, path) if yes else None)

        dialog = TextInputDialog("Export session as Markdown to", str(default))
        self.app.push_screen(dialog, chosen)

    def _export(self, session: Session, path: Path) -> None:
        try:
            write_export(session, path)
        except OSError as error:
            reason = f"{path}: {error.strerror or error}"
            self.notify(reason, title="Export failed", severity="error")
            return
        self.notify(f"Exported to {path}", title="Exported")
