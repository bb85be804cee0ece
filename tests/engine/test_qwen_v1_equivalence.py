"""A Qwen v1 model converted at setup computes what Qwen's own QWenLMHeadModel computes.

The reference is Qwen's published code (../shared/qwen_v1_code) on a tiny random model with
the real vocabulary. Qwen's own cached forward drops the causal mask when several tokens are
fed on top of a cache (modeling_qwen.py builds it only when query and key lengths are equal,
shared/notes/qwen-v1-as-qwen2.md), so the reference always runs on whole prompts, as its own
chat() does.
"""

from __future__ import annotations

import pytest

from tests.fixtures.qwen_v1_real import (
    QWEN_V1_SKIP_REASON,
    load_reference_model,
    qwen_v1_code_available,
    reference_module,
    reference_tokenizer,
    shared_converted,
    shared_tiny_qwen_v1,
)

pytestmark = pytest.mark.skipif(not qwen_v1_code_available(), reason=QWEN_V1_SKIP_REASON)

FP32_TOLERANCE = 1e-4  # measured: 0.0 on 300 tokens; logits here have a spread of ~3
CONVERSATION = [
    ("你好，请介绍一下你自己。", "我是一个语言模型，可以回答问题。"),
    ("What is the capital of France?", "Paris. 🇫🇷"),
    ("And of Germany? <|im_end|> is just text here.", "Berlin."),
]
FINAL_QUERY = "Thanks! Now summarise our conversation."


def make_context(history: list[tuple[str, str]], query: str) -> list[int]:
    """Qwen's own prompt ids (qwen_generation_utils.make_context, as chat() builds them)."""
    build = reference_module("qwen_generation_utils").make_context
    _raw, ids = build(reference_tokenizer(), query, history=history, system="You are helpful.")
    return ids


@pytest.fixture(scope="module")
def models(tmp_path_factory: pytest.TempPathFactory):
    """(QWenLMHeadModel, the converted Qwen2ForCausalLM), both fp32."""
    import torch
    from transformers import Qwen2ForCausalLM

    reference = load_reference_model(shared_tiny_qwen_v1(tmp_path_factory))
    converted = Qwen2ForCausalLM.from_pretrained(
        shared_converted(tmp_path_factory), torch_dtype=torch.float32
    )
    return reference, converted.eval()


def logits_of(model, ids: list[int]):
    import torch

    with torch.no_grad():
        return model(torch.tensor([ids])).logits[0]


@pytest.mark.parametrize("turns", [0, len(CONVERSATION)], ids=["one-prompt", "multi-turn"])
def test_converted_logits_equal_qwens_own_model(models, turns: int) -> None:
    reference, converted = models
    ids = make_context(CONVERSATION[:turns], FINAL_QUERY)
    expected, got = logits_of(reference, ids), logits_of(converted, ids)
    assert expected.std() > 1.0  # the comparison has something to compare
    assert (got - expected).abs().max() <= FP32_TOLERANCE


def test_a_turn_on_a_reused_cache_equals_qwen_on_the_whole_prompt(models) -> None:
    """Turn 2 fed on top of turn 1's KV cache (as the engine does) = the full recompute."""
    import torch
    from transformers import DynamicCache

    reference, converted = models
    turn1 = make_context([], CONVERSATION[0][0])
    reply = [*reference_tokenizer().encode(CONVERSATION[0][1]), 151645]
    turn2 = make_context(CONVERSATION[:1], CONVERSATION[1][0])
    assert turn2[: len(turn1)] == turn1  # what the cache holds is a prefix of the next prompt
    past = DynamicCache()
    with torch.no_grad():
        converted(torch.tensor([turn1 + reply]), past_key_values=past, use_cache=True)
        cached = len(turn1 + reply)
        assert turn2[:cached] == turn1 + reply
        new = turn2[cached:]
        assert len(new) > 10  # several tokens at once: the case Qwen's own code gets wrong
        got = converted(torch.tensor([new]), past_key_values=past, use_cache=True).logits[0]
    expected = logits_of(reference, turn2)[cached:]
    assert (got - expected).abs().max() <= FP32_TOLERANCE


def test_context_is_capped_at_seq_length(tmp_path_factory: pytest.TempPathFactory) -> None:
    """Past seq_length Qwen v1 scales attention (logn) and its rotary (dynamic NTK): the
    converted model must not go there."""
    import json

    source = shared_tiny_qwen_v1(tmp_path_factory)
    v1 = json.loads((source / "config.json").read_text())
    qwen2 = json.loads((shared_converted(tmp_path_factory) / "config.json").read_text())
    assert v1["use_logn_attn"] and v1["use_dynamic_ntk"]
    assert qwen2["max_position_embeddings"] == v1["seq_length"]
