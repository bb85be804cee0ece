"""`make bench`: how fast qwen-tui is, against baselines in the same run.

What is measured, each in a fresh child process per repeat (load time and peak RSS are
process-level; `processes.run_worker`, `workers.py`), medians of the repeats with their spread:

- engine level (what users feel, through `LocalEngine.generate`, the measurements of
  `qwen_tui.engine.measure` that `qwen-tui bench` also takes): decode tok/s of a fixed-length
  reply, TTFT of n-token chat prompts, and TTFT of turn 1 and turn 10 of one real conversation
  held turn after turn with the same engine (so any reuse of the KV cache between turns shows);
- the same decode through the Textual app driven headless (`run_test`), against the engine
  alone in the same process: the UI's overhead;
- load time, peak RSS, and (when the model is built) quantize time and peak RAM.

Baselines on the same checkpoint: transformers bf16 and llama.cpp (GGUF Q4_0), see
`baselines.py`; the models come from `models.py`. The parent process never imports torch: it
only plans, starts workers and reports (`report.py`).
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import baselines, models
from benchmarks.processes import run_worker
from benchmarks.report import (
    BASELINE_KEYS,
    BASELINES,
    ENGINE_KEYS,
    comparisons,
    default_results_dir,
    format_report,
    save_report,
    summarize,
    target_checks,
    ui_summary,
    update_docs,
)

PROMPT_LENGTHS = (32, 128, 512, 1024)
QUICK_PROMPT_LENGTHS = (32, 512)


@dataclass(frozen=True)
class BenchPlan:
    """What one run measures (from the command line; recorded in the report)."""

    models: tuple[str, ...]
    baselines: tuple[str, ...]
    repeats: int = 3
    decode_tokens: int = 128
    prompt_lengths: tuple[int, ...] = PROMPT_LENGTHS
    turns: int = 10
    turn_tokens: int = 100
    """Tokens each conversation turn adds: the user's message plus the reply."""
    ui: bool = True
    compared: tuple[str, ...] = ()
    """Models that get the baselines and the UI run (by default the first only: the time
    budget of `make bench`; the demo model's own numbers are cheap, its baselines not)."""
    threads: int = 0
    quick: bool = False
    rebuild: bool = False


# ---------------------------------------------------------------------------- running


def measure_model(target: Any, plan: BenchPlan, say: Callable[[str], None]) -> dict[str, Any]:
    """Every measurement of one model; repeats of qwen-tui and the baselines interleave, so
    a noisy stretch of the machine hits all of them alike."""
    base_spec = {
        "threads": plan.threads,
        "decode_tokens": plan.decode_tokens,
        "prompt_lengths": list(plan.prompt_lengths),
        "turns": plan.turns,
        "turn_tokens": plan.turn_tokens,
    }
    ours_spec = base_spec | {"model_dir": str(target.installed.path)}
    compared = target.name in plan.compared
    kinds = plan.baselines if compared else ()
    baseline_specs, errors = prepare_baselines(target, kinds, base_spec, say)
    specs = {"engine": ours_spec, **baseline_specs}
    runs: dict[str, list[dict[str, Any]]] = {kind: [] for kind in specs}
    for repeat in range(plan.repeats):
        for kind, spec in specs.items():
            if kind in errors:
                continue  # a process that crashed once will crash again
            say(f"{target.name}: {kind} run {repeat + 1}/{plan.repeats}")
            try:
                runs[kind].append(run_worker(kind, spec | {"repeat": repeat}))
            except (RuntimeError, subprocess.TimeoutExpired) as error:
                errors[kind] = str(error)
                say(f"{target.name}: {kind} failed: {error}")
    if not runs["engine"]:
        raise RuntimeError(f"qwen-tui's engine could not be measured: {errors['engine']}")
    seconds = {
        kind: sum(run["worker_wall_s"] for run in kind_runs) for kind, kind_runs in runs.items()
    }
    result = summarize(runs.pop("engine"), (*ENGINE_KEYS, f"ttft_turn{plan.turns}_s"))
    if "engine" in errors:
        result["errors"]["worker"] = errors.pop("engine")
    result["kernel"] = result["runs"][0].get("kernel", "")
    result |= target.quantize
    result |= ui_overhead(ours_spec, plan, say, target.name) if compared else no_ui()
    if "ui_runs" in result:
        seconds["ui"] = result["ui_runs"]["worker_wall_s"]
    result["worker_time_s"] = seconds
    for kind, kind_runs in runs.items():
        result[kind] = (
            {"error": errors[kind]} if kind in errors else summarize(kind_runs, BASELINE_KEYS)
        )
    result["vs_llamacpp"] = comparisons(result)
    result["targets"] = target_checks(result)
    return result


