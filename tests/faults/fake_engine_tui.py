"""The real `qwen-tui` (its CLI, terminal driver and signal handling) answering with the
FakeEngine, for terminal tests about keys and the UI rather than about a model.

    python -m tests.faults.fake_engine_tui [qwen-tui arguments]

Environment: QWEN_TUI_FAKE_REPLY is the reply, or one of `words:N`, `paragraphs:N`,
`table:COLSxROWS` (a Markdown table); QWEN_TUI_FAKE_DELAY is the pause before each word
(default 0.005 s). The models folder needs an installed model (tests.tui.conftest's
install_fake_model writes one).
"""

from __future__ import annotations

import os
import sys

from qwen_tui.app import QwenTuiApp
from qwen_tui.cli import main
from tests.tui.fake_engine import FakeEngine


def scripted_reply(spec: str) -> str:
    kind, _, size = spec.partition(":")
    if kind == "words":
        return " ".join(f"word{i}" for i in range(int(size)))
    if kind == "paragraphs":
        return "\n\n".join(f"Paragraph {i} is short." for i in range(int(size)))
    if kind == "table":
        columns, rows = (int(n) for n in size.split("x"))
        header = "| " + " | ".join(f"c{c}" for c in range(columns)) + " |"
        rule = "|" + "---|" * columns
        body = ["| " + " | ".join(f"{r}.{c}" for c in range(columns)) + " |" for r in range(rows)]
        return "\n".join([header, rule, *body])
    return spec


def fake_engine(app: QwenTuiApp, model) -> FakeEngine:
    reply = scripted_reply(os.environ.get("QWEN_TUI_FAKE_REPLY", "Hello from the fake engine."))
    delay = float(os.environ.get("QWEN_TUI_FAKE_DELAY", "0.005"))
    return FakeEngine(reply, name=model.name, delay=delay)


if __name__ == "__main__":
    QwenTuiApp._load_engine = fake_engine  # type: ignore[method-assign]
    sys.exit(main(sys.argv[1:]))
