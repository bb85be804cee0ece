"""How long the app takes to show a long session, against a one-message session in the same run.

    python benchmarks/open_session.py [--messages 1000] [--repeats 3]

The target is under a second for 1,000 messages; the app mounts only the newest messages
and the rest when the user scrolls to the top (tests/tui check that structure, this script
the time). Prints a table and writes benchmarks/results/open_session-<time>.json.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))


async def seconds_to_show(session_id: str, wanted: str) -> float:
    from qwen_tui.app import QwenTuiApp
    from qwen_tui.config import Config
    from qwen_tui.paths import get_paths

    started = time.perf_counter()
    app = QwenTuiApp(Config(), get_paths(), session_id=session_id)
    async with app.run_test(size=(80, 24)) as pilot:
        # With no model installed the setup screen opens on top; the chat is below it.
        while not any(wanted in str(w.render()) for w in app.chat_screen.query("*")):
            await pilot.pause(0.01)
        return time.perf_counter() - started


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()
    os.environ["QWEN_TUI_HOME"] = tempfile.mkdtemp(prefix="qwen-tui-bench-")
    from qwen_tui.conversation import Message, Session
    from qwen_tui.paths import get_paths
    from qwen_tui.store import SessionStore

    store = SessionStore(get_paths().sessions_dir)
    short = Session(title="short", messages=[Message("user", "just one message")])
    long = Session(title="long")
    for i in range(args.messages):
        role = "user" if i % 2 == 0 else "assistant"
        long.messages.append(Message(role, f"message {i}: some *markdown* with `code`"))
    store.save(short)
    store.save(long)
    last = f"message {args.messages - 1}"
    baseline = [
        asyncio.run(seconds_to_show(short.id, "just one message")) for _ in range(args.repeats)
    ]
    measured = [asyncio.run(seconds_to_show(long.id, last)) for _ in range(args.repeats)]
    result = {
        "messages": args.messages,
        "one_message_s": statistics.median(baseline),
        "long_session_s": statistics.median(measured),
        "spread_s": [min(measured), max(measured)],
    }
    result["ratio"] = result["long_session_s"] / result["one_message_s"]
    print(f"{'session':<22}{'median s':>10}{'min':>8}{'max':>8}")
    print(
        f"{'1 message':<22}{result['one_message_s']:>10.2f}{min(baseline):>8.2f}"
        f"{max(baseline):>8.2f}"
    )
    print(
        f"{f'{args.messages} messages':<22}{result['long_session_s']:>10.2f}"
        f"{min(measured):>8.2f}{max(measured):>8.2f}"
    )
    print(f"ratio {result['ratio']:.2f}x (target: under 1 s)")
    out = ROOT / "benchmarks" / "results" / f"open_session-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
