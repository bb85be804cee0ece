"""Edits one session's system prompt and sampling settings; the same values can be kept as
the user's defaults for new sessions or as a named preset (store/presets.py)."""

from __future__ import annotations

from dataclasses import dataclass, replace

from textual import on
from textual.app import ComposeResult
from textual.binding import Binding
from textual.containers import Horizontal, Vertical, VerticalScroll
from textual.screen import ModalScreen
from textual.widgets import Button, Input, Label, Static, TextArea

from qwen_tui.conversation import SETTING_BOUNDS, Bound, GenerationSettings
from qwen_tui.screens.text_input_dialog import TextInputDialog
from qwen_tui.store.presets import PresetError, check_preset_name


@dataclass(frozen=True)
class SessionSettings:
    """What the dialog returns."""

    system_prompt: str
    generation: GenerationSettings
    as_defaults: bool = False
    """Also what new sessions start from."""
    preset_name: str | None = None
    """Also saved as this named preset."""


@dataclass(frozen=True)
class Field:
    name: str
    label: str

    @property
    def bound(self) -> Bound:
        """The same bound config.toml and the command line check (conversation.py)."""
        return SETTING_BOUNDS[self.name]


FIELDS = (
    Field("temperature", "Temperature"),
    Field("top_p", "Top-p"),
    Field("top_k", "Top-k"),
    Field("max_new_tokens", "Max new tokens"),
    Field("repetition_penalty", "Repetition penalty"),
    Field("seed", "Seed"),
)


class SettingsDialog(ModalScreen[SessionSettings | None]):
    BINDINGS = [  # noqa: RUF012
        Binding("escape", "cancel", "Cancel", show=False),
        Binding("ctrl+s", "save", "Save", show=False, priority=True),
    ]

    def __init__(self, system_prompt: str, settings: GenerationSettings) -> None:
        super().__init__(classes="dialog")
        self._system_prompt = system_prompt
        self._settings = settings

    def compose(self) -> ComposeResult:
        with Vertical(classes="dialog-box", id="settings-box"):
            yield Static("Session settings", classes="dialog-title")
            with VerticalScroll(id="settings-fields"):
                yield Label("System prompt")
                yield TextArea(
                    self._system_prompt, id="system-prompt", soft_wrap=True, compact=True
                )
                for field in FIELDS:
                    value = getattr(self._settings, field.name)
                    with Horizontal(classes="setting-row"):
                        yield Label(field.label, classes="setting-label")
                        text = "" if value is None else str(value)
                        placeholder = "blank = random" if field.bound.optional else ""
                        yield Input(text, id=field.name, compact=True, placeholder=placeholder)
            yield Static("ctrl+s saves, escape cancels", id="settings-error", markup=False)
            with Horizontal(classes="dialog-buttons"):
                yield Button("Save", variant="primary", id="save", compact=True)
                yield Button("Save as my defaults", id="save-defaults", compact=True)
                yield Button("Save as preset…", id="save-preset", compact=True)
                yield Button("Cancel", id="cancel", compact=True)

    def on_mount(self) -> None:
        # Textual's auto-focus would pick the scrolling container: typed text went nowhere.
        prompt = self.query_one("#system-prompt", TextArea)
        prompt.focus()
        prompt.move_cursor(prompt.document.end)

    @on(Button.Pressed, "#save")
    def action_save(self) -> None:
        result = self._result()
        if result is not None:
            self.dismiss(result)

    @on(Button.Pressed, "#save-defaults")
    def _save_as_defaults(self) -> None:
        result = self._result()
        if result is not None:
            self.dismiss(replace(result, as_defaults=True))

    @on(Button.Pressed, "#save-preset")
    def _save_as_preset(self) -> None:
        result = self._result()
        if result is None:
            return

        def named(name: str | None) -> None:
            if name is None:  # cancelled: back to the dialog, nothing lost
                return
            try:
                name = check_preset_name(name)
            except PresetError as error:
                self._show_error(str(error))
                return
            self.dismiss(replace(result, preset_name=name))

        self.app.push_screen(
            TextInputDialog("Preset name", hint="enter saves it, escape goes back"), named
        )

    def _result(self) -> SessionSettings | None:
        """The values typed, or None after pointing at the first one out of bounds."""
        values: dict[str, object] = {}
        for field in FIELDS:
            text = self.query_one(f"#{field.name}", Input).value
            try:
                value = field.bound.parse(text)
            except ValueError:
                self._show_error(f"{field.label}: {field.bound.words}")
                self.query_one(f"#{field.name}", Input).focus()
                return None
            values[field.name] = value
        prompt = self.query_one("#system-prompt", TextArea).text
        return SessionSettings(prompt, self._settings.with_changes(**values))

    def _show_error(self, text: str) -> None:
        error = self.query_one("#settings-error", Static)
        error.update(text)
        error.add_class("-invalid")

    @on(Button.Pressed, "#cancel")
    def action_cancel(self) -> None:
        self.dismiss(None)
