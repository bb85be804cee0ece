"""Where a token's time goes, part by part, against llama.cpp's whole token on the same weights.

    python benchmarks/decode_anatomy.py [--model qwen-v1-1.8b-random] [--contexts 200 1000]
                                        [--tokens 24] [--repeats 3] [--threads 2]

Issue 15 asks decode >= 1.0x and prefill >= 1.5x llama.cpp and, where bigdl's kernel cannot get
there, a measurement of why. `make bench` gives the ratios; this gives the parts, in one
process: for each context length a decoded token is split into the INT4 matrix-vector products
of the decoder layers, the LM head, attention over the KV cache, and the rest (norms, rotary,
residuals, the Python between them). Each part's bytes read divided by its time is its
bandwidth, set against the machine's own (a 1 GiB sum in torch) and against llama.cpp, timed
token by token on the Q4_0 GGUF of the same weights with the same thread count. A 512-token
prompt chunk gets the same split, its matrix products in GFLOP/s against torch's fp32 matmul
on the same shapes (what bigdl's batch path ends in on a CPU without AMX).

The parts are timed by wrapping the calls DecodeStep makes; the wrappers cost ~1 us per call
(~150 calls a token), inside the noise of a shared machine. Prints a table and writes
benchmarks/results/decode_anatomy-<time>.json.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import models  # noqa: E402  (needs ROOT on sys.path)
from benchmarks.baselines import prompt_ids  # noqa: E402

MB = 1e6


class Parts:
    """Seconds spent in named parts of a computation, by wrapping the callables doing them."""

    def __init__(self) -> None:
        self.seconds: dict[str, float] = {}

    def wrap(self, name: str, call: Callable[..., Any]) -> Callable[..., Any]:
        self.seconds.setdefault(name, 0.0)

        def timed(*args: Any) -> Any:
            started = time.perf_counter()
            try:
                return call(*args)
            finally:
                self.seconds[name] += time.perf_counter() - started

        return timed

    def reset(self) -> None:
        self.seconds = dict.fromkeys(self.seconds, 0.0)


def read_bandwidth_gb_s(threads: int) -> float:
    """The machine's read bandwidth as torch sees it: the best of five sums over 1 GiB."""
    import torch

    torch.set_num_threads(threads)
    data = torch.ones(1 << 28)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        data.sum()
        best = min(best, time.perf_counter() - started)
    return data.numel() * 4 / best / 1e9


def instrument(engine: Any, parts: Parts) -> dict[str, float]:
    """Wrap the decode step's calls into `parts`; returns the bytes each weight part reads."""
    step = engine.step
    layer_bytes = 0
    for layer in step.layers:
        for name in ("qkv", "o_proj", "gate_up", "down"):
            matvec = getattr(layer, name)
            layer_bytes += matvec.weight.numel() * matvec.weight.element_size()
            setattr(layer, name, parts.wrap("layer INT4 matvec", matvec))
        for linear in _prefill_linears(layer.modules):
            linear.forward = parts.wrap("prefill linears", linear.forward)
    step._attend = parts.wrap("attention", step._attend)
    head = engine.model.get_output_embeddings()
    head.forward = parts.wrap("LM head", head.forward)
    return {
        "layer INT4 matvec": layer_bytes,
        "LM head": head.weight.numel() * head.weight.element_size(),
    }


def _prefill_linears(layer: Any) -> list[Any]:
    attention, mlp = layer.self_attn, layer.mlp
    return [
        attention.q_proj,
        attention.k_proj,
        attention.v_proj,
        attention.o_proj,
        mlp.gate_proj,
        mlp.up_proj,
        mlp.down_proj,
    ]


def kv_bytes(past: Any) -> int:
    return sum(t.numel() * t.element_size() for t in (*past.key_cache, *past.value_cache))


