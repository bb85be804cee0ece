"""`qwen-tui bench` and `make bench`: how fast qwen-tui is, against baselines in the same run.

What is measured, each in a fresh child process per repeat (load time and peak RSS are
process-level), medians of the repeats with their spread:

- model level (the loaded transformers model, as `LocalEngine` holds it): decode tok/s of a
  fixed-length greedy reply (`min_new_tokens` masks the end tokens, so EOS never cuts it short)
  and the first-token time of raw n-token prompts, from which prefill tok/s = n / time;
- engine level (what users feel, through `LocalEngine.generate`): TTFT of n-token chat prompts,
  and TTFT of turn 1 and turn 10 of one real conversation held turn after turn with the same
  engine (so any reuse of the KV cache between turns shows);
- the same decode through the Textual app driven headless (`run_test`), against the engine
  alone in the same process: the UI's overhead;
- load time, peak RSS, and (when the model is built) quantize time and peak RAM.

Baselines on the same checkpoint: transformers bf16 and llama.cpp (GGUF Q4_0), see
`benchmarks/baselines.py`. The models come from `benchmarks/models.py`: both live in the source
checkout, not in the installed package, so `qwen-tui bench` on an installed copy measures
installed models without baselines.

The parent process never imports torch: it only plans, starts workers and reports.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

PROMPT_LENGTHS = (32, 128, 512, 1024)
QUICK_PROMPT_LENGTHS = (32, 512)
BASELINES = ("llamacpp", "hf")
BASELINE_TITLES = {"llamacpp": "llama.cpp Q4_0", "hf": "transformers bf16"}
RESULT_MARK = "BENCH-RESULT "
"""Prefix of the one line a worker prints its JSON on (libraries print to stdout too)."""

# Targets of the performance issue, checked on the 1.8B model (same run, same model).
TARGETS: dict[str, tuple[str, float]] = {
    "decode_tok_s": (">=", 25.0),
    "decode_vs_llamacpp": (">=", 0.75),
    "prefill_tok_s.512": (">=", 100.0),
    "ttft_turn10_over_turn1": ("<=", 1.5),
    "peak_rss_mb": ("<=", 2048.0),
    "ui_overhead_pct": ("<=", 3.0),
}

# Plain words that are one token each in most BPE vocabularies: prompts of a known length.
_FILLER = (
    "the of and to in is you that it he was for on are as with his they at be this have "
    "from or one had by word but not what all were we when your can said there use an each "
    "which she do how their if will up other about out many then them these so some her "
    "would make like him into time has look two more write go see number no way could "
    "people my than first water been call who oil its now find long down day did get come "
    "made may part over new sound take only little work know place year live me back give "
    "most very after thing our just name good sentence man think say great where help "
    "through much before line right too mean old any same tell boy follow came want show "
    "also around form three"
)
FILLER_WORDS = tuple(_FILLER.split())


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


# ---------------------------------------------------------------------------- prompts


def prompt_ids(length: int, seed: int, vocab_size: int) -> list[int]:
    """`length` token ids of ordinary (non-special) tokens, the same for every runner."""
    rng = random.Random(seed)
    high = min(vocab_size, 30_000)  # below every special/added token of our models
    return [rng.randrange(100, high) for _ in range(length)]


def filler_text(words: int, seed: int) -> str:
    rng = random.Random(seed)
    return " ".join(rng.choice(FILLER_WORDS) for _ in range(words)).capitalize() + "."


def chat_of_length(engine: Any, tokens: int, seed: int, system: str) -> list[Any]:
    """[system, user] whose prompt is `tokens` long (within a couple of tokens)."""
    from qwen_tui.conversation import Message

    def chat(words: int) -> list[Message]:
        return [Message("system", system), Message("user", filler_text(words, seed))]

    words = max(1, tokens - engine.count_tokens(chat(1)))
    for _ in range(4):  # filler words are ~1 token each: a couple of corrections suffice
        missing = tokens - engine.count_tokens(chat(words))
        if missing == 0:
            break
        # Half steps: in a small vocabulary a word is several tokens, full steps overshoot.
        words = max(1, words + (missing // 2 if abs(missing) > 1 else missing))
    while words > 1 and engine.count_tokens(chat(words)) > tokens:
        words -= 1  # never longer than asked: a small vocabulary makes words several tokens
    return chat(words)


# ---------------------------------------------------------------------------- engine level


class _NoStopFormat:
    """Formats prompts like `inner` but has no stop tokens: replies run to their length."""

    def __init__(self, inner: Any) -> None:
        self.inner = inner
        self.stop_token_ids: list[int] = []

    def encode(self, messages: Any) -> list[int]:
        return self.inner.encode(messages)


@contextmanager
def eos_ignored(engine: Any) -> Iterator[None]:
    """Fixed-length replies through the engine's own generation path.

    The Engine protocol has no "ignore EOS" switch; LocalEngine takes its stop tokens from
    its prompt format, so a format without any makes every reply run to max_new_tokens.
    """
    original = engine.format
    engine.format = _NoStopFormat(original)
    try:
        yield
    finally:
        engine.format = original


def greedy(max_new_tokens: int) -> Any:
    from qwen_tui.conversation import GenerationSettings

    return GenerationSettings(temperature=0, repetition_penalty=1.0, max_new_tokens=max_new_tokens)


def reply(engine: Any, messages: list[Any], max_new_tokens: int) -> tuple[str, Any]:
    """One reply through `engine.generate`, as the app and `ask` get it: (text, stats)."""
    from qwen_tui.engine.base import ReplyDone, TextChunk

    text, stats = [], None
    for event in engine.generate(messages, greedy(max_new_tokens)):
        if isinstance(event, TextChunk):
            text.append(event.text)
        elif isinstance(event, ReplyDone):
            stats = event.stats
    if stats is None or stats.error:
        raise RuntimeError(f"generation failed: {stats and stats.error}")
    return "".join(text), stats


def fresh_system(seed: int) -> str:
    """A system prompt no earlier request had: a cache can reuse only the role marker."""
    return f"Session {seed}: you are a helpful assistant."


def fixed_length(stats: Any, new_tokens: int) -> float:
    """The decode rate of a reply that had to be exactly `new_tokens` long."""
    if stats.generated_tokens != new_tokens or stats.decode_tok_s is None:
        raise RuntimeError(f"asked for {new_tokens} tokens, got {stats.generated_tokens}")
    return stats.decode_tok_s


def engine_decode(engine: Any, new_tokens: int, seed: int) -> dict[str, Any]:
    """Decode tok/s of a fixed-length reply to a 32-token chat."""
    messages = chat_of_length(engine, 32, seed, fresh_system(seed))
    with eos_ignored(engine):
        _, stats = reply(engine, messages, new_tokens)
    return {"decode_tok_s": fixed_length(stats, new_tokens)}


def engine_prefill(engine: Any, tokens: int, seed: int) -> dict[str, Any]:
    """TTFT of a fresh `tokens`-long chat; prefill tok/s = tokens computed / TTFT.

    TTFT also holds formatting the prompt and picking the first token: milliseconds.
    """
    messages = chat_of_length(engine, tokens, seed, fresh_system(seed))
    _, stats = reply(engine, messages, 1)
    computed = stats.prompt_tokens - getattr(stats, "reused_tokens", 0)
    return {
        "ttft_s": stats.ttft_s,
        "prefill_tok_s": computed / stats.ttft_s,
        "prompt_tokens": stats.prompt_tokens,
    }


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
        reused.append(getattr(stats, "reused_tokens", 0))
    return {
        "ttft_turn1_s": ttfts[0],
        f"ttft_turn{turns}_s": ttfts[-1],
        "turns": {"ttft_s": ttfts, "prompt_tokens": prompts, "reused_tokens": reused},
    }


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far (ru_maxrss is in KiB on Linux)."""
    import resource

    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def load_installed(model_dir: str, threads: int) -> tuple[Any, float]:
    from qwen_tui.engine.loader import load_engine
    from qwen_tui.model_setup.installed import InstalledModel, read_manifest

    path = Path(model_dir)
    started = time.perf_counter()
    engine = load_engine(InstalledModel(path, read_manifest(path)), threads=threads)
    return engine, time.perf_counter() - started


