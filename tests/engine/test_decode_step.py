"""The direct decode step (engine/decode_step.py) computes exactly what the model's forward does."""

from __future__ import annotations

import pytest

from qwen_tui.conversation import GenerationSettings, Message
from qwen_tui.engine.base import ReplyDone, TextChunk
from qwen_tui.engine.decode import reserve, split_head
from qwen_tui.engine.decode_step import DecodeStep

pytestmark = pytest.mark.kernels

QUESTIONS = ["Hello, who are you?", "Tell me about the terminal.", "And about sessions?"]


def prefilled(model, prompt):
    """A cache holding `prompt`, computed by the model's own forward."""
    import torch
    from transformers import DynamicCache

    base, _ = split_head(model)
    past = DynamicCache()
    base(input_ids=torch.tensor([prompt]), past_key_values=past, use_cache=True)
    return past


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_each_step_equals_the_model_forward_bit_for_bit(tiny_engine, kind) -> None:
    """Qwen2 goes through SDPA, the Llama model (eager, grouped k/v heads) through
    matmul/softmax; both must match the forward bigdl patched in, to the last bit,
    across a buffer that has to grow (ids 0..24 fill bigdl's first allocation)."""
    import torch

    engine = tiny_engine(kind)
    step = engine.step
    assert isinstance(step, DecodeStep)
    base, _ = split_head(engine.model)
    prompt = engine.format.encode([Message("user", "Count with me, please.")])
    reference, direct = prefilled(engine.model, prompt), prefilled(engine.model, prompt)
    with torch.inference_mode():
        for token in range(5, 400, 7):
            for past in (reference, direct):
                reserve(past, past.key_cache[0].shape[2] + 1)
            expected = base(
                input_ids=torch.tensor([[token]]), past_key_values=reference, use_cache=True
            ).last_hidden_state
            got = step([token], direct)
            assert torch.equal(got, expected)
    assert direct.seen_tokens == reference.seen_tokens == len(prompt) + len(range(5, 400, 7))
    for layer in range(len(reference.key_cache)):
        assert torch.equal(direct.key_cache[layer], reference.key_cache[layer])
        assert torch.equal(direct.value_cache[layer], reference.value_cache[layer])


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_prompt_chunks_equal_the_model_forward_bit_for_bit(tiny_engine, kind) -> None:
    """A first chunk on an empty cache (causal mask), then chunks on top of it (4D mask
    over the cached positions), as decode() feeds a long prompt."""
    import torch
    from transformers import DynamicCache

    engine = tiny_engine(kind)
    base, _ = split_head(engine.model)
    reference, direct = DynamicCache(), DynamicCache()
    chunks = [list(range(100, 140)), list(range(300, 317)), list(range(500, 533))]
    with torch.inference_mode():
        for chunk in chunks:
            total = reference.get_seq_length() + len(chunk)
            for past in (reference, direct):
                reserve(past, total)
            expected = base(
                input_ids=torch.tensor([chunk]), past_key_values=reference, use_cache=True
            ).last_hidden_state
            assert torch.equal(engine.step(chunk, direct), expected)
    for layer in range(len(reference.key_cache)):
        assert torch.equal(direct.key_cache[layer], reference.key_cache[layer])
        assert torch.equal(direct.value_cache[layer], reference.value_cache[layer])


def converse(engine, settings):
    messages, answers = [Message("system", "You are a helpful assistant.")], []
    engine.cache.reset()
    for question in QUESTIONS:
        messages.append(Message("user", question))
        events = list(engine.generate(messages, settings))
        assert isinstance(events[-1], ReplyDone) and events[-1].stats.error is None
        answers.append("".join(e.text for e in events if isinstance(e, TextChunk)))
        messages.append(Message("assistant", answers[-1]))
    return answers


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_the_engine_answers_the_same_with_and_without_it(tiny_engine, kind) -> None:
    """Greedy and seeded sampling, three turns on a reused cache."""
    engine = tiny_engine(kind)
    greedy = GenerationSettings(temperature=0, max_new_tokens=24, repetition_penalty=1.0)
    sampled = GenerationSettings(temperature=0.8, top_k=20, top_p=0.9, seed=7, max_new_tokens=24)
    step = engine.step
    with_step = [converse(engine, greedy), converse(engine, sampled)]
    engine.step = None
    try:
        without = [converse(engine, greedy), converse(engine, sampled)]
    finally:
        engine.step = step
    assert with_step == without


def test_models_of_other_shapes_keep_their_own_forward(tiny_engine) -> None:
    """Qwen v1's remote code (legacy tuple caches, its own attention) is not Llama-shaped."""
    engine = tiny_engine("remote")
    assert engine.step is None
    assert DecodeStep.for_model(engine.model) is None


def test_fused_layers_share_one_matrix_and_answer_as_before(tiny_engine) -> None:
    """q/k/v now read views of one fused matrix: the prompt path (their own forward)
    must still give what the fused product gives."""
    import torch

    engine = tiny_engine("qwen2")
    attention = engine.model.model.layers[0].self_attn
    views = [attention.q_proj.weight.data, attention.k_proj.weight.data]
    assert views[0].untyped_storage().data_ptr() == views[1].untyped_storage().data_ptr()
    x = torch.randn(1, engine.model.config.hidden_size)
    with torch.inference_mode():
        separate = torch.cat(
            [
                layer(x.view(1, 1, -1)).view(1, -1)
                for layer in (attention.q_proj, attention.k_proj, attention.v_proj)
            ],
            dim=-1,
        )
        fused = engine.step.layers[0].qkv(x)
    assert torch.equal(fused, separate)
