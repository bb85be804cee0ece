"""Writing the session to a file the user names: ctrl+e's Markdown export, and the copy or
export offered when quitting with a session that could not be saved."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

from qwen_tui.conversation import Session
from qwen_tui.screens.confirm_dialog import ConfirmDialog
from qwen_tui.screens.text_input_dialog import TextInputDialog
from qwen_tui.store.export import default_export_path, write_export

if TYPE_CHECKING:
    from qwen_tui.screens.chat_screen import ChatScreen


def path_from_answer(answer: str) -> Path:
    """What the user typed, `~` expanded, relative to the folder qwen-tui started in."""
    path = Path(answer).expanduser()
    return path if path.is_absolute() else Path.cwd() / path


def ask_export(screen: ChatScreen, session: Session) -> None:
    """Ask where to export `session` as Markdown (asking before replacing a file), write it."""
    default = default_export_path(session, Path.cwd())

    def chosen(answer: str | None) -> None:
        screen.prompt.focus()
        if answer is None:
            return
        path = path_from_answer(answer)
        if not path.exists():
            export(screen, session, path)
            return
        replace = ConfirmDialog("Export", f"{path} exists. Replace it?", "Replace")
        screen.app.push_screen(replace, lambda yes: export(screen, session, path) if yes else None)

    dialog = TextInputDialog("Export session as Markdown to", str(default))
    screen.app.push_screen(dialog, chosen)


def export(screen: ChatScreen, session: Session, path: Path) -> None:
    try:
        write_export(session, path)
    except OSError as error:
        reason = f"{path}: {error.strerror or error}"
        screen.notify(reason, title="Export failed", severity="error")
        return
    screen.notify(f"Exported to {path}", title="Exported")


def ask_new_file(
    screen: ChatScreen,
    title: str,
    default: Path,
    write: Callable[[Path], None],
    done: Callable[[bool], None],
) -> None:
    """Ask for a file that does not exist yet and `write` it; `done(True)` once written,
    `done(False)` when cancelled or after saying why it could not be written."""

    def chosen(answer: str | None) -> None:
        if answer is None:
            done(False)
            return
        path = path_from_answer(answer)
        try:
            if path.exists():
                raise FileExistsError(17, "exists already: choose another name")
            write(path)
        except OSError as error:
            reason = f"{path}: {error.strerror or error}"
            screen.notify(reason, title="Could not write it there", severity="error")
            done(False)
            return
        done(True)

    screen.app.push_screen(TextInputDialog(title, str(default)), chosen)
