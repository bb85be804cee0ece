"""What each benchmark process measures; `benchmarks.processes.run_worker` starts one per repeat.

    python -m benchmarks.workers KIND SPEC_JSON

prints one `BENCH-RESULT {...}` line. KIND is `engine` (qwen-tui through `LocalEngine`), `ui`
(the same reply through the Textual app, against the engine alone), `quantize` (our own setup
code), or a baseline's or a model builder's worker (`baselines.WORKERS`, `models.WORKERS`).
The measurements themselves are the package's (`qwen_tui.engine.measure`), the same ones
`qwen-tui bench` takes.
"""

from __future__ import annotations

import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from benchmarks import baselines, models
from benchmarks.processes import RESULT_MARK
from qwen_tui.engine.measure import (
    chat_of_length,
    engine_decode,
    engine_prefill,
    eos_ignored,
    filler_text,
    fixed_length,
    fresh_system,
    greedy,
    peak_rss_mb,
    reply,
    warm_up,
)


def conversation(engine: Any, turns: int, turn_tokens: int, seed: int) -> dict[str, Any]:
    """A real chat with one engine, turn after turn: each request carries the whole history
    (as the app sends it), so whatever the engine reuses between turns shows in the TTFT."""
    from qwen_tui.conversation import Message

    # Mostly user text: TTFT depends on what the history holds, not on who wrote it, and
    # short replies keep the run inside `make bench`'s 10-minute budget.
    user_words = max(1, turn_tokens * 9 // 10)
    reply_tokens = max(1, turn_tokens - user_words)
    messages = [Message("system", fresh_system(seed))]
    ttfts, prompts, reused = [], [], []
    for turn in range(turns):
        messages.append(Message("user", filler_text(user_words, seed + turn)))
        text, stats = reply(engine, messages, reply_tokens)
        messages.append(Message("assistant", text))
        ttfts.append(stats.ttft_s)
        prompts.append(stats.prompt_tokens)
        reused.append(stats.reused_tokens)
    return {
        "ttft_turn1_s": ttfts[0],
        f"ttft_turn{turns}_s": ttfts[-1],
        "turns": {"ttft_s": ttfts, "prompt_tokens": prompts, "reused_tokens": reused},
    }


def load_installed(model_dir: str, threads: int) -> tuple[Any, float]:
    from qwen_tui.engine.loader import load_engine
    from qwen_tui.model_setup.installed import InstalledModel, read_manifest

    path = Path(model_dir)
    started = time.perf_counter()
    engine = load_engine(InstalledModel(path, read_manifest(path)), threads=threads)
    return engine, time.perf_counter() - started


class Attempts:
    """Runs measurements; one that fails is recorded and the others still run."""

    def __init__(self) -> None:
        self.errors: dict[str, str] = {}

    def run(self, name: str, measure: Callable[[], dict[str, Any]]) -> dict[str, Any]:
        try:
            return measure()
        except Exception as error:  # the report shows it; the rest of the run still counts
            self.errors[name] = f"{type(error).__name__}: {error}"
            return {}


def engine_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """One repeat for qwen-tui: load, decode, prefill/TTFT per length, a conversation."""
    engine, load_s = load_installed(spec["model_dir"], spec["threads"])
    seed, attempts = 1000 * spec["repeat"], Attempts()
    result: dict[str, Any] = {"load_s": load_s, "kernel": engine.info.kernel}
    attempts.run("warm_up", lambda: warm_up(engine) or {})
    tokens = spec["decode_tokens"]
    result |= attempts.run("decode_tok_s", lambda: engine_decode(engine, tokens, seed))
    for n in spec["prompt_lengths"]:
        measured = attempts.run(f"ttft_s.{n}", lambda n=n: engine_prefill(engine, n, seed + n))
        for key, value in measured.items():
            result.setdefault(key, {})[str(n)] = value
    result |= attempts.run(
        "turns", lambda: conversation(engine, spec["turns"], spec["turn_tokens"], seed + 7)
    )
    return result | {"peak_rss_mb": peak_rss_mb(), "errors": attempts.errors}


# ---------------------------------------------------------------------------- through the UI


async def ui_reply(app: Any, text: str, timeout: float = 600) -> Any:
    """Send `text` as the user would (a submitted prompt) and wait for the finished reply."""
    import asyncio

    from qwen_tui.widgets.prompt_input import PromptInput

    async with app.run_test(size=(120, 40)):
        deadline = time.monotonic() + timeout
        while app.model_state != "ready" or app.chat_screen is None:
            if app.model_state == "error" or time.monotonic() > deadline:
                raise RuntimeError(f"the app did not load the model ({app.model_state})")
            await asyncio.sleep(0.05)
        screen = app.chat_screen
        screen.prompt.set_prompt(text)
        screen.prompt.post_message(PromptInput.Submitted(screen.prompt, text))
        # Partial saves give the streaming message interim stats: done is when the screen
        # no longer streams and the last message holds the final ones.
        while screen.generating or not (
            screen.session.messages and screen.session.messages[-1].stats
        ):
            if time.monotonic() > deadline:
                raise RuntimeError("the app's reply did not finish")
            await asyncio.sleep(0.05)
        return screen.session.messages[-1].stats


def ui_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Decode tok/s of fixed-length replies through the app and through the engine alone,
    alternated in one process (same loaded model, same conditions)."""
    import asyncio
    import tempfile

    from qwen_tui.app import QwenTuiApp
    from qwen_tui.config import Config, ModelConfig
    from qwen_tui.paths import Paths

    engine, _ = load_installed(spec["model_dir"], spec["threads"])
    tokens = spec["decode_tokens"]
    config = Config(model=ModelConfig(threads=engine.threads), generation=greedy(tokens))
    ui_rates, engine_rates = [], []
    with tempfile.TemporaryDirectory(prefix="qwen-tui-bench-ui-") as home:
        paths = Paths(Path(home) / "c.toml", Path(home) / "data", Path(home) / "s", Path(home))
        paths.models_dir.mkdir(parents=True)
        (paths.models_dir / engine.info.name).symlink_to(Path(spec["model_dir"]).resolve())
        warm_up(engine)
        for i in range(spec["repeats"]):
            with eos_ignored(engine):
                alone = chat_of_length(engine, 40, 5000 + i, config.system_prompt)
                engine_rates.append(fixed_length(reply(engine, alone, tokens)[1], tokens))
                app = QwenTuiApp(
                    config, paths, engine_factory=lambda _model: engine, new_session=True
                )
                stats = asyncio.run(ui_reply(app, filler_text(40, 6000 + i)))
                ui_rates.append(fixed_length(stats, tokens))
    return {"ui_decode_tok_s": ui_rates, "engine_decode_tok_s": engine_rates}


def quantize_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """Quantize with our own setup code; the caller ran us fresh, so RSS is quantize's own."""
    from qwen_tui.model_setup.importer import ensure_demo_model
    from qwen_tui.model_setup.quantize import quantize_model
    from qwen_tui.paths import Paths

    home = Path(spec["home"])
    paths = Paths(home / "config.toml", home / "data", home / "state", home / "cache")
    started = time.perf_counter()
    if spec["name"] == "demo":
        ensure_demo_model(paths)  # what the app does: GGUF -> checkpoint -> quantize
    else:
        source = Path(spec["checkpoint"])
        quantize_model(source, paths.models_dir, name=spec["name"], source=str(source))
    return {"quantize_s": time.perf_counter() - started, "quantize_peak_rss_mb": peak_rss_mb()}


WORKERS: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
    "engine": engine_worker,
    "ui": ui_worker,
    "quantize": quantize_worker,
    **models.WORKERS,
    **baselines.WORKERS,
}


def main(argv: list[str]) -> int:
    kind, spec_json = argv
    result = WORKERS[kind](json.loads(spec_json))
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
