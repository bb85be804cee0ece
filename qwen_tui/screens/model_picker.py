"""Lists the installed models and the config's remotes; dismisses with the chosen one's key
(None when cancelled)."""

from __future__ import annotations

from rich.text import Text
from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Vertical
from textual.screen import ModalScreen
from textual.widgets import OptionList, Static
from textual.widgets.option_list import Option

from qwen_tui.chat.model_slot import ChatModel, model_key
from qwen_tui.config import RemoteConfig
from qwen_tui.visible_text import one_line


def model_label(model: ChatModel, current: bool) -> Text:
    label = Text("● " if current else "  ")
    label.append(one_line(model_key(model)), style="bold")
    if isinstance(model, RemoteConfig):
        where = f"{one_line(model.model)} at {one_line(model.base_url)}"
        label.append(f"  remote · ctx {model.context_length} · {where}", style="dim")
        return label
    manifest = model.manifest
    label.append(f"  {one_line(manifest.low_bit)} · ctx {manifest.context_length}", style="dim")
    if manifest.source:
        label.append(f" · {one_line(manifest.source)}", style="dim")
    return label


class ModelPicker(ModalScreen[str | None]):
    BINDINGS = [Binding("escape", "cancel", "Cancel", show=False)]  # noqa: RUF012

    def __init__(self, models: list[ChatModel], current: str | None) -> None:
        super().__init__(classes="dialog")
        self._models = models
        self._current = current

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box"):
            yield Static("Switch model", classes="dialog-title")
            if not self._models:
                yield Static(
                    "No model is installed. Quit and run `qwen-tui setup` or `qwen-tui import`, "
                    "or add a [[remotes]] entry to config.toml.",
                    markup=False,
                )
            options = [
                Option(model_label(m, model_key(m) == self._current), id=model_key(m))
                for m in self._models
            ]
            yield OptionList(*options, id="model-list")
            yield Static("enter loads the model, escape cancels", classes="dialog-hint")

    def on_mount(self) -> None:
        keys = [model_key(m) for m in self._models]
        option_list = self.query_one(OptionList)
        if self._current in keys:
            option_list.highlighted = keys.index(self._current)
        option_list.focus()

    @on(OptionList.OptionSelected)
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self.dismiss(event.option.id)

    def action_cancel(self) -> None:
        self.dismiss(None)