def decode_parts(engine: Any, parts: Parts, context: int, tokens: int, seed: int) -> dict:
    """Prefill `context` tokens, then time `tokens` decoded ones part by part."""
    import torch
    from transformers import DynamicCache

    from qwen_tui.engine import decode as token_loop
    from qwen_tui.engine.local import PREFILL_CHUNK
    from qwen_tui.engine.measure import greedy

    cache = token_loop.KVCache()
    cache.past = DynamicCache()
    prompt = prompt_ids(context, seed, engine.model.config.vocab_size)
    first: list[int] = []
    with torch.inference_mode():
        token_loop.decode(
            engine.model,
            cache,
            prompt,
            greedy(1),
            1,
            (),
            lambda token: first.append(token) or False,
            prefill_chunk=PREFILL_CHUNK,
            step=engine.step,
        )
        token_loop.reserve(cache.past, context + tokens + 1)
        head = engine.model.get_output_embeddings()
        token = first[0]
        parts.reset()
        started = time.perf_counter()
        for _ in range(tokens):
            hidden = engine.step([token], cache.past)
            token = int(head(hidden[:, -1:, :])[0, -1].argmax())
        wall = time.perf_counter() - started
    per_token = {name: s / tokens for name, s in parts.seconds.items() if name != "prefill linears"}
    per_token["rest"] = wall / tokens - sum(per_token.values())
    return {"token_s": wall / tokens, "parts_s": per_token, "kv_bytes": kv_bytes(cache.past)}


def prefill_parts(engine: Any, parts: Parts, length: int, seed: int) -> dict:
    """One prompt chunk of `length` tokens on an empty cache, split into its parts."""
    import torch
    from transformers import DynamicCache

    prompt = prompt_ids(length, seed, engine.model.config.vocab_size)
    with torch.inference_mode():
        parts.reset()
        started = time.perf_counter()
        engine.step(prompt, DynamicCache())
        wall = time.perf_counter() - started
    split = {name: parts.seconds[name] for name in ("prefill linears", "attention")}
    split["rest"] = wall - sum(split.values())
    return {"chunk_s": wall, "parts_s": split}


def linear_flops(engine: Any, length: int) -> float:
    """Multiply-adds x2 of the decoder layers' matrices for `length` tokens."""
    weights = sum(
        linear.in_len * linear.out_len
        for layer in engine.step.layers
        for linear in _prefill_linears(layer.modules)
    )
    return 2.0 * weights * length


def fp32_matmul_gflops(length: int, hidden: int, inner: int, threads: int) -> float:
    """torch's fp32 GEMM on the MLP's shape: the ceiling of a dequantize-then-GEMM prefill."""
    import torch

    torch.set_num_threads(threads)
    x, w = torch.randn(length, hidden), torch.randn(inner, hidden)
    best = float("inf")
    for _ in range(5):
        started = time.perf_counter()
        x @ w.T
        best = min(best, time.perf_counter() - started)
    return 2.0 * length * hidden * inner / best / 1e9


def llamacpp_token_s(gguf: Path, contexts: list[int], tokens: int, threads: int) -> dict:
    """llama.cpp's seconds per decoded token after each context, and the bytes it streams."""
    from llama_cpp import Llama

    from benchmarks.baselines import LlamaRunner
    from qwen_tui.model_setup.gguf_metadata import open_reader

    streamed = sum(
        int(t.n_bytes) for t in open_reader(gguf).tensors if t.name != "token_embd.weight"
    )
    llm = Llama(
        model_path=str(gguf),
        n_ctx=max(contexts) + tokens + 64,
        n_threads=threads,
        n_threads_batch=threads,
        verbose=False,
    )
    runner, seconds = LlamaRunner(llm), {}
    for context in contexts:
        ids = prompt_ids(context, context, llm.n_vocab())
        seconds[str(context)] = 1 / runner.decode_tok_s(ids, tokens + 1)
    return {"token_s": seconds, "weight_bytes": streamed}


