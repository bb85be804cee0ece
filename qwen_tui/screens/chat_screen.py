"""The chat: sessions sidebar, the conversation, the prompt box and the status bar.

This screen draws the session being shown and the reply being streamed; the rules (which
session, when it is saved, what an edit replaces) live in `qwen_tui.chat.state`. The app owns
the engine and runs the workers; they report here with messages (see `qwen_tui.messages`).
This module keeps the layout, the session shown, sending and editing the last message; mixed
in are the sidebar (chat_sidebar.py), the model's state (chat_model_status.py) and the reply
being streamed (chat_reply.py).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import TYPE_CHECKING

from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical
from textual.events import Resize
from textual.screen import Screen

from qwen_tui.attachment import Attachment
from qwen_tui.chat.state import ChatState
from qwen_tui.context_sources import command_in
from qwen_tui.conversation import Message, Session
from qwen_tui.screens.branch_keys import BRANCH_BINDINGS, BranchKeys
from qwen_tui.screens.chat_model_status import ModelStatus
from qwen_tui.screens.chat_reply import ReplyOnScreen
from qwen_tui.screens.chat_sidebar import ChatSidebar
from qwen_tui.screens.draft_attachments import DraftAttachments
from qwen_tui.store import OpenSession, StoreError
from qwen_tui.store.presets import Preset
from qwen_tui.visible_text import copyable_text
from qwen_tui.widgets.draft_info import DraftInfo
from qwen_tui.widgets.message_list import MessageList
from qwen_tui.widgets.prompt_input import PromptInput
from qwen_tui.widgets.session_sidebar import SessionSidebar
from qwen_tui.widgets.status_bar import StatusBar

if TYPE_CHECKING:
    from qwen_tui.app import QwenTuiApp
    from qwen_tui.widgets.message_view import MessageView

NARROW_WIDTH = 100
"""Below this width the sidebar gets narrower."""
RAM_REFRESH_S = 3.0
SESSIONS_WATCH_S = 2.0
"""How often the sessions folder is checked for sessions other processes wrote (a stat)."""


class ChatScreen(BranchKeys, ChatSidebar, ModelStatus, ReplyOnScreen, Screen[None]):
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
        self.call_after_refresh(self._refresh_ram)  # psutil loads after the first frame
        self.chat.sessions_changed()  # the folder as it is now; later changes refresh the list
        self.set_interval(SESSIONS_WATCH_S, self._watch_sessions_folder)
        self.prompt.focus()

    def on_resize(self, event: Resize) -> None:
        # Only on a real change: a class on the screen restyles every widget in it.
        narrow = event.size.width < NARROW_WIDTH
        if narrow != self.has_class("-narrow"):
            self.set_class(narrow, "-narrow")
        self._place_sidebar()

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

    def busy(self) -> bool:
        """True (and tell the user) while a reply streams: it belongs to this session."""
        if self.generating:
            keys = self.app.effective_key("generation.stop")
            self.notify(f"A reply is being generated: wait, or press {keys} to stop it.")
        return self.generating

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

    def check_action(self, action: str, parameters: tuple[object, ...]) -> bool | None:
        if action == "stop":
            # Without a reply to stop or an edit to leave, escape goes on to the focused
            # widget / dialogs.
            editing = self.chat.editing is not None and self.focused is self.prompt
            return self.generating or editing
        return True

    # ------------------------------------------------------------ quitting

    def ready_to_quit(self) -> bool:
        """Stop the reply and save; True when nothing would be lost by quitting now.
        Otherwise ask what to do with the unsaved session (the answer may quit the app)."""
        from qwen_tui.screens.unsaved_quit import UnsavedQuit

        self.stop_and_save()
        return UnsavedQuit(self).ready()

    # ------------------------------------------------------------ other actions

    def action_edit_reply(self) -> None:
        from qwen_tui.screens.reply_editing import edit_reply  # the editor: on first use

        edit_reply(self, then_continue=self.action_continue_reply)

    async def action_continue_reply(self) -> None:
        from qwen_tui.screens.reply_editing import can_continue

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
        from qwen_tui.screens.session_questions import ask_settings

        ask_settings(self, self.session)

    def use_preset(self, preset: Preset) -> None:
        """The preset's system prompt and sampling settings become this session's."""
        from qwen_tui.screens.session_questions import apply_settings
        from qwen_tui.screens.settings_dialog import SessionSettings

        notice = f"Preset {preset.name!r} in use: saved with this session."
        result = SessionSettings(preset.system_prompt, preset.settings)
        apply_settings(self, self.session, result, notice)

    def action_copy(self) -> None:
        from qwen_tui.widgets.message_view import MessageView

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
        from qwen_tui.screens.session_file_prompt import ask_export

        ask_export(self, self.session)
