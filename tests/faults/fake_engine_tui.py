"""The real `qwen-tui` (its CLI, terminal driver and signal handling) answering with the
FakeEngine, for terminal tests about keys and the UI rather than about a model.

    python -m tests.faults.fake_engine_tui [qwen-tui arguments]

Environment: QWEN_TUI_FAKE_REPLY is the reply, or one of `words:N`, `paragraphs:N`,
`table:COLSxROWS` (a Markdown table); QWEN_TUI_FAKE_DELAY is the pause before each word
(default 0.005 s). While the file named by QWEN_TUI_FULL_DISK_FLAG exists, writes into the
sessions folder fail with ENOSPC (as in inject_write_error.py). The models folder needs an
installed model (tests.tui.conftest's install_fake_model writes one).
"""

from __future__ import annotations

import errno
import os
import sys
from pathlib import Path

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


def fail_session_writes_while(flag: Path) -> None:
    sessions = os.path.realpath(os.environ["QWEN_TUI_HOME"]) + "/data/sessions/"
    real_write = os.write

    def write(fd: int, data: bytes) -> int:
        if flag.exists() and os.path.realpath(f"/proc/self/fd/{fd}").startswith(sessions):
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return real_write(fd, data)

    os.write = write


if __name__ == "__main__":
    QwenTuiApp._load_engine = fake_engine  # type: ignore[method-assign]
    if flag := os.environ.get("QWEN_TUI_FULL_DISK_FLAG"):
        fail_session_writes_while(Path(flag))
    sys.exit(main(sys.argv[1:]))
