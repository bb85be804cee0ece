"""TTFT of the next turn after switching conversation branches: KV cache reused vs cold.

    python -m benchmarks.branch_switch [--turns 6] [--words 80] [--repeats 3]

The demo model (SmolLM2-135M, prepared as the app does) answers a conversation of `--turns`
prompts of `--words` words, through `engine.generate` as the app calls it. Then, each time
on the cache the previous step left:
- `regenerate`: the last answer is regenerated (its prompt again, a sibling reply);
- `switch, late fork`: back to the first reply (the fork is the last answer) and a new prompt;
- `switch, early fork`: the second prompt is edited and answered, then the user switches
  back to the original second prompt's branch and sends a new prompt there;
- `cold`: the same prompt as the late-fork switch on an empty cache (no KV reuse).
Prints one JSON object: per case the median TTFT and the prompt / reused token counts.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
from pathlib import Path
from typing import Any

from qwen_tui import conversation_tree as tree
from qwen_tui.conversation import GenerationStats, Session
from qwen_tui.engine.measure import filler_text, reply
from qwen_tui.paths import Paths

REPLY_TOKENS = 16


def answer(engine: Any, session: Session) -> GenerationStats:
    text, stats = reply(engine, session.chat_messages(), REPLY_TOKENS)
    session.add("assistant", text)
    return stats


def one_round(engine: Any, turns: int, words: int, seed: int) -> dict[str, GenerationStats]:
    session = Session(system_prompt=f"Round {seed}: you are a helpful assistant.")
    engine.cache.reset()
    for turn in range(turns):
        session.add("user", filler_text(words, seed * 100 + turn))
        answer(engine, session)
    first_reply = session.messages[-1]
    tree.leave_path(session, first_reply)
    measured = {"regenerate": answer(engine, session)}
    tree.switch_to(session, first_reply)
    session.add("user", filler_text(words, seed * 100 + 50))
    late_prompt = session.chat_messages()
    measured["switch, late fork"] = answer(engine, session)
    original = session.messages[2]
    tree.leave_path(session, original)
    session.add("user", filler_text(words, seed * 100 + 60))
    answer(engine, session)
    tree.switch_to(session, original)
    session.add("user", filler_text(words, seed * 100 + 70))
    measured["switch, early fork"] = answer(engine, session)
    engine.cache.reset()
    measured["cold"] = reply(engine, late_prompt, REPLY_TOKENS)[1]
    return measured


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=6)
    parser.add_argument("--words", type=int, default=80)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--home", type=Path, help="where to prepare the demo model (kept)")
    args = parser.parse_args()
    from qwen_tui.engine.loader import load_engine
    from qwen_tui.model_setup.importer import ensure_demo_model

    home = args.home or Path(tempfile.mkdtemp(prefix="branch-switch-"))
    paths = Paths(home / "config.toml", home / "data", home / "state", home / "cache")
    engine = load_engine(ensure_demo_model(paths))
    rounds = [one_round(engine, args.turns, args.words, seed) for seed in range(args.repeats)]
    report = {
        case: {
            "ttft_s": round(statistics.median(r[case].ttft_s or 0.0 for r in rounds), 4),
            "prompt_tokens": rounds[0][case].prompt_tokens,
            "reused_tokens": rounds[0][case].reused_tokens,
        }
        for case in rounds[0]
    }
    print(json.dumps({"model": "demo", "turns": args.turns, "words": args.words, **report}))


if __name__ == "__main__":
    main()
