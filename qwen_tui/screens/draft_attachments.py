"""What the chat screen does with `@path` and `!command`: the attachments of the draft.

The rules (what a draft attaches, reading, running, fitting) live in `context_sources`;
this class asks the user (run this command? cut to fit?), runs the slow parts in thread
workers, and keeps the line over the prompt box up to date.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TYPE_CHECKING

from qwen_tui.attachment import Attachment
from qwen_tui.context_sources import (
    AttachError,
    command_in,
    draft_parts,
    estimate_tokens,
    fit_to_tokens,
    prompt_room,
    run_command,
)
from qwen_tui.conversation import Message
from qwen_tui.screens.confirm_dialog import ConfirmDialog
from qwen_tui.visible_text import one_line
from qwen_tui.widgets.draft_info import DraftCount, DraftInfo

if TYPE_CHECKING:
    from qwen_tui.engine.base import Engine
    from qwen_tui.screens.chat_screen import ChatScreen

COUNT_DELAY_S = 0.3
"""Count the draft's tokens once typing pauses this long (a file is read and encoded)."""

Send = Callable[[str, tuple[Attachment, ...]], Awaitable[None]]


class DraftAttachments:
    """The attachments waiting to go with the next message of one chat screen."""

    def __init__(self, screen: ChatScreen, cwd: Path | None = None) -> None:
        self.screen = screen
        self.cwd = cwd or Path.cwd()
        """Where `@path`s start from and commands run: where qwen-tui was started."""
        self.pending: list[Attachment] = []
        self._count_timer = None
        self._checking = False
        """A sent draft is being counted or cut: a second enter must not send it twice."""

    @property
    def info(self) -> DraftInfo:
        return self.screen.query_one(DraftInfo)

    def _in_thread(self, work: Callable[[], None], group: str) -> None:
        """Reading, encoding and running off the UI thread (a failure is logged by the app's
        worker handler)."""
        self.screen.run_worker(work, thread=True, group=group, exit_on_error=False)

    # ------------------------------------------------------------ the draft

    def add(self, attachment: Attachment) -> None:
        self.pending.append(attachment)
        self.changed()

    def remove_last(self) -> None:
        if self.pending:
            removed = self.pending.pop()
            self.screen.notify(f"Removed the attachment {one_line(removed.title())}.")
            self.changed()

    def restore(self, attachments: tuple[Attachment, ...]) -> None:
        """Editing a sent message: its attachments go with it again."""
        self.pending[:] = attachments
        self.changed()

    def clear(self) -> None:
        self.pending.clear()
        self.info.show([], None)  # not the last count, for the moment until the next
        self.changed()

    def changed(self) -> None:
        """The draft or its attachments changed: count again once typing pauses."""
        self.screen.prompt.allow_empty = bool(self.pending)
        self.info.show(self._titles(), self.info.count)
        if self._count_timer is not None:
            self._count_timer.stop()
        self._count_timer = self.screen.set_timer(COUNT_DELAY_S, self._count)

    def _titles(self) -> list[str]:
        return [a.title() for a in self.pending]

    def _count(self) -> None:
        self._count_timer = None
        draft = self.screen.prompt.text
        if not draft.strip() and not self.pending:
            self.info.show([], None)
            return
        if command_in(draft) is not None:  # not sent: run, once the user says yes
            self.info.show(self._titles(), None, "enter asks before running this command")
            return
        history = self.screen.session.chat_messages()
        engine = self.screen.app.engine
        pending = list(self.pending)
        # The status bar knows the window before the model has loaded (from its manifest).
        settings = self.screen.session.settings
        room = prompt_room(self.screen.status.context_size, settings.max_new_tokens)

        def count() -> None:
            parts = draft_parts(draft, pending, self.cwd)
            notes = [*parts.problems, *parts.unknown[:3]]
            result = self._counted(engine, history, parts.message, notes, room, len(pending))
            self.screen.app.call_from_thread(self._show_count, draft, result)

        self._in_thread(count, "draft-count")

    def _counted(
        self,
        engine: Engine | None,
        history: list[Message],
        message: Message,
        problems: list[str],
        room: int,
        pending: int,
    ) -> DraftCount:
        """In a worker: the draft's tokens, estimated while there is no tokenizer free."""
        sent = message.for_model()
        total = base = None
        if engine is not None:
            total = self.screen.app.count_tokens_if_free(engine, [*history, sent])
            base = self.screen.app.count_tokens_if_free(engine, history)
        estimated = total is None or base is None
        if estimated:
            total, base = estimate_tokens([*history, sent]), estimate_tokens(history)
        files = tuple(f"{a.title()} (@ in the draft)" for a in message.attachments[pending:])
        return DraftCount(total - base, total, room, estimated, tuple(problems), files)

    def _show_count(self, draft: str, count: DraftCount) -> None:
        if self.screen.is_attached and draft == self.screen.prompt.text:
            self.info.show(self._titles(), count)

    # ------------------------------------------------------------ sending

    def submit(self, draft: str, send: Send) -> None:
        """Enter on the draft: a `!command` is run (after asking) and attached; anything
        else is sent with the attachments and its @files, once it fits the window."""
        if self._checking:
            return
        command = command_in(draft)
        if command is not None:
            self._ask_to_run(command)
            return
        parts = draft_parts(draft, self.pending, self.cwd)
        if parts.problems:  # the draft stays as it is, to fix
            self.screen.notify("\n".join(parts.problems), title="Not sent", severity="error")
            return
        message = parts.message
        engine = self.screen.app.engine
        if engine is None or not message.attachments:
            self._send(message, send)
            return
        history = self.screen.session.chat_messages()[:1]  # system prompt + this message
        room = prompt_room(engine.info.context_length, self.screen.session.settings.max_new_tokens)

        def count(candidate: Message) -> int:
            tokens = self.screen.app.count_tokens_if_free(engine, [*history, candidate.for_model()])
            return estimate_tokens([*history, candidate.for_model()]) if tokens is None else tokens

        def check() -> None:
            try:
                needed = count(message)
            except Exception as error:  # enter works again; the log gets the traceback
                self.screen.app.call_from_thread(self._failed, error)
                raise
            self.screen.app.call_from_thread(self._check_fits, message, needed, room, count, send)

        self._checking = True
        self._in_thread(check, "draft-send")

    def _check_fits(
        self,
        message: Message,
        needed: int,
        room: int,
        count: Callable[[Message], int],
        send: Send,
    ) -> None:
        self._checking = False
        if needed <= room:
            self._send(message, send)
            return
        question = (
            f"With its attachments this message is {needed:,} tokens; the model's context "
            f"window leaves room for {room:,} (the rest is kept for the reply).\n\n"
            "Cut the attachments to fit (the end of the largest is left out, with a marker "
            "saying so), or cancel and keep the draft as it is?"
        )

        def answered(cut: bool | None) -> None:
            self.screen.prompt.focus()
            if not cut:
                return

            def fit() -> None:
                try:
                    fitted = fit_to_tokens(message, room, count)
                except Exception as error:
                    self.screen.app.call_from_thread(self._failed, error)
                    raise
                self.screen.app.call_from_thread(self._send, fitted, send)

            self._checking = True
            self._in_thread(fit, "draft-send")

        dialog = ConfirmDialog("Attachments too big", question, "Cut to fit")
        self.screen.app.push_screen(dialog, answered)

    def _failed(self, error: Exception) -> None:
        self._checking = False
        reason = one_line(str(error)) or type(error).__name__
        self.screen.notify(reason, title="Not sent: counting its tokens failed", severity="error")

    def _send(self, message: Message, send: Send) -> None:
        self._checking = False

        async def go() -> None:
            await send(message.content, message.attachments)

        self.screen.call_later(go)

    def sent(self) -> None:
        """The message left with its attachments: the next draft starts with none."""
        self.clear()

    # ------------------------------------------------------------ commands

    def _ask_to_run(self, command: str) -> None:
        question = (
            f"Run this shell command in {self.cwd} and attach its output?\n\n"
            f"$ {command}\n\n"
            "It runs with your permissions; its exit status, stdout and stderr are attached "
            "to the next message."
        )

        def answered(run: bool | None) -> None:
            self.screen.prompt.focus()
            if run:
                self._run(command)

        self.screen.app.push_screen(ConfirmDialog("Run a command", question, "Run"), answered)

    def _run(self, command: str) -> None:
        self.screen.notify(f"Running: {one_line(command)}", timeout=3)

        def run() -> None:
            try:
                result: Attachment | AttachError = run_command(command, self.cwd)
            except AttachError as error:
                result = error
            self.screen.app.call_from_thread(self._ran, command, result)

        self._in_thread(run, "draft-command")

    def _ran(self, command: str, result: Attachment | AttachError) -> None:
        if isinstance(result, AttachError):
            self.screen.notify(str(result), title="Command not run", severity="error")
            return
        prompt = self.screen.prompt
        if command_in(prompt.text) == command:
            prompt.clear()  # the command was the draft: what is typed next goes with it
        self.add(result)