def measure(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    from qwen_tui.engine.loader import load_engine

    target = models.ensure_model(args.model, say=lambda text: print(text, file=sys.stderr))
    engine = load_engine(target.installed, threads=args.threads)
    if engine.step is None:
        raise SystemExit(f"{args.model}: no direct decode path (DecodeStep) to take apart")
    torch.set_num_threads(args.threads)
    parts = Parts()
    weight_bytes = instrument(engine, parts)
    decode_parts(engine, parts, 64, 4, 0)  # warm-up: first calls page in weights
    report: dict[str, Any] = {"model": args.model, "kernel": engine.info.kernel, "decode": {}}
    for context in args.contexts:
        runs = [
            decode_parts(engine, parts, context, args.tokens, 100 + r) for r in range(args.repeats)
        ]
        best = min(runs, key=lambda run: run["token_s"])
        report["decode"][str(context)] = best | {"token_s_all": [r["token_s"] for r in runs]}
    prefill = [prefill_parts(engine, parts, 512, 7 + r) for r in range(args.repeats)]
    report["prefill_512"] = min(prefill, key=lambda run: run["chunk_s"])
    report["prefill_512"]["linear_gflops"] = linear_flops(engine, 512) / 1e9
    config = engine.model.config
    report["machine"] = {
        "read_gb_s": read_bandwidth_gb_s(args.threads),
        "fp32_gemm_gflops": fp32_matmul_gflops(
            512, config.hidden_size, config.intermediate_size, args.threads
        ),
        "threads": args.threads,
    }
    report["weight_bytes"] = weight_bytes
    del engine
    gguf = models.ensure_gguf(target, say=lambda text: print(text, file=sys.stderr))
    report["llamacpp"] = llamacpp_token_s(gguf, args.contexts, args.tokens, args.threads)
    return report


def in_worker_thread(work: Callable[[argparse.Namespace], dict], args: argparse.Namespace) -> dict:
    """Run `work` in a thread of its own, as the app and `ask` compute replies.

    OpenMP's thread teams belong to the OS thread that starts them; on this 2-core machine
    under load, the same kernels called from the main thread measured 5-20x slower than from
    a worker thread (SDPA 1.6 s vs 0.1 s for 200 calls), so the main thread would not measure
    what a user gets.
    """
    import threading

    out: dict[str, Any] = {}

    def run() -> None:
        try:
            out["report"] = work(args)
        except BaseException as error:  # re-raised in the main thread, with its traceback
            out["error"] = error

    thread = threading.Thread(target=run, name="decode-anatomy")
    thread.start()
    thread.join()
    if "error" in out:
        raise out["error"]
    return out["report"]


def table(report: dict[str, Any]) -> str:
    machine, weights = report["machine"], report["weight_bytes"]
    lines = [
        f"{report['model']}, bigdl kernel {report['kernel']}, {machine['threads']} threads; "
        f"machine read bandwidth {machine['read_gb_s']:.1f} GB/s (torch sum over 1 GiB)",
        "",
        "| context | part | ms/token | MB read | GB/s |",
        "|---|---|---|---|---|",
    ]
    llama = report["llamacpp"]
    for context, run in report["decode"].items():
        read = dict(weights) | {"attention": run["kv_bytes"]}
        for part, seconds in run["parts_s"].items():
            mb = read.get(part)
            rate = f"{mb / seconds / 1e9:.1f}" if mb else ""
            size = f"{mb / MB:.0f}" if mb else ""
            lines.append(f"| {context} | {part} | {seconds * 1e3:.1f} | {size} | {rate} |")
        total = run["token_s"]
        spread = ", ".join(f"{s * 1e3:.0f}" for s in run["token_s_all"])
        lines.append(f"| {context} | **qwen-tui token** (runs: {spread}) | {total * 1e3:.1f} | | |")
        theirs = llama["token_s"][context]
        lines.append(
            f"| {context} | **llama.cpp token** | {theirs * 1e3:.1f} | "
            f"{llama['weight_bytes'] / MB:.0f} + KV | {llama['weight_bytes'] / theirs / 1e9:.1f} |"
        )
        lines.append(f"| {context} | ratio (llama.cpp / ours) | {theirs / total:.2f}x | | |")
    prefill = report["prefill_512"]
    lines += ["", "| prefill, one 512-token chunk | ms | GFLOP/s |", "|---|---|---|"]
    for part, seconds in prefill["parts_s"].items():
        flops = prefill["linear_gflops"] / seconds if part == "prefill linears" else None
        lines.append(f"| {part} | {seconds * 1e3:.0f} | {f'{flops:.0f}' if flops else ''} |")
    lines.append(
        f"| chunk | {prefill['chunk_s'] * 1e3:.0f} | {512 / prefill['chunk_s']:.1f} tok/s |"
    )
    lines.append(f"| torch fp32 GEMM, MLP shape | | {machine['fp32_gemm_gflops']:.0f} |")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", default="qwen-v1-1.8b-random", choices=models.MODEL_NAMES)
    parser.add_argument("--contexts", type=int, nargs="+", default=[200, 1000])
    parser.add_argument("--tokens", type=int, default=24)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--threads", type=int, default=2)
    args = parser.parse_args()
    report = in_worker_thread(measure, args)
    report["measured_at"] = time.strftime("%Y-%m-%d %H:%M:%S")
    print(table(report))
    out = ROOT / "benchmarks" / "results" / f"decode_anatomy-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(report, indent=1))
    print(f"\nwritten: {out.relative_to(ROOT)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