def warm_up(engine: Any) -> None:
    """First calls pay for thread pools and lazy set-up; no measurement includes them."""
    reply(engine, chat_of_length(engine, 24, -1, fresh_system(-1)), 4)


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


# ---------------------------------------------------------------------------- processes


def run_worker(kind: str, spec: dict[str, Any], timeout: float = 1800) -> dict[str, Any]:
    """Run one worker in a fresh Python process and return its JSON result."""
    command = [sys.executable, "-m", "qwen_tui.bench", "--worker", kind, json.dumps(spec)]
    env = {**os.environ, "PYTHONPATH": _pythonpath()}
    started = time.perf_counter()
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=timeout, check=False, env=env
    )
    lines = [line for line in done.stdout.splitlines() if line.startswith(RESULT_MARK)]
    if done.returncode != 0 or not lines:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-12:])
        raise RuntimeError(
            f"{kind} worker failed (exit {done.returncode}):\n{tail}{_hint(kind, done)}"
        )
    result = json.loads(lines[-1].removeprefix(RESULT_MARK))
    return result | {"worker_wall_s": time.perf_counter() - started}


def _hint(kind: str, done: subprocess.CompletedProcess[str]) -> str:
    from qwen_tui.engine.cpu import cpu_info

    if kind == "llamacpp" and done.returncode == -11 and "amx_int8" in cpu_info().flags:
        return (
            "\nllama.cpp's AMX kernels crash on some Sapphire Rapids machines "
            "(ggml-org/llama.cpp#20824): rebuild llama-cpp-python without AMX, see "
            "benchmarks/README.md"
        )
    return ""