def no_ui() -> dict[str, Any]:
    return {"ui_decode_tok_s": None, "ui_overhead_pct": None}


def ui_overhead(
    spec: dict[str, Any], plan: BenchPlan, say: Callable[[str], None], name: str
) -> dict[str, Any]:
    if not plan.ui:
        return no_ui()
    say(f"{name}: decode through the UI vs the engine alone")
    try:
        return ui_summary(run_worker("ui", spec | {"repeats": max(plan.repeats, 2)}))
    except (RuntimeError, subprocess.TimeoutExpired) as error:
        say(f"{name}: the UI run failed: {error}")
        return {"ui_decode_tok_s": None, "ui_overhead_pct": None, "ui_error": str(error)}


def prepare_baselines(
    target: Any, kinds: Iterable[str], base_spec: dict[str, Any], say: Callable[[str], None]
) -> tuple[dict[str, dict[str, Any]], dict[str, str]]:
    """Specs of the baselines that can run; an error in words for those that cannot."""
    specs, errors = {}, {}
    for kind in kinds:
        if target.checkpoint is None:
            errors[kind] = "no full-precision checkpoint for this model"
            continue
        try:
            specs[kind] = base_spec | baselines.prepare(kind, target, say)
        except Exception as error:  # reported in the results: the other numbers still count
            errors[kind] = f"{type(error).__name__}: {error}"
            say(f"{target.name}: {kind} baseline skipped: {errors[kind]}")
    return specs, errors


@dataclass
class InstalledTarget:
    """A user's installed model: measured without baselines (there is no checkpoint)."""

    name: str
    installed: Any
    checkpoint: None = None
    quantize: dict[str, Any] = field(default_factory=dict)


def resolve_target(name: str, plan: BenchPlan, say: Callable[[str], None]) -> Any:
    """A benchmark model (built and cached by models.py) or one installed in the user's home."""
    if name in models.MODEL_NAMES:
        return models.ensure_model(name, rebuild=plan.rebuild, say=say)
    from qwen_tui.model_setup.installed import find_installed
    from qwen_tui.paths import get_paths

    return InstalledTarget(name, find_installed(get_paths().models_dir, name))


