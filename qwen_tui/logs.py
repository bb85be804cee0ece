"""A rotating log file under the state folder gets the tracebacks; the screen gets a sentence."""

from __future__ import annotations

import logging
import logging.handlers
import os
from typing import TextIO

from qwen_tui.paths import ensure_private_dir, get_paths


class PrivateRotatingFileHandler(logging.handlers.RotatingFileHandler):
    """Log files (and each one a rollover starts) are 0600: lines can quote the user's text."""

    def _open(self) -> TextIO:
        fd = os.open(self.baseFilename, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        return open(fd, self.mode, encoding=self.encoding, errors=self.errors)


def setup_logging(level: int = logging.INFO) -> None:
    root = logging.getLogger()
    if any(isinstance(h, logging.handlers.RotatingFileHandler) for h in root.handlers):
        return
    try:
        log_dir = ensure_private_dir(get_paths().log_dir)
        handler: logging.Handler = PrivateRotatingFileHandler(
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
