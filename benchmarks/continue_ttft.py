"""What continuing a stopped answer costs in TTFT: on the KV cache the stop left vs cold.

    python benchmarks/continue_ttft.py [--turns 4] [--repeats 3]

The bundled demo model (SmolLM2-135M-Instruct, real weights: its text encodes back to the
ids it was decoded from) in a private home under benchmarks/cache. A conversation of
`--turns` earlier greedy turns, then a long answer stopped after 120 pieces, then a
continuation of it (4 tokens) right away (the cache as the stop left it) and again on an
empty cache (the baseline, same prompt). Prints the medians and writes
benchmarks/results/continue_ttft-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

TOPICS = ["the terminal", "Unix pipes", "the vi editor", "ssh", "tmux", "UTF-8", "C", "Python"]


def reply(engine, messages, max_new_tokens: int, stop_after: int | None = None):
    """(text, stats) of a greedy reply, stopped by `stop_after` pieces as the user would."""
    from qwen_tui.conversation import GenerationSettings
    from qwen_tui.engine.base import TextChunk

    settings = GenerationSettings(temperature=0, max_new_tokens=max_new_tokens)
    cancel, pieces = threading.Event(), []
    for event in engine.generate(messages, settings.with_changes(repetition_penalty=1.0), cancel):
        if not isinstance(event, TextChunk):
            return "".join(pieces), event.stats
        pieces.append(event.text)
        if stop_after and len(pieces) >= stop_after:
            cancel.set()
    raise AssertionError("no ReplyDone")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--turns", type=int, default=4, help="earlier turns (0-8)")
    parser.add_argument("--repeats", type=int, default=3)
    args = parser.parse_args()

    from benchmarks.models import bench_paths, cache_root
    from qwen_tui.conversation import Message
    from qwen_tui.engine.loader import load_engine
    from qwen_tui.model_setup.importer import ensure_demo_model

    engine = load_engine(ensure_demo_model(bench_paths(cache_root() / "demo")), threads=2)
    conversation = [Message("system", "You are a helpful assistant.")]
    for topic in TOPICS[: args.turns]:
        conversation.append(Message("user", f"Tell me about {topic}."))
        conversation.append(Message("assistant", reply(engine, conversation, 150)[0]))
    conversation.append(Message("user", "Write a long story about a cat who learns to code."))
    rows = []
    for _ in range(args.repeats):
        engine.cache.reset()
        text, _stats = reply(engine, conversation, 300, stop_after=120)
        continued = [*conversation, Message("assistant", text.rstrip(" "))]
        more, warm = reply(engine, continued, 4)
        engine.cache.reset()
        again, cold = reply(engine, continued, 4)
        assert more == again, "the cache changed what the model computes"
        rows.append(
            {
                "prompt_tokens": warm.prompt_tokens,
                "reused_tokens": warm.reused_tokens,
                "ttft_reused_s": warm.ttft_s,
                "ttft_cold_s": cold.ttft_s,
            }
        )
    warm_s = statistics.median(r["ttft_reused_s"] for r in rows)
    cold_s = statistics.median(r["ttft_cold_s"] for r in rows)
    print("| prompt tokens | reused | TTFT continue, cache kept | TTFT cold | ratio |")
    print("|---|---|---|---|---|")
    print(
        f"| {rows[-1]['prompt_tokens']} | {rows[-1]['reused_tokens']} | {warm_s * 1000:.0f} ms "
        f"| {cold_s * 1000:.0f} ms | {cold_s / warm_s:.0f}x |"
    )
    print(f"load average {os.getloadavg()[0]:.2f}; kernel {engine.info.kernel}")
    report = {
        "model": engine.info.name,
        "turns": args.turns,
        "runs": rows,
        "ttft_reused_s": warm_s,
        "ttft_cold_s": cold_s,
        "load": os.getloadavg(),
    }
    out = ROOT / "benchmarks" / "results" / f"continue_ttft-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
