"""`python -m tests.terminal.fake_app ARGS`: the real `qwen-tui ARGS` with the FakeEngine.

For terminal tests that are about the UI (keys, paste, focus, resize): the whole program runs
as a user starts it (argument parsing, config, store, the Textual driver on a real pty); only
loading a model is replaced, by a FakeEngine whose replies are words streamed at
`QWEN_TUI_FAKE_DELAY` seconds each (`QWEN_TUI_FAKE_WORDS` of them). The model it stands for
must be installed in QWEN_TUI_HOME (`install_fake_model`).
"""

from __future__ import annotations

import os
import sys

from qwen_tui import cli
from qwen_tui.app import QwenTuiApp
from qwen_tui.model_files import InstalledModel
from tests.tui.fake_engine import FakeEngine

DELAY_ENV, WORDS_ENV = "QWEN_TUI_FAKE_DELAY", "QWEN_TUI_FAKE_WORDS"
NUMBERED_ENV = "QWEN_TUI_FAKE_NUMBERED"
"""Set to 1: reply N starts with "replyN" (replies told apart on screen)."""


def reply_text(words: int) -> str:
    return " ".join(f"word{index}" for index in range(words))


def fake_engine(self: QwenTuiApp, model: InstalledModel) -> FakeEngine:
    delay = float(os.environ.get(DELAY_ENV, "0.005"))
    words = int(os.environ.get(WORDS_ENV, "12"))
    text = reply_text(words)
    replies = [f"reply{n} {text}" for n in range(1, 50)] if os.environ.get(NUMBERED_ENV) else text
    return FakeEngine(replies, name=model.name, delay=delay)


if __name__ == "__main__":
    QwenTuiApp._load_engine = fake_engine  # type: ignore[method-assign]
    sys.exit(cli.main(sys.argv[1:]))
