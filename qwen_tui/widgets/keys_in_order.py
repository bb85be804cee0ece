"""Editing keys applied in the order they were typed."""

from __future__ import annotations

from typing import TYPE_CHECKING

from textual import events

if TYPE_CHECKING:
    from textual.widget import Widget
else:
    Widget = object  # a plain mixin: a Widget base here would hide the text widget's CSS


class KeysInOrder(Widget):
    """Mix in before a text widget (`class Box(KeysInOrder, Input)`).

    Textual inserts a printable key in the focused widget's own key handler, but runs a
    binding (backspace, delete, ctrl+w, arrows...) only once the key has bubbled up to the
    app. Keys that arrive in one burst (fast typing over SSH) are then applied out of order:
    "r", backspace, "Red" became "rRe". Here the widget's own bindings run right away, in
    the handler, before the next key is looked at.
    """

    async def _on_key(self, event: events.Key) -> None:
        for binding in self._bindings.key_to_bindings.get(event.key, []):
            if self.check_action(binding.action, ()) is False:
                continue
            event.stop()
            event.prevent_default()  # the text widget's own handler would see it too
            await self.run_action(binding.action)
            return