def _pythonpath() -> str:
    """Children must import this checkout's qwen_tui and benchmarks, whatever the cwd."""
    parts = [str(Path(__file__).resolve().parents[1])]
    if os.environ.get("PYTHONPATH"):
        parts.append(os.environ["PYTHONPATH"])
    return os.pathsep.join(parts)


def worker_main(kind: str, spec_json: str) -> int:
    spec = json.loads(spec_json)
    workers: dict[str, Callable[[dict[str, Any]], dict[str, Any]]] = {
        "engine": engine_worker,
        "ui": ui_worker,
        "quantize": quantize_worker,
    }
    if kind not in workers:
        modules = bench_modules()
        workers |= modules.models.WORKERS | modules.baselines.WORKERS
    result = workers[kind](spec)
    print(RESULT_MARK + json.dumps(result), flush=True)
    return 0


@dataclass
class BenchModules:
    models: Any
    baselines: Any


def bench_modules() -> BenchModules:
    """benchmarks/models.py and baselines.py of the source checkout this package runs from."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "benchmarks" / "models.py").is_file():
        raise FileNotFoundError(
            "benchmark models and baselines live in qwen-tui's source checkout "
            "(benchmarks/); here only installed models can be measured: --model NAME"
        )
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    import importlib

    models = importlib.import_module("benchmarks.models")
    return BenchModules(models, importlib.import_module("benchmarks.baselines"))


# ---------------------------------------------------------------------------- summaries


@dataclass
class Metrics:
    """Samples per metric name (`prefill_tok_s.512`); medians and spreads come from them."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                self.add(f"{name}.{key}", inner)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self.samples.setdefault(name, []).append(float(value))

    def median(self, name: str) -> float | None:
        values = self.samples.get(name)
        return statistics.median(values) if values else None

    def spread(self) -> dict[str, dict[str, float]]:
        return {
            name: {"min": min(v), "max": max(v), "n": len(v)}
            for name, v in sorted(self.samples.items())
        }

    def nested(self, names: Iterable[str]) -> dict[str, Any]:
        """Medians, with `a.b` names folded into {"a": {"b": ...}} as the JSON keys promise."""
        out: dict[str, Any] = {}
        for name in names:
            for sample_name in sorted(self.samples):
                head, _, tail = sample_name.partition(".")
                if head != name:
                    continue
                if tail:
                    out.setdefault(head, {})[tail] = self.median(sample_name)
                else:
                    out[head] = self.median(sample_name)
        return out


ENGINE_KEYS = ("decode_tok_s", "prefill_tok_s", "ttft_s", "ttft_turn1_s", "peak_rss_mb", "load_s")
BASELINE_KEYS = ("decode_tok_s", "prefill_tok_s", "ttft_s", "peak_rss_mb", "load_s")


def summarize(runs: list[dict[str, Any]], keys: Iterable[str]) -> dict[str, Any]:
    metrics = Metrics()
    for run in runs:
        for key, value in run.items():
            metrics.add(key, value)
    keys = tuple(keys)
    summary = {key: None for key in keys} | metrics.nested(keys)
    summary["spread"] = metrics.spread()
    summary["errors"] = {k: v for run in runs for k, v in (run.get("errors") or {}).items()}
    summary["runs"] = runs
    return summary


def ui_summary(run: dict[str, Any]) -> dict[str, Any]:
    ui = statistics.median(run["ui_decode_tok_s"])
    alone = statistics.median(run["engine_decode_tok_s"])
    return {
        "ui_decode_tok_s": ui,
        "engine_decode_tok_s": alone,
        "ui_overhead_pct": 100.0 * (1.0 - ui / alone),
        "ui_runs": run,
    }


