"""Turns a failed worker into what the user sees; the log gets the traceback."""

from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from qwen_tui.conversation import GenerationStats, StopReason
from qwen_tui.engine.base import EngineError
from qwen_tui.messages import GenerationFinished
from qwen_tui.model_files import ModelNotFoundError
from qwen_tui.store import StoreError

if TYPE_CHECKING:
    from textual.worker import Worker

    from qwen_tui.app import QwenTuiApp

log = logging.getLogger(__name__)


def error_text(error: BaseException | None) -> str:
    """EngineError/StoreError messages are written for users; others get their type."""
    if error is None:
        return "unknown error"
    if isinstance(error, EngineError | StoreError | ModelNotFoundError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def report_failure(app: QwenTuiApp, worker: Worker) -> None:
    """A model that did not load is marked failed and said so; a reply that failed ends with
    its error (the chat keeps what it had); a session listing that failed is said so."""
    error = worker.error
    log.error("worker %s failed", worker.name, exc_info=error)
    message = error_text(error)
    if worker.group == "model":
        title = f"Could not load {app.models.name()}"
        app.models.failed(message)
        app.model_state_changed()
        app.notify(message, title=title, severity="error", timeout=15)
    elif worker.group == "generate" and app.chat_screen is not None:
        stats = GenerationStats(stop_reason=StopReason.ERROR, error=message)
        app.chat_screen.post_message(GenerationFinished(stats))
    elif worker.group == "sessions":
        app.notify(message, title="Could not list the sessions", severity="error")
    # "context" failures only cost the status bar its token count: the log has them.
