"""Compare two ways of computing the same reply by their logits, within the kernels' rounding.

Greedy text of a random-weight model is no test of equality across code paths: its logits are
nearly flat (std ~0.16 on the tiny models, top-2 margins down to 0.0006), so any change of
summation order flips the argmax somewhere. Which order a path gets depends on the bigdl kernel
library (AVX2, AVX-512, AMX) and on the batch path (INT4 kernel for single tokens, fp32 GEMM
for prompt chunks): a greedy-text test that passes on one CPU fails on another.

So a reply is generated once on the path under test, recording each position's logits; the
reference then recomputes every position from an empty cache, teacher-forced on the same
tokens, and the two are compared position by position:
- the relative error of the logits must stay under REL_TOLERANCE. Measured on an AVX2-only
  AMD EPYC, over every position of tests/engine/test_kv_reuse.py: at most 1.05 % between the
  warm path (cached, single-token INT4 kernel) and the cold one (one forward, fp32 GEMM) with
  the avx2 library; a KV buffer that loses its contents when it grows gives 41-55 %;
- where the two choose different greedy tokens, the reference's top two must be within the
  rounding seen at that position (a near-tie), never a clear winner.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from qwen_tui.conversation import GenerationSettings
from qwen_tui.engine.decode import decode, split_head

GREEDY = GenerationSettings(temperature=0, repetition_penalty=1.0)
REL_TOLERANCE = 0.08
"""||warm - cold|| / ||cold - mean(cold)||: measured rounding 8x under it, broken reuse 5x over."""


@dataclass
class Trace:
    """A greedy reply and the logits every one of its tokens was chosen from."""

    prompt: list[int]
    tokens: list[int]
    logits: list[Any]
    reused: int
    """Prompt tokens the cache already held."""


def traced_reply(engine: Any, prompt: Sequence[int], max_new_tokens: int, chunk: int) -> Trace:
    """Greedy reply through the engine's own cache as it stands (the path under test)."""
    import torch

    tokens: list[int] = []
    logits: list[Any] = []
    with torch.inference_mode():
        reused = decode(engine.model, engine.cache, list(prompt), GREEDY, max_new_tokens, [],
                        lambda token: tokens.append(token) or True, prefill_chunk=chunk,
                        step=engine.step, on_logits=logits.append)  # fmt: skip
    return Trace(list(prompt), tokens, logits, reused)


def cold_logits(engine: Any, trace: Trace) -> list[Any]:
    """The reference: every position of `trace` from one forward of the model's own module
    stack over the whole text, on an empty cache (no reuse, no chunks, no decode_step)."""
    import torch

    base, head = split_head(engine.model)
    ids = torch.tensor([trace.prompt + trace.tokens[:-1]])
    past = None
    if getattr(engine.model, "_supports_cache_class", False):
        from transformers import DynamicCache

        past = DynamicCache()
    with torch.inference_mode():
        hidden = base(input_ids=ids, past_key_values=past, use_cache=True).last_hidden_state
        logits = head(hidden[:, len(trace.prompt) - 1 :, :])[0].float()
    return list(logits)


def relative_error(logits: Any, reference: Any) -> float:
    centred = reference - reference.mean()
    return float((logits - reference).norm() / centred.norm())


def mismatches(trace: Trace, reference: Sequence[Any]) -> list[str]:
    """Every position where the trace is not the reference up to rounding, as a sentence."""
    problems = []
    for position, (logits, expected) in enumerate(zip(trace.logits, reference, strict=True)):
        error = relative_error(logits, expected)
        if error > REL_TOLERANCE:
            problems.append(f"position {position}: relative error {error:.4f}")
        chosen, best = trace.tokens[position], int(expected.argmax())
        rounding = float((logits - expected).abs().max())
        margin = float(expected[best] - expected[chosen])
        if chosen != best and margin > 2 * rounding:
            problems.append(
                f"position {position}: chose {chosen} where the reference's {best} wins by "
                f"{margin:.4f}, beyond the rounding here ({rounding:.4f})"
            )
    return problems


def assert_matches_cold(engine: Any, trace: Trace) -> None:
    """The trace equals a cold, teacher-forced recomputation within the kernels' rounding."""
    problems = mismatches(trace, cold_logits(engine, trace))
    assert not problems, "\n".join(problems)
