"""Each engine optimisation on and off, in one run, on the 1.8B-shape model.

    python benchmarks/ablations.py [--repeats 2] [--docs docs/BENCHMARKS.md]

`make bench` measures qwen-tui as it is; this measures what each change is worth, so the
before/after figures in docs/BENCHMARKS.md can be re-measured on any machine. Every variant
runs in a fresh process (the kernel library is chosen once per process, and peak RSS is
per process), the variants of one change alternate, and medians of `--repeats` are shown.

- kernel: bigdl's choice on AMD (plain AVX, its INT4 batch path) vs ours (AVX-512 and GEMM
  for prompt chunks), forced with LLAMA_CPP_LIB so any x86 machine with AVX-512 can run it;
- prompt path: with the AVX-512 kernel, INT4 kernel vs fp32 GEMM for prompt chunks;
- LM head: logits for every prompt position (transformers' forward) vs the last one only;
- KV reuse: turn 10 of a conversation recomputing the history vs reusing the cache;
- prefill chunks: the whole prompt at once vs 512-token chunks (speed and peak RSS);
- decode step: new tokens through the model's modules vs engine/decode_step.py (decode
  speed and turn 10's TTFT, a prompt on top of ~1,000 cached tokens).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import harness, workers  # noqa: E402  (needs the checkout on sys.path first)
from benchmarks.baselines import prompt_ids  # noqa: E402
from qwen_tui.engine import measure as engine_measure  # noqa: E402

MODEL = "qwen-1.8b-random"
MARK = "ABLATION-RESULT "
DOCS_START, DOCS_END = "<!-- bench:changes:start -->", "<!-- bench:changes:end -->"

# change -> [(variant label, settings)]; the first variant is "before".
VARIANTS: dict[str, list[tuple[str, dict[str, Any]]]] = {
    "kernel (AMD)": [
        ("bigdl's pick on AMD: avx, INT4 batches", {"kernel": "avx", "path": "int4"}),
        ("avx512, INT4 batches", {"kernel": "avx512", "path": "int4"}),
        ("ours: avx512, GEMM batches", {"kernel": "avx512", "path": "gemm"}),
    ],
    "LM head": [
        ("every position", {"head": "all"}),
        ("last position", {"head": "last"}),
    ],
    "KV reuse": [
        ("history recomputed", {"reuse": False}),
        ("cache reused", {"reuse": True}),
    ],
    "prefill chunks": [
        ("whole prompt at once", {"chunk": 0}),
        ("512-token chunks", {"chunk": 512}),
    ],
    "decode step": [
        ("transformers + bigdl modules", {"step": False}),
        ("direct step, fused q/k/v and gate/up", {"step": True}),
    ],
}


def child(settings: dict[str, Any], model_dir: str, threads: int) -> dict[str, Any]:
    """One variant, measured in this (fresh) process."""
    from qwen_tui.engine import bigdl

    engine, _ = workers.load_installed(model_dir, threads)
    if "path" in settings:
        bigdl.use_batch_path(settings["path"])
    engine_measure.warm_up(engine)
    result: dict[str, Any] = {"kernel": bigdl.loaded_kernel()}
    if "kernel" in settings:
        result |= engine_measure.engine_decode(engine, 64, 1)
        result["prefill_tok_s"] = engine_measure.engine_prefill(engine, 512, 2)["prefill_tok_s"]
    if "head" in settings:
        result["prefill_tok_s"] = prefill_with_head(engine, 512, settings["head"])
    if "reuse" in settings:
        result["ttft_turn10_s"] = turn_ten(engine, reuse=settings["reuse"])
    if "chunk" in settings:
        engine.prefill_chunk = settings["chunk"]
        rates = [
            engine_measure.engine_prefill(engine, n, 3 + n)["prefill_tok_s"] for n in (1024, 2048)
        ]
        result |= {"prefill_tok_s_1024": rates[0], "prefill_tok_s_2048": rates[1]}
        result["peak_rss_mb"] = engine_measure.peak_rss_mb()
    if "step" in settings:
        if not settings["step"]:
            engine.step = None
        result |= engine_measure.engine_decode(engine, 128, 1)
        result["ttft_turn10_s"] = workers.conversation(engine, 10, 100, 7)["ttft_turn10_s"]
    return result


def prefill_with_head(engine: Any, tokens: int, head: str) -> float:
    """Prompt tok/s of one forward pass with logits for all positions or the last one."""
    import torch

    ids = torch.tensor([prompt_ids(tokens, 11, engine.model.config.vocab_size)])
    torch.set_num_threads(engine.threads)
    with torch.inference_mode():
        started = time.perf_counter()
        if head == "all":
            engine.model(input_ids=ids, use_cache=True)
        else:
            base = getattr(engine.model, engine.model.base_model_prefix)
            hidden = base(input_ids=ids, use_cache=True).last_hidden_state
            engine.model.get_output_embeddings()(hidden[:, -1:, :])
        return tokens / (time.perf_counter() - started)


def turn_ten(engine: Any, *, reuse: bool) -> float:
    from qwen_tui.engine.decode import KVCache

    class Forgetful(KVCache):
        """Starts every turn empty, as transformers' generate() does."""

        def reuse_for(self, prompt: Any) -> int:
            self.reset()
            return super().reuse_for(prompt)

    if not reuse:
        engine.cache = Forgetful()
    return workers.conversation(engine, 10, 100, 7)["ttft_turn10_s"]


