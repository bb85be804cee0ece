"""Every action a key can start, kept once: its binding id, default key, help text and
where it works. The app's bindings, the help screen, the command palette and the `[keys]`
table of config.toml all read this list, so an id the app binds is an id `[keys]` accepts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Where = Literal["app", "chat", "sidebar", "setup"]


@dataclass(frozen=True)
class Action:
    id: str
    """The binding id: what `[keys]` names and Textual's keymap matches."""
    key: str
    """Default key(s), Textual's names, comma separated."""
    help: str
    """What the help screen and the command palette say it does."""
    where: Where
    """app: everywhere; chat: the chat screen; sidebar: the sessions list; setup: the setup
    screen (the chat's keys are not active there)."""


ACTIONS: tuple[Action, ...] = (
    Action("app.quit", "ctrl+q", "Quit (asks first if something could not be saved)", "app"),
    Action("session.new", "ctrl+n", "Start a new session", "chat"),
    Action(
        "session.regenerate",
        "ctrl+r",
        "Regenerate the last answer (the old one stays: switch back with the branch keys)",
        "chat",
    ),
    Action(
        "branch.previous",
        "f8,alt+left",
        "Show the previous reply or edit (‹ 2/3 ›) of the focused or last message that has some",
        "chat",
    ),
    Action(
        "branch.next",
        "f9,alt+right",
        "Show the next reply or edit (‹ 2/3 ›) of the focused or last message that has some",
        "chat",
    ),
    Action(
        "session.fork",
        "f4",
        "Fork: a new session holding the conversation up to the focused (or last) message",
        "chat",
    ),
    Action("sidebar.toggle", "ctrl+b", "Show or hide the sessions sidebar", "chat"),
    Action(
        "generation.stop",
        "escape",
        "Stop the reply being generated (keeps the partial answer)",
        "chat",
    ),
    Action("app.help", "f1", "Show the keys", "app"),
    Action(
        "session.settings",
        "ctrl+s",
        "Edit this session's system prompt and generation settings",
        "chat",
    ),
    Action("session.export", "ctrl+e", "Export this session as a Markdown file", "chat"),
    Action("message.copy", "ctrl+y", "Copy the last answer (or the focused message)", "chat"),
    Action(
        "message.edit",
        "f5",
        "Edit an answer (the focused one, else the last): the old text, and the turns "
        "after it, stay as a branch; the edited answer is the last, ready to continue",
        "chat",
    ),
    Action(
        "generation.continue",
        "ctrl+g",
        "Continue the last answer from the end of its text (after a stop or an edit)",
        "chat",
    ),
    Action(
        "model.switch",
        "ctrl+o",
        "Switch to another model (installed or a [[remotes]] server)",
        "chat",
    ),
    Action("sidebar.rename", "f2", "Sidebar: rename the highlighted session", "sidebar"),
    Action("sidebar.delete", "delete,ctrl+d", "Sidebar: delete the highlighted session", "sidebar"),
    Action("sidebar.new", "insert", "Sidebar: start a new session", "sidebar"),
    Action("sidebar.search", "ctrl+f", "Sidebar: search titles and messages", "sidebar"),
    Action(
        "setup.back",
        "escape",
        "Setup: cancel the download, or go back (field -> list -> chat)",
        "setup",
    ),
)

ACTION_BY_ID: dict[str, Action] = {action.id: action for action in ACTIONS}

DEFAULT_KEYS: dict[str, str] = {action.id: action.key for action in ACTIONS}
"""Binding id -> default key: the ids a [keys] table may rebind."""

ACTIVE_TOGETHER: tuple[tuple[str, ...], ...] = (
    tuple(a.id for a in ACTIONS if a.where in ("app", "chat", "sidebar")),
    tuple(a.id for a in ACTIONS if a.where in ("app", "setup")),
)
"""Groups of actions whose keys work at the same time (on the chat screen; on the setup
screen): within a group one key may start only one action. Escape stops a reply in the
chat and goes back on the setup screen: different screens, no clash."""


def default_key(action_id: str) -> str:
    return ACTION_BY_ID[action_id].key


def help_text(action_id: str, fallback: str = "") -> str:
    action = ACTION_BY_ID.get(action_id)
    return action.help if action else fallback
