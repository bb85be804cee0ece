"""`qwen-tui bench`: how fast an installed model runs on this machine.

Load time, decode tok/s of a fixed-length reply, TTFT and prefill tok/s of fresh prompts and the
process's peak RSS, in this one process, through the same `engine.generate` the app uses. It
needs nothing but the installed package: the full harness (baselines such as llama.cpp,
alternated repeats, the UI's overhead, results in JSON under benchmarks/results/) lives in the
source checkout's benchmarks/ and runs with `make bench`.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import replace
from typing import Any

from qwen_tui.cli_settings import load_settings
from qwen_tui.commands.model_choice import load_model, resolve_model
from qwen_tui.config import RemoteConfig
from qwen_tui.engine import measure
from qwen_tui.exit_codes import EXIT_FAILED, EXIT_OK, EXIT_USAGE, CliError
from qwen_tui.visible_text import terminal_line

FULL = {"decode_tokens": 128, "prompt_lengths": (32, 512)}
QUICK = {"decode_tokens": 32, "prompt_lengths": (32,)}


def run(args: argparse.Namespace) -> int:
    """Measure the model `args.model` names (default: the configured one) and print it."""
    config, paths = load_settings()
    if args.threads:
        config = replace(config, model=replace(config.model, threads=args.threads))
    model = resolve_model(args.model, config, paths)
    if isinstance(model, RemoteConfig):
        raise CliError(
            f"bench measures models installed here; {model.name} is served elsewhere",
            EXIT_USAGE,
        )
    plan = QUICK if args.quick else FULL
    say(f"loading {model.name}")
    started = time.perf_counter()
    engine = load_model(model, config)
    report: dict[str, Any] = {
        "model": model.name,
        "quick": args.quick,
        "load_s": time.perf_counter() - started,
        "kernel": engine.info.kernel,
        "threads": engine.threads,
        "decode_tokens": plan["decode_tokens"],
    }
    try:
        report |= measure_engine(engine, plan["decode_tokens"], plan["prompt_lengths"])
    except RuntimeError as error:
        raise CliError(f"bench: {error}", EXIT_FAILED) from None
    report["peak_rss_mb"] = measure.peak_rss_mb()
    print(json.dumps(report, sort_keys=True) if args.json else format_report(report))
    return EXIT_OK


def measure_engine(engine: Any, decode_tokens: int, lengths: tuple[int, ...]) -> dict[str, Any]:
    """Decode rate, then TTFT and prefill rate per prompt length (JSON keys as `make bench`)."""
    say("warming up")
    measure.warm_up(engine)
    say(f"decode: a {decode_tokens}-token reply")
    result: dict[str, Any] = measure.engine_decode(engine, decode_tokens, seed=1)
    for n in lengths:
        say(f"prefill: a fresh {n}-token prompt")
        for key, value in measure.engine_prefill(engine, n, seed=1000 + n).items():
            result.setdefault(key, {})[str(n)] = value
    return result


def format_report(report: dict[str, Any]) -> str:
    rows = [("load s", report["load_s"])]
    rows.append((f"decode tok/s ({report['decode_tokens']}-token reply)", report["decode_tok_s"]))
    for n, ttft in report["ttft_s"].items():
        rows += [(f"TTFT s @{n}", ttft), (f"prefill tok/s @{n}", report["prefill_tok_s"][n])]
    rows.append(("peak RSS MB", report["peak_rss_mb"]))
    name, kernel, threads = terminal_line(report["model"]), report["kernel"], report["threads"]
    title = f"{name}: bigdl kernel {kernel}, {threads} threads"
    width = max(len(label) for label, _ in rows)
    lines = [f"{label:<{width}}  {value:>8.{2 if value < 10 else 1}f}" for label, value in rows]
    return "\n".join([title, *lines])


def say(text: str) -> None:
    print(f"bench: {terminal_line(text)}", file=sys.stderr, flush=True)
