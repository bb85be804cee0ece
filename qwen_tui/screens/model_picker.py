"""Lists the installed models; dismisses with the chosen name (None when cancelled)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from qwen_tui.model_setup.installed import InstalledModel
from qwen_tui.widgets.visible_text import one_line


def model_label(model: InstalledModel, current: bool) -> Text:
    manifest = model.manifest
    label = Text("● " if current else "  ")
    label.append(one_line(model.name), style="bold")
    label.append(f"  {one_line(manifest.low_bit)} · ctx {manifest.context_length}", style="dim")
    if manifest.source:
        label.append(f" · {one_line(manifest.source)}", style="dim")
    return label


class ModelPicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]  # noqa: RUF012

    def __init__(self, models: list[InstalledModel], current: str | None) -> None:
        super().__init__(classes="dialog")
        self._models = models
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static("Switch model", classes="dialog-title")
            if not self._models:
                yield Static(
                    "No model is installed. Quit and run `qwen-tui setup` or `qwen-tui import`.",
                    markup=False,
                )
            options = [
                Option(model_label(m, m.name == self._current), id=m.name) for m in self._models
            ]
            yield OptionList(*options, id="model-list")
            yield Static("enter loads the model, escape cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        names = [m.name for m in self._models]
        option_list = self.query_one(OptionList)
        if self._current in names:
            option_list.highlighted = names.index(self._current)
        option_list.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
