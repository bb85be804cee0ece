"""Quitting while a session could not be saved: ask, then retry, write it elsewhere, or quit
anyway. Nothing the user wrote is given up without that question."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING

from qwen_tui.conversation import Session
from qwen_tui.screens.session_file_prompt import ask_new_file
from qwen_tui.screens.unsaved_dialog import UnsavedChoice, UnsavedDialog
from qwen_tui.store.export import default_export_path, write_export, write_session_copy
from qwen_tui.visible_text import one_line

if TYPE_CHECKING:
    from qwen_tui.screens.chat_screen import ChatScreen


class UnsavedQuit:
    """The questions asked about the chat's unsaved session when the user quits."""

    def __init__(self, screen: ChatScreen) -> None:
        self.screen = screen

    def ready(self) -> bool:
        """True when nothing would be lost by quitting now (a last save is tried). Otherwise
        ask what to do with the unsaved session (the answer may quit the app)."""
        screen = self.screen
        if isinstance(screen.app.screen, UnsavedDialog):
            return False  # already asking
        unsaved = screen.chat.unsaved
        if unsaved is None or screen.save_or_tell(unsaved, "Still could not save", True):
            return True
        self.ask()
        return False

    def ask(self) -> None:
        unsaved = self.screen.chat.unsaved
        assert unsaved is not None
        title = one_line(unsaved.title) or "New session"
        dialog = UnsavedDialog(title, self.screen.chat.unsaved_error)
        self.screen.app.push_screen(dialog, self._answer)

    def _answer(self, choice: UnsavedChoice | None) -> None:
        screen = self.screen
        session = screen.chat.unsaved
        if session is None or choice == "quit":
            screen.app.exit(0)
        elif choice is None:
            screen.prompt.focus()
        elif choice == "retry":
            if screen.save_or_tell(session, "Still could not save", True):
                screen.app.exit(0)
            else:
                self.ask()
        else:
            self._write_elsewhere(session, choice)

    def _write_elsewhere(self, session: Session, choice: UnsavedChoice) -> None:
        """Save a copy (the session file's format) or export Markdown, then quit."""
        if choice == "export":
            title, default = "Export as Markdown to", default_export_path(session, Path.cwd())
        else:
            title, default = "Save a copy of the session to", Path.cwd() / f"{session.id}.json"

        def write(path: Path) -> None:
            if choice == "export":
                write_export(session, path)
            else:
                write_session_copy(session, path)

        def done(written: bool) -> None:
            if written:
                self.screen.app.exit(0)
            else:
                self.ask()

        ask_new_file(self.screen, title, default, write, done)