def machine_info() -> dict[str, Any]:
    import platform
    from importlib.metadata import PackageNotFoundError, version

    from qwen_tui.engine.cpu import cpu_info

    cpu = cpu_info()
    versions = {}
    packages = ("qwen-tui", "torch", "bigdl-llm", "transformers", "textual", "llama-cpp-python")
    for package in packages:
        try:
            versions[package] = version(package)
        except PackageNotFoundError:
            versions[package] = None
    return {
        "cpu": cpu.model_name,
        "vendor": cpu.vendor,
        "flags": cpu.reported_flags(),
        "logical_cores": cpu.logical_cores,
        "physical_cores": cpu.physical_cores,
        "ram_gb": _ram_gb(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "versions": versions,
        "load_average": list(os.getloadavg()),
    }


def _ram_gb() -> float:
    import psutil

    return round(psutil.virtual_memory().total / 2**30, 1)


def run_bench(args: argparse.Namespace, say: Callable[[str], None] | None = None) -> dict:
    """Measure everything `args` asks for; returns the JSON-ready report."""
    say = say or (lambda text: print(f"bench: {text}", file=sys.stderr, flush=True))
    plan = plan_from_args(args)
    started = time.time()
    report: dict[str, Any] = {
        "schema": 1,
        "date": time.strftime("%Y-%m-%d %H:%M:%S"),
        "command": args.command_line,
        "plan": asdict(plan),
        "machine": machine_info(),
    }
    results = {}
    for name in plan.models:
        results[name] = measure_model(resolve_target(name, plan, say), plan, say)
    report["machine"]["load_average_end"] = list(os.getloadavg())
    report["machine"]["kernel"] = results[plan.models[0]].get("kernel", "")
    report["machine"]["threads"] = plan.threads
    report["wall_s"] = time.time() - started
    primary = results[plan.models[0]]
    return {"model": plan.models[0], **primary, **report, "models": results}


def plan_from_args(args: argparse.Namespace) -> BenchPlan:
    from qwen_tui.engine.cpu import default_threads

    models = tuple(args.model) if args.model else default_models(args.quick)
    if args.baseline is None:
        kinds = () if args.quick else BASELINES
    else:
        kinds = tuple(b for b in args.baseline.split(",") if b and b != "none")
    unknown = set(kinds) - set(BASELINES)
    if unknown:
        raise SystemExit(f"make bench: unknown baseline {', '.join(sorted(unknown))}")
    quick = args.quick
    return BenchPlan(
        models=models,
        baselines=kinds,
        repeats=args.repeats or (1 if quick else 3),
        decode_tokens=args.decode_tokens or 128,
        prompt_lengths=tuple(args.lengths) if args.lengths else _lengths(quick),
        turns=args.turns,
        turn_tokens=args.turn_tokens,
        ui=not args.no_ui and not quick,
        compared=models if args.model else models[:1],
        threads=args.threads or default_threads(),
        quick=quick,
        rebuild=args.rebuild,
    )


def _lengths(quick: bool) -> tuple[int, ...]:
    return QUICK_PROMPT_LENGTHS if quick else PROMPT_LENGTHS


def default_models(quick: bool) -> tuple[str, ...]:
    """models.py decides (its headline needs Qwen's code beside the checkout)."""
    return tuple(models.default_models(quick))


# ---------------------------------------------------------------------------- command line


def build_parser(prog: str = "benchmarks/run.py") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 2 lengths, no UI")
    parser.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        help="qwen-v1-1.8b-random, qwen-1.8b-random, demo or an installed model (repeatable)",
    )
    parser.add_argument(
        "--baseline",
        metavar="LIST",
        help="comma list of llamacpp,hf or none (default: both; none with --quick)",
    )
    parser.add_argument("--repeats", type=int, metavar="N", help="default 3 (1 with --quick)")
    parser.add_argument("--decode-tokens", type=int, metavar="N", help="default 128")
    parser.add_argument("--lengths", type=int, nargs="+", metavar="N", help="prompt lengths")
    parser.add_argument("--turns", type=int, default=10, help="conversation turns (10)")
    parser.add_argument("--turn-tokens", type=int, default=100, help="tokens per turn (100)")
    parser.add_argument("--threads", type=int, default=0, help="default: physical cores")
    parser.add_argument("--no-ui", action="store_true", help="skip the UI overhead run")
    parser.add_argument("--rebuild", action="store_true", help="quantize again (re-measures it)")
    parser.add_argument("--results-dir", type=Path, help="default: benchmarks/results/")
    parser.add_argument("--docs", type=Path, help="also update this BENCHMARKS.md")
    return parser


def main(
    argv: list[str] | None = None, *, prog: str = "benchmarks/run.py", command: str | None = None
) -> int:
    """`command`: how the user started it, for the report (default: prog and argv)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    args.command_line = command or " ".join([prog, *argv])
    try:
        report = run_bench(args)
    except (LookupError, FileNotFoundError) as error:  # no such model: say so, no traceback
        print(f"{prog}: {error}", file=sys.stderr)
        return 3
    path = save_report(report, args.results_dir or default_results_dir())
    if args.docs:
        update_docs(report, args.docs)
    if args.json:
        print(json.dumps(report, sort_keys=True))
    else:
        print(format_report(report))
        print(f"\nJSON: {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
