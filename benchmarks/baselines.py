"""The baselines qwen-tui is measured against, on the same checkpoint in the same run.

- `hf`: plain transformers, `AutoModelForCausalLM.from_pretrained(torch_dtype=torch.bfloat16)`,
  timed token by token like qwen-tui's own model.
- `llamacpp`: llama-cpp-python (the optional `bench` extra, built from source) on a GGUF Q4_0
  of the same weights (`models.ensure_gguf`), llama.cpp's default batch sizes.

Each runs in a fresh process per repeat (`processes.run_worker`). Prompts are the same
token ids for every runner (`prompt_ids`). A baseline has no chat formatting, so its `ttft_s`
is the first-token time of the raw n-token prompt, the same measurement its `prefill_tok_s`
comes from.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from typing import Any

from benchmarks import models
from qwen_tui.engine.measure import peak_rss_mb


def prepare(kind: str, target: models.BenchModel, say: Callable[[str], None]) -> dict[str, Any]:
    """What a baseline's worker needs (built and cached on first use)."""
    if kind == "llamacpp":
        return {"gguf": str(models.ensure_gguf(target, say))}
    if kind == "hf":
        return {"checkpoint": str(target.checkpoint)}
    raise ValueError(f"unknown baseline {kind!r}")


def prompt_ids(length: int, seed: int, vocab_size: int) -> list[int]:
    """`length` token ids of ordinary (non-special) tokens, the same for every runner."""
    rng = random.Random(seed)
    high = min(vocab_size, 30_000)  # below every special/added token of our models
    return [rng.randrange(100, high) for _ in range(length)]


# ---------------------------------------------------------------------------- transformers


class TokenClock:
    """A generate() streamer that only notes when each new token arrived."""

    def __init__(self) -> None:
        self.prompt_seen = False
        self.times: list[float] = []

    def put(self, value: Any) -> None:
        if not self.prompt_seen:  # generate() hands the prompt over first
            self.prompt_seen = True
            return
        now = time.perf_counter()
        self.times.extend([now] * int(value.numel()))

    def end(self) -> None:
        pass


def timed_generate(
    model: Any, ids: list[int], new_tokens: int, stop_ids: list[int]
) -> tuple[float, TokenClock]:
    """Greedy generate exactly `new_tokens` tokens; (start time, token clock).

    `min_new_tokens` masks the end tokens until the length is reached (eos_token_id=None
    does not work in transformers 4.37: greedy_search falls back to the model's own).
    """
    import torch
    from transformers import GenerationConfig

    config = GenerationConfig(
        max_new_tokens=new_tokens,
        min_new_tokens=new_tokens,
        do_sample=False,
        eos_token_id=stop_ids,
        pad_token_id=stop_ids[0],
    )
    clock = TokenClock()
    inputs = torch.tensor([ids])
    started = time.perf_counter()
    with torch.inference_mode():
        model.generate(
            inputs, attention_mask=torch.ones_like(inputs), generation_config=config, streamer=clock
        )
    return started, clock


def model_level(
    model: Any, vocab_size: int, stop_ids: list[int], spec: dict[str, Any]
) -> dict[str, Any]:
    """Decode tok/s after the first token, and first-token time per prompt length."""
    seed = 1000 * spec["repeat"]
    timed_generate(model, prompt_ids(16, seed + 1, vocab_size), 1, stop_ids)  # warm-up
    _, clock = timed_generate(
        model, prompt_ids(32, seed + 2, vocab_size), spec["decode_tokens"], stop_ids
    )
    decode = (len(clock.times) - 1) / (clock.times[-1] - clock.times[0])
    first = {}
    for n in spec["prompt_lengths"]:
        started, clock = timed_generate(model, prompt_ids(n, seed + n, vocab_size), 1, stop_ids)
        first[str(n)] = clock.times[0] - started
    return {
        "decode_tok_s": decode,
        "ttft_s": first,
        "prefill_tok_s": {n: int(n) / s for n, s in first.items()},
    }


def hf_worker(spec: dict[str, Any]) -> dict[str, Any]:
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    torch.set_num_threads(spec["threads"])
    started = time.perf_counter()
    model = AutoModelForCausalLM.from_pretrained(spec["checkpoint"], torch_dtype=torch.bfloat16)
    model.eval()
    load_s = time.perf_counter() - started
    tokenizer = AutoTokenizer.from_pretrained(spec["checkpoint"])
    eos = model.generation_config.eos_token_id or tokenizer.eos_token_id
    stop_ids = eos if isinstance(eos, list) else [eos]
    result = model_level(model, len(tokenizer), stop_ids, spec)
    return result | {"load_s": load_s, "peak_rss_mb": peak_rss_mb()}


# ---------------------------------------------------------------------------- llama.cpp


class LlamaRunner:
    """Greedy decoding with llama-cpp-python's Llama.eval, timed like qwen-tui's TokenClock."""

    def __init__(self, llm: Any) -> None:
        self.llm = llm
        self.vocab = llm.n_vocab()

    def next_token(self) -> int:
        """Argmax of the last position's logits (llama.cpp's greedy sampler does the same)."""
        import llama_cpp
        import numpy as np

        logits = llama_cpp.llama_get_logits_ith(self.llm.ctx, -1)
        return int(np.argmax(np.ctypeslib.as_array(logits, shape=(self.vocab,))))

    def first_token_s(self, ids: list[int]) -> float:
        self.llm.reset()
        started = time.perf_counter()
        self.llm.eval(ids)
        self.next_token()
        return time.perf_counter() - started

    def decode_tok_s(self, ids: list[int], new_tokens: int) -> float:
        """Tokens per second after the first one (end tokens are not special here)."""
        self.llm.reset()
        self.llm.eval(ids)
        token = self.next_token()
        first = time.perf_counter()
        for _ in range(new_tokens - 1):
            self.llm.eval([token])
            token = self.next_token()
        return (new_tokens - 1) / (time.perf_counter() - first)


def llamacpp_worker(spec: dict[str, Any]) -> dict[str, Any]:
    from llama_cpp import Llama

    context = max(2048, max(spec["prompt_lengths"]) + spec["decode_tokens"] + 64)
    threads = spec["threads"]
    started = time.perf_counter()
    llm = Llama(
        model_path=spec["gguf"],
        n_ctx=context,
        n_threads=threads,
        n_threads_batch=threads,
        seed=0,
        verbose=False,
    )
    load_s = time.perf_counter() - started
    runner, vocab, seed = LlamaRunner(llm), llm.n_vocab(), 1000 * spec["repeat"]
    runner.first_token_s(prompt_ids(16, seed + 1, vocab))  # warm-up
    decode = runner.decode_tok_s(prompt_ids(32, seed + 2, vocab), spec["decode_tokens"])
    first = {
        str(n): runner.first_token_s(prompt_ids(n, seed + n, vocab)) for n in spec["prompt_lengths"]
    }
    return {
        "decode_tok_s": decode,
        "ttft_s": first,
        "prefill_tok_s": {n: int(n) / s for n, s in first.items()},
        "load_s": load_s,
        "peak_rss_mb": peak_rss_mb(),
    }


WORKERS = {"hf": hf_worker, "llamacpp": llamacpp_worker}