def run_variant(settings: dict[str, Any], model_dir: str, threads: int) -> dict[str, Any]:
    env = dict(os.environ)
    if "kernel" in settings:
        libs = bench_libs_dir()
        env["LLAMA_CPP_LIB"] = str(libs / f"libllama_{settings['kernel']}.so")
    command = [sys.executable, __file__, "--child", json.dumps(settings), model_dir, str(threads)]
    done = subprocess.run(command, capture_output=True, text=True, env=env, check=False)
    lines = [line for line in done.stdout.splitlines() if line.startswith(MARK)]
    if done.returncode != 0 or not lines:
        raise RuntimeError(f"variant {settings} failed:\n{done.stderr[-2000:]}")
    return json.loads(lines[-1].removeprefix(MARK))


def bench_libs_dir() -> Path:
    from qwen_tui.engine.bigdl import bigdl_libs_dir

    libs = bigdl_libs_dir()
    if libs is None:
        raise RuntimeError("bigdl-llm is not installed")
    return libs


def measure(repeats: int, threads: int, say: Any = print) -> dict[str, Any]:
    from benchmarks.models import ensure_model

    model_dir = str(ensure_model(MODEL, say=say).installed.path)
    results: dict[str, list[dict[str, Any]]] = {}
    for change, variants in VARIANTS.items():
        for repeat in range(repeats):
            for label, settings in variants:
                say(f"{change}: {label} ({repeat + 1}/{repeats})")
                results.setdefault(label, []).append(run_variant(settings, model_dir, threads))
    return {label: median_of(runs) for label, runs in results.items()} | {"_runs": results}


def median_of(runs: list[dict[str, Any]]) -> dict[str, Any]:
    keys = [key for key, value in runs[0].items() if isinstance(value, int | float)]
    return {key: statistics.median(run[key] for run in runs) for key in keys} | {
        "kernel": runs[0].get("kernel")
    }


COLUMNS = [
    ("decode tok/s", "decode_tok_s"),
    ("prefill tok/s @512", "prefill_tok_s"),
    ("prefill tok/s @1024", "prefill_tok_s_1024"),
    ("prefill tok/s @2048", "prefill_tok_s_2048"),
    ("TTFT turn 10 s", "ttft_turn10_s"),
    ("peak RSS MB", "peak_rss_mb"),
]


def format_tables(medians: dict[str, Any]) -> str:
    out = []
    for change, variants in VARIANTS.items():
        rows = [medians[label] for label, _ in variants]
        columns = [(title, key) for title, key in COLUMNS if any(key in row for row in rows)]
        out.append(f"**{change}**\n")
        out.append("| variant | " + " | ".join(title for title, _ in columns) + " |")
        out.append("|---|" + "---|" * len(columns))
        before = rows[0]
        for (label, _), row in zip(variants, rows, strict=True):
            cells = []
            for _, key in columns:
                value = row.get(key)
                cell = "n/a" if value is None else _number(value)
                if value and before.get(key) and row is not before:
                    cell += f" ({value / before[key]:.2f}×)"
                cells.append(cell)
            out.append(f"| {label} | " + " | ".join(cells) + " |")
        out.append("")
    return "\n".join(out)


def _number(value: float) -> str:
    return f"{value:.0f}" if abs(value) >= 100 else f"{value:.3g}"


def update_docs(docs: Path, text: str) -> None:
    content = docs.read_text(encoding="utf-8")
    if DOCS_START not in content:
        raise SystemExit(f"{docs} has no {DOCS_START} marker")
    head, rest = content.split(DOCS_START, 1)
    _, tail = rest.split(DOCS_END, 1)
    docs.write_text(f"{head}{DOCS_START}\n{text}\n{DOCS_END}{tail}", encoding="utf-8")


def main() -> int:
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        settings, model_dir, threads = json.loads(sys.argv[2]), sys.argv[3], int(sys.argv[4])
        print(MARK + json.dumps(child(settings, model_dir, threads)), flush=True)
        return 0
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--threads", type=int, default=0, help="default: physical cores")
    parser.add_argument("--docs", type=Path, help="rewrite this file's changes section")
    args = parser.parse_args()
    from qwen_tui.engine.cpu import default_threads

    threads = args.threads or default_threads()
    started, load = time.perf_counter(), os.getloadavg()[0]
    medians = measure(args.repeats, threads, say=lambda text: print(text, file=sys.stderr))
    machine = harness.machine_info()
    header = (
        f"Run {time.strftime('%Y-%m-%d %H:%M')} on {machine.get('cpu', '?')}, {threads} threads, "
        f"{args.repeats} repeats (medians), load average {load:.2f} at start, "
        f"{os.getloadavg()[0]:.2f} at end, {time.perf_counter() - started:.0f} s. "
        "Command: `python benchmarks/ablations.py`.\n"
    )
    text = header + "\n" + format_tables(medians)
    print(text)
    results = ROOT / "benchmarks" / "results"
    results.mkdir(exist_ok=True)
    out = results / f"{time.strftime('%Y%m%d-%H%M%S')}-ablations.json"
    out.write_text(json.dumps({"machine": machine, "results": medians}, indent=2), "utf-8")
    print(f"JSON: {out}")
    if args.docs:
        update_docs(args.docs, text)
    return 0


if __name__ == "__main__":
    sys.exit(main())
