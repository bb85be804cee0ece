"""The chat screen and the model: its state in the status bar and the notice, switching it."""

from __future__ import annotations

from typing import TYPE_CHECKING

from qwen_tui.messages import ContextCounted, ModelStateChanged
from qwen_tui.visible_text import visible_text

if TYPE_CHECKING:
    from qwen_tui.screens.chat_screen import ChatScreen


class ModelStatus:
    """Mixed into ChatScreen (only): what the screen shows of the model (state, name,
    context, RAM) and whether a prompt can be answered."""

    def _refresh_ram(self: ChatScreen) -> None:
        # Whole megabytes: an unchanged value does not redraw the status bar.
        self.status.rss_bytes = self.app.process_rss() >> 20 << 20

    def _model_usable(self: ChatScreen) -> bool:
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

    def on_model_state_changed(self: ChatScreen, message: ModelStateChanged) -> None:
        self._apply_model_state(message)
        if message.state == "ready":
            self.app.count_context(self)
            if self.chat.pending is not None and not self.generating:
                self.call_later(self._start_reply)
        elif message.state == "error":
            self._clear_pending()  # the prompt stays saved; ctrl+r answers it later

    def _apply_model_state(self: ChatScreen, message: ModelStateChanged) -> None:
        status = self.status
        status.state = "generating" if self.generating else message.state
        if message.info is not None:
            status.model_name = message.info.name
            status.low_bit = message.info.low_bit
            status.context_size = message.info.context_length
        self._refresh_notice()

    def _refresh_notice(self: ChatScreen) -> None:
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

    def on_context_counted(self: ChatScreen, message: ContextCounted) -> None:
        self.status.context_used = message.tokens

    def action_switch_model(self: ChatScreen) -> None:
        from qwen_tui.screens.model_picker import ModelPicker, model_key

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
