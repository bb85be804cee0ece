"""A rotating log file under the state folder gets the tracebacks; the screen gets a sentence."""

from __future__ import annotations

import logging
import logging.handlers

from qwen_tui.paths import ensure_private_dir, get_paths


def setup_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(isinstance(h, logging.handlers.RotatingFileHandler) for h in root.handlers):
        return
    try:
        log_dir = ensure_private_dir(get_paths().log_dir)
        handler: logging.Handler = logging.handlers.RotatingFileHandler(
            log_dir / "qwen-tui.log", maxBytes=2 * 2**20, backupCount=3, encoding="utf-8"
        )
    except OSError:
        handler = logging.NullHandler()  # a read-only home must not stop the app
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root.addHandler(handler)
    root.setLevel(level)
    # Library chatter (bigdl's "Converting the current model...") belongs in the log, not
    # on the user's terminal: route it to our handler only.
    for name in ("bigdl", "transformers", "huggingface_hub"):
        logging.getLogger(name).propagate = True
