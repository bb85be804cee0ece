"""The Qwen v1 -> Qwen2 tensor mapping, streamed: exact tensors, sharded sources, little RAM.

Runs without Qwen's code (synthetic v1 tensors by name); tests/engine/test_qwen_v1_*.py check
the converted model against the real QWenLMHeadModel."""

from __future__ import annotations

import json
import tracemalloc
from pathlib import Path

import pytest

from qwen_tui.model_setup.qwen_v1_convert import (
    QwenV1ConvertError,
    check_convertible,
    plan_tensors,
    qwen2_config,
    read_safetensors_header,
    write_safetensors,
)

HIDDEN, LAYERS, MLP, VOCAB = 64, 2, 96, 4096


def v1_tensors(seed: int = 0) -> dict:
    import torch

    generator = torch.Generator().manual_seed(seed)

    def rand(*shape: int):
        return torch.randn(shape, generator=generator).to(torch.bfloat16)

    tensors = {"transformer.wte.weight": rand(VOCAB, HIDDEN), "lm_head.weight": rand(VOCAB, HIDDEN)}
    tensors["transformer.ln_f.weight"] = rand(HIDDEN)
    for n in range(LAYERS):
        p = f"transformer.h.{n}."
        tensors |= {
            p + "ln_1.weight": rand(HIDDEN),
            p + "ln_2.weight": rand(HIDDEN),
            p + "attn.c_attn.weight": rand(3 * HIDDEN, HIDDEN),
            p + "attn.c_attn.bias": rand(3 * HIDDEN),
            p + "attn.c_proj.weight": rand(HIDDEN, HIDDEN),
            p + "mlp.w1.weight": rand(MLP, HIDDEN),
            p + "mlp.w2.weight": rand(MLP, HIDDEN),
            p + "mlp.c_proj.weight": rand(HIDDEN, MLP),
        }
    return tensors


def converted(tmp_path: Path, tensors: dict, shards: int = 1) -> dict:
    from safetensors.torch import load_file, save_file

    names = sorted(tensors)
    sources = {}
    for index in range(shards):
        part = tmp_path / f"model-{index + 1:05d}-of-{shards:05d}.safetensors"
        save_file({name: tensors[name] for name in names[index::shards]}, part)
        sources |= read_safetensors_header(part)
    out = tmp_path / "out.safetensors"
    write_safetensors(plan_tensors(sources, LAYERS), out)
    return load_file(out)


@pytest.mark.parametrize("shards", [1, 3])
def test_every_qwen2_tensor_is_its_v1_counterpart(tmp_path: Path, shards: int) -> None:
    import torch

    v1 = v1_tensors()
    qwen2 = converted(tmp_path, v1, shards)
    assert len(qwen2) == 3 + LAYERS * 12
    assert torch.equal(qwen2["model.embed_tokens.weight"], v1["transformer.wte.weight"])
    assert torch.equal(qwen2["lm_head.weight"], v1["lm_head.weight"])
    assert torch.equal(qwen2["model.norm.weight"], v1["transformer.ln_f.weight"])
    for n in range(LAYERS):
        p, q = f"transformer.h.{n}.", f"model.layers.{n}."
        for kind in ("weight", "bias"):
            q_, k_, v_ = v1[f"{p}attn.c_attn.{kind}"].split(HIDDEN)
            assert torch.equal(qwen2[f"{q}self_attn.q_proj.{kind}"], q_)
            assert torch.equal(qwen2[f"{q}self_attn.k_proj.{kind}"], k_)
            assert torch.equal(qwen2[f"{q}self_attn.v_proj.{kind}"], v_)
        pairs = {
            "self_attn.o_proj.weight": "attn.c_proj.weight",
            "input_layernorm.weight": "ln_1.weight",
            "post_attention_layernorm.weight": "ln_2.weight",
            "mlp.gate_proj.weight": "mlp.w2.weight",  # a1 * silu(a2): w2 is the gate
            "mlp.up_proj.weight": "mlp.w1.weight",
            "mlp.down_proj.weight": "mlp.c_proj.weight",
        }
        for new, old in pairs.items():
            assert torch.equal(qwen2[q + new], v1[p + old]), new


def test_converting_streams_in_chunks_whatever_the_tensor_size(tmp_path: Path, monkeypatch):
    """Peak Python memory of writing is one chunk, not the largest tensor (the 1.8B model's
    embedding is 622 MB): shrink the chunk and the peak shrinks with it."""
    from safetensors.torch import save_file

    import qwen_tui.model_setup.qwen_v1_convert as convert

    tensors = v1_tensors()
    source = tmp_path / "model.safetensors"
    save_file(tensors, source)
    plan = plan_tensors(read_safetensors_header(source), LAYERS)
    largest = max(p.nbytes for p in plan)
    monkeypatch.setattr(convert, "_CHUNK", 4096)
    tracemalloc.start()
    write_safetensors(plan, tmp_path / "out.safetensors")
    _now, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    assert largest >= 512 * 1024
    assert peak < largest / 8


def test_config_maps_widths_and_caps_the_context() -> None:
    v1 = json.loads(
        '{"hidden_size": 2048, "num_attention_heads": 16, "num_hidden_layers": 24, '
        '"intermediate_size": 11008, "rotary_emb_base": 10000, "layer_norm_epsilon": 1e-6, '
        '"seq_length": 8192, "max_position_embeddings": 8192, "vocab_size": 151936}'
    )
    config = qwen2_config(v1, "bfloat16")
    assert config["intermediate_size"] == 5504  # v1 states w1 and w2 together
    assert config["num_key_value_heads"] == 16 and config["rope_theta"] == 10000.0
    assert config["max_position_embeddings"] == 8192 and not config["tie_word_embeddings"]


BASE = {"hidden_size": 64, "num_attention_heads": 4, "kv_channels": 16, "rotary_pct": 1.0}


@pytest.mark.parametrize(
    ("change", "reason"),
    [
        ({"rotary_pct": 0.5}, "rotary_pct"),
        ({"use_cache_quantization": True}, "KV cache"),
        ({"visual": {}}, "Qwen-VL"),
        ({"kv_channels": 8}, "kv_channels"),
        ({"no_bias": False}, "biases"),
    ],
)
def test_models_the_mapping_does_not_fit_are_refused_in_words(tmp_path, change, reason) -> None:
    (tmp_path / "qwen.tiktoken").write_text("")
    (tmp_path / "model.safetensors").write_bytes(b"")
    check_convertible(tmp_path, BASE)  # Qwen-1_8B-Chat's values pass
    with pytest.raises(QwenV1ConvertError, match=reason):
        check_convertible(tmp_path, {**BASE, **change})


def test_a_folder_without_vocabulary_or_safetensors_is_refused(tmp_path) -> None:
    with pytest.raises(QwenV1ConvertError, match=r"qwen\.tiktoken is missing.*no \.safetensors"):
        check_convertible(tmp_path, BASE)
