"""The keys in effect (after the config's [keys] table) and what they do."""

from __future__ import annotations

from rich.table import Table
from rich.text import Text
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Static

from qwen_tui.visible_text import one_line


class HelpScreen(ModalScreen[None]):
    BINDINGS = [Binding("escape,f1,q", "close", "Close", show=False)]  # noqa: RUF012

    def __init__(self, rows: list[tuple[str, str, str]]) -> None:
        """`rows` are (keys, what it does, binding id) in display order."""
        super().__init__(classes="dialog")
        self._rows = rows

    def compose(self) -> ComposeResult:
        table = Table(box=None, show_header=True, header_style="bold", expand=True)
        # Text, not str: Rich tables parse plain strings as markup, and keys come from the config.
        table.add_column(Text("Keys"), no_wrap=True)
        table.add_column(Text("Action"))
        table.add_column(Text("Id ([keys] in config.toml)"), style="dim", no_wrap=True)
        for keys, description, binding_id in self._rows:
            table.add_row(Text(one_line(keys)), Text(one_line(description)), Text(binding_id))
        with Vertical(classes="dialog-box", id="help-box"):
            yield Static("Keys", classes="dialog-title")
            with VerticalScroll():
                yield Static(table, id="help-table")
                yield Static(
                    "Prompt: enter sends, ctrl+j or shift+enter adds a line, up in an empty "
                    "prompt edits the last message. Sidebar: enter opens, r renames, d deletes, "
                    "n new. ctrl+p opens the command palette. @path in a message attaches a "
                    "file (tab completes it); !command alone runs a command after asking and "
                    "attaches its output; backspace in an empty prompt drops the last one.",
                    classes="dialog-hint",
                    markup=False,
                )
            yield Static("escape closes", classes="dialog-hint")

    def action_close(self) -> None:
        self.dismiss(None)