def comparisons(result: dict[str, Any]) -> dict[str, float | None]:
    """Ratios qwen-tui / llama.cpp of every shared key (higher is better for tok/s only)."""
    base = result.get("llamacpp") or {}
    ratios: dict[str, float | None] = {}
    for key in BASELINE_KEYS:
        ours, theirs = result.get(key), base.get(key)
        if isinstance(ours, dict) and isinstance(theirs, dict):
            for n in ours:
                ratios[f"{key}.{n}"] = _ratio(ours[n], theirs.get(n))
        else:
            ratios[key] = _ratio(ours, theirs)
    return ratios


def _ratio(ours: Any, theirs: Any) -> float | None:
    if isinstance(ours, int | float) and isinstance(theirs, int | float) and theirs:
        return ours / theirs
    return None


def target_checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    turn1, turn10 = result.get("ttft_turn1_s"), result.get("ttft_turn10_s")
    values = {
        "decode_tok_s": result.get("decode_tok_s"),
        "decode_vs_llamacpp": result.get("vs_llamacpp", {}).get("decode_tok_s"),
        "prefill_tok_s.512": (result.get("prefill_tok_s") or {}).get("512"),
        "ttft_turn10_over_turn1": _ratio(turn10, turn1),
        "peak_rss_mb": result.get("peak_rss_mb"),
        "ui_overhead_pct": result.get("ui_overhead_pct"),
    }
    checks = {}
    for name, (op, limit) in TARGETS.items():
        value = values[name]
        ok = None if value is None else (value >= limit if op == ">=" else value <= limit)
        checks[name] = {"value": value, "target": f"{op} {limit:g}", "ok": ok}
    return checks


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
    baselines = plan.baselines if compared else ()
    baseline_specs, errors = prepare_baselines(target, baselines, base_spec, say)
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
            specs[kind] = base_spec | bench_modules().baselines.prepare(kind, target, say)
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
    try:
        models = bench_modules().models
    except FileNotFoundError:
        models = None
    if models is not None and name in models.MODEL_NAMES:
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
        baselines = () if args.quick else BASELINES
    else:
        baselines = tuple(b for b in args.baseline.split(",") if b and b != "none")
    unknown = set(baselines) - set(BASELINES)
    if unknown:
        raise SystemExit(f"qwen-tui bench: unknown baseline {', '.join(sorted(unknown))}")
    quick = args.quick
    return BenchPlan(
        models=models,
        baselines=baselines,
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
    """benchmarks/models.py decides (its headline needs Qwen's code beside the checkout)."""
    try:
        return tuple(bench_modules().models.default_models(quick))
    except FileNotFoundError as error:
        raise SystemExit(f"qwen-tui bench: {error}") from None


# ---------------------------------------------------------------------------- output


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if abs(value) < 10 and digits < 3:
        return f"{value:.{digits + 1}f}"
    return f"{value:.{digits}f}"


def _spread_pct(result: dict[str, Any], name: str) -> str:
    spread = (result.get("spread") or {}).get(name)
    if not spread or spread["n"] < 2:
        return ""
    values = result["spread"][name]
    middle = (values["min"] + values["max"]) / 2 or 1
    return f" ±{50 * (values['max'] - values['min']) / middle:.0f}%"


def table_rows(lengths: Iterable[int], turns: int) -> list[tuple[str, str]]:
    """(label, metric name) rows of the table, `name` as in the spread dict."""
    rows = [("decode tok/s", "decode_tok_s")]
    rows += [(f"prefill tok/s @{n}", f"prefill_tok_s.{n}") for n in lengths]
    rows += [(f"TTFT s @{n}", f"ttft_s.{n}") for n in lengths]
    rows += [
        ("TTFT turn 1 s", "ttft_turn1_s"),
        (f"TTFT turn {turns} s", f"ttft_turn{turns}_s"),
        ("peak RSS MB", "peak_rss_mb"),
        ("load s", "load_s"),
        ("quantize s", "quantize_s"),
        ("quantize peak RSS MB", "quantize_peak_rss_mb"),
        ("UI decode tok/s", "ui_decode_tok_s"),
        ("UI overhead %", "ui_overhead_pct"),
    ]
    return rows


def _value(result: dict[str, Any], name: str) -> Any:
    head, _, tail = name.partition(".")
    value = result.get(head)
    return value.get(tail) if tail and isinstance(value, dict) else value


def format_table(name: str, result: dict[str, Any], plan: dict[str, Any]) -> str:
    """A Markdown table: qwen-tui, each baseline, and qwen-tui ÷ llama.cpp."""
    kinds = [k for k in BASELINES if isinstance(result.get(k), dict)]
    header = ["metric", "qwen-tui", *(BASELINE_TITLES[k] for k in kinds), "qwen-tui ÷ llama.cpp"]
    spent = ", ".join(f"{k} {v:.0f} s" for k, v in (result.get("worker_time_s") or {}).items())
    lines = [f"**{name}** (bigdl kernel {result.get('kernel') or '?'}; time: {spent})", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, metric in table_rows(plan["prompt_lengths"], plan["turns"]):
        cells = [label, _fmt(_value(result, metric)) + _spread_pct(result, metric)]
        for kind in kinds:
            other = result[kind]
            value = "n/a" if "error" in other else _fmt(_value(other, metric))
            cells.append(value + _spread_pct(other, metric))
        ratio = (result.get("vs_llamacpp") or {}).get(metric)
        cells.append("n/a" if ratio is None else f"{ratio:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    problems = [(BASELINE_TITLES[k], result[k]["error"]) for k in kinds if "error" in result[k]]
    for kind in ("", *kinds):
        errors = (result[kind] if kind else result).get("errors") or {}
        title = BASELINE_TITLES.get(kind, "qwen-tui")
        problems += [(f"{title} {metric}", error) for metric, error in errors.items()]
    if result.get("ui_error"):
        problems.append(("UI overhead", result["ui_error"]))
    if problems:
        lines.append("")
    lines += [f"- failed: {what}: {error}" for what, error in problems]
    return "\n".join(lines)


def format_targets(result: dict[str, Any]) -> str:
    lines = ["| target | value | limit | met |", "|---|---|---|---|"]
    for name, check in (result.get("targets") or {}).items():
        value = _fmt(check["value"], 2)
        lines.append(f"| {name} | {value} | {check['target']} | {_fmt(check['ok'])} |")
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    machine = report["machine"]
    parts = [
        f"Machine: {machine['cpu']} ({machine['vendor']}), {machine['physical_cores']} cores, "
        f"{machine['ram_gb']} GB RAM; bigdl kernel {machine.get('kernel') or '?'}, "
        f"{machine.get('threads')} threads; load average {machine['load_average'][0]:.2f} "
        f"at start, {machine.get('load_average_end', [0])[0]:.2f} at end",
        f"Flags: {' '.join(machine['flags'])}",
        f"Command: `{report['command']}` ({report['plan']['repeats']} repeats, "
        f"medians ± half the min-max spread; wall time {report['wall_s']:.0f} s)",
    ]
    for name, result in report["models"].items():
        parts += ["", format_table(name, result, report["plan"])]
    parts += ["", f"Targets ({report['model']}):", "", format_targets(report)]
    return "\n".join(parts)


def save_report(report: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    quick = "-quick" if report["plan"]["quick"] else ""
    path = results_dir / f"{stamp}-{report['model']}{quick}.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def default_results_dir() -> Path:
    root = Path(__file__).resolve().parents[1]
    if (root / "benchmarks").is_dir():
        return root / "benchmarks" / "results"
    from qwen_tui.paths import get_paths

    return get_paths().state_dir / "bench"


DOCS_START, DOCS_END = "<!-- bench:latest:start -->", "<!-- bench:latest:end -->"


def update_docs(report: dict[str, Any], docs: Path) -> None:
    """Replace the latest-run section of docs/BENCHMARKS.md with this run's table."""
    text = docs.read_text(encoding="utf-8")
    if DOCS_START not in text or DOCS_END not in text:
        raise ValueError(f"{docs} has no {DOCS_START} ... {DOCS_END} section")
    before, rest = text.split(DOCS_START, 1)
    _, after = rest.split(DOCS_END, 1)
    body = f"Run {report['date']}.\n\n{format_report(report)}\n"
    docs.write_text(f"{before}{DOCS_START}\n{body}{DOCS_END}{after}", encoding="utf-8")


# ---------------------------------------------------------------------------- command line


def build_parser(prog: str = "qwen-tui bench") -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=prog, description=__doc__.split("\n\n")[0])
    parser.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    parser.add_argument("--quick", action="store_true", help="1 repeat, 2 lengths, no UI")
    parser.add_argument(
        "--model",
        action="append",
        metavar="NAME",
        help="qwen-1.8b-random, demo or an installed model (repeatable; default: both)",
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
    parser.add_argument("--worker", nargs=2, metavar=("KIND", "SPEC"), help=argparse.SUPPRESS)
    return parser


def main(
    argv: list[str] | None = None, *, prog: str = "qwen-tui bench", command: str | None = None
) -> int:
    """`command`: how the user started it, for the report (default: prog and argv)."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(prog).parse_args(argv)
    if args.worker:
        return worker_main(*args.worker)
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
