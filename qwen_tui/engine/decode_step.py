"""New tokens of a Llama-shaped model (Qwen2, Llama) without the module stack.

Every new token runs the whole decoder for one position. Through transformers and bigdl's
replacement forwards that costs ~170 module calls, each with shape checks, dtype branches
and ctypes argument building: profiled on the 1.8B model, a third of each token's time
was that Python, two thirds the INT4 matrix products. Here the same operations run
straight, each layer's INT4 weights called through a prebuilt kernel call
(bigdl.int4_matvec), q/k/v and gate/up fused into one matrix. Prompt chunks take the same
path with the layers' own linear forwards, minus a score matmul bigdl computes and discards.

It mirrors the reference computation operation by operation (bigdl's RMSNorm, rotary
tables, masks, cache layout and attention), so the results are the same to the bit;
tests/engine/test_decode_step.py checks that against the model's own forward.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from qwen_tui.engine import bigdl, memory

# Architectures whose decoder layer is exactly: RMSNorm, q/k/v with rotary, attention,
# o_proj, residual, RMSNorm, SiLU-gated MLP, residual.
_LLAMA_SHAPED = {"llama", "qwen2"}
_PLAIN_ROTARY = {"LlamaRotaryEmbedding", "Qwen2RotaryEmbedding"}


@dataclass
class _Layer:
    modules: Any
    """The decoder layer itself: its norms, and the linear forwards prompt chunks use."""
    qkv: Callable[[Any], Any]
    o_proj: Callable[[Any], Any]
    gate_up: Callable[[Any], Any]
    down: Callable[[Any], Any]


class DecodeStep:
    """Feeds tokens on top of a KV cache and returns their hidden states (normed).

    Build it with `DecodeStep.for_model(model)`, which returns None for models it does
    not know; those keep the model's own forward.
    """

    def __init__(self, model: Any, layers: list[_Layer]) -> None:
        config = model.config
        base = model.model
        attention = base.layers[0].self_attn
        self.embedding = base.embed_tokens.weight
        self.final_norm = base.norm
        self.rotary = attention.rotary_emb
        self.layers = layers
        self.heads = attention.num_heads
        self.kv_heads = attention.num_key_value_heads
        self.head_dim = attention.head_dim
        self.hidden = config.hidden_size
        self.scale = math.sqrt(self.head_dim)
        # bigdl runs Qwen2 (sdpa) through SDPA and Llama (eager) through matmul/softmax.
        self.sdpa = config.model_type == "qwen2"

    @classmethod
    def for_model(cls, model: Any) -> DecodeStep | None:
        config = getattr(model, "config", None)
        if config is None or getattr(config, "model_type", None) not in _LLAMA_SHAPED:
            return None
        if (
            getattr(config, "hidden_act", None) != "silu"
            or getattr(config, "pretraining_tp", 1) > 1
        ):
            return None
        if getattr(config, "use_sliding_window", False):
            return None
        # The attention each mirrors: Qwen2 as transformers picks it, Llama as our
        # manifests load it (bigdl's Llama prefill without "eager" has no causal mask).
        wanted = {"qwen2": "sdpa", "llama": "eager"}[config.model_type]
        if getattr(config, "_attn_implementation", None) != wanted:
            return None
        base = getattr(model, "model", None)
        if base is None or not hasattr(base, "layers") or not hasattr(base, "norm"):
            return None
        rotaries = {id(layer.self_attn.rotary_emb) for layer in base.layers}
        if len(rotaries) != 1:  # share_rotary_tables() has made them one
            return None
        if type(base.layers[0].self_attn.rotary_emb).__name__ not in _PLAIN_ROTARY:
            return None  # scaled variants recompute their tables per length
        layers = []
        for layer in base.layers:
            attention, mlp = layer.self_attn, layer.mlp
            qkv = bigdl.int4_matvec([attention.q_proj, attention.k_proj, attention.v_proj])
            o_proj = bigdl.int4_matvec([attention.o_proj])
            gate_up = bigdl.int4_matvec([mlp.gate_proj, mlp.up_proj])
            down = bigdl.int4_matvec([mlp.down_proj])
            if qkv is None or o_proj is None or gate_up is None or down is None:
                return None
            layers.append(_Layer(layer, qkv, o_proj, gate_up, down))
        return cls(model, layers)

    def __call__(self, token_ids: Sequence[int], past: Any) -> Any:
        """The normed hidden states [1, n, hidden] of `token_ids` after `past`; appends to it.

        One token takes the fused kernel calls; a prompt chunk takes the layers' own
        linear forwards (bigdl's batch paths: AMX or dequantize -> GEMM) and skips the
        attention-score matmul bigdl's SDPA forward computes and throws away. The caller
        has made room in every layer's buffer (decode.reserve), except for a cache's
        first chunk, which is stored at its own size, as bigdl does (see _append).
        """
        import torch

        count = len(token_ids)
        position = past.key_cache[0].shape[2] if past.key_cache else 0
        x = self.embedding[torch.tensor([list(token_ids)])].float()
        # The rotary module extends its tables past their length, as in the reference.
        cos, sin = self.rotary(x, seq_len=position + count)
        cos = cos[position : position + count].view(1, 1, count, -1)
        sin = sin[position : position + count].view(1, 1, count, -1)
        mask = self._mask(x, position) if count > 1 else None
        for index, layer in enumerate(self.layers):
            q, k, v = self._project(layer, x)
            q = q * cos + _rotate_half(q) * sin
            k = k * cos + _rotate_half(k) * sin
            keys = _append(past.key_cache, index, k)
            values = _append(past.value_cache, index, v)
            attended = self._attend(q, keys, values, mask).transpose(1, 2)
            attended = attended.contiguous().view(1, count, self.heads * self.head_dim)
            post_norm = layer.modules.post_attention_layernorm
            if count == 1:
                x = x + layer.o_proj(attended.view(1, -1)).view(1, 1, -1)
                gate, up = layer.gate_up(_rms_norm(post_norm, x).view(1, -1)).chunk(2, -1)
                x = x + layer.down(torch.nn.functional.silu(gate) * up).view(1, 1, -1)
            else:
                x = x + layer.modules.self_attn.o_proj(attended)
                h = _rms_norm(post_norm, x)
                mlp = layer.modules.mlp
                x = x + mlp.down_proj(torch.nn.functional.silu(mlp.gate_proj(h)) * mlp.up_proj(h))
        past.seen_tokens = position + count
        return _rms_norm(self.final_norm, x)

    def _project(self, layer: _Layer, x: Any) -> tuple[Any, Any, Any]:
        """Queries, keys, values as [1, heads, n, head_dim], laid out as bigdl has them."""
        count, head_dim = x.shape[1], self.head_dim
        h = _rms_norm(layer.modules.input_layernorm, x)
        if count == 1:
            q_size, kv_size = self.heads * head_dim, self.kv_heads * head_dim
            qkv = layer.qkv(h.view(1, -1))
            q, k, v = qkv[:, :q_size], qkv[:, q_size : q_size + kv_size], qkv[:, q_size + kv_size :]
        else:
            attention = layer.modules.self_attn
            q, k, v = attention.q_proj(h), attention.k_proj(h), attention.v_proj(h)
        return (
            q.view(1, count, self.heads, head_dim).transpose(1, 2),
            k.view(1, count, self.kv_heads, head_dim).transpose(1, 2),
            v.view(1, count, self.kv_heads, head_dim).transpose(1, 2),
        )

    def _mask(self, x: Any, position: int) -> Any:
        """The 4D causal mask the model's own forward builds for a chunk (None: is_causal)."""
        from transformers.modeling_attn_mask_utils import (
            _prepare_4d_causal_attention_mask,
            _prepare_4d_causal_attention_mask_for_sdpa,
        )

        shape = (1, x.shape[1])
        if self.sdpa:
            return _prepare_4d_causal_attention_mask_for_sdpa(None, shape, x, position)
        return _prepare_4d_causal_attention_mask(None, shape, x, position)

    def _attend(self, q: Any, keys: Any, values: Any, mask: Any) -> Any:
        import torch

        groups = self.heads // self.kv_heads
        if groups > 1:
            keys = keys.repeat_interleave(groups, dim=1)
            values = values.repeat_interleave(groups, dim=1)
        if self.sdpa:
            causal = mask is None and q.shape[2] > 1
            return torch.nn.functional.scaled_dot_product_attention(
                q, keys, values, attn_mask=mask, is_causal=causal
            )
        weights = torch.matmul(q, keys.transpose(2, 3)) / self.scale
        if mask is not None:
            weights = weights + mask
        return torch.matmul(torch.softmax(weights, dim=-1), values)


def _rms_norm(norm: Any, x: Any) -> Any:
    """bigdl's RMSNorm on CPU (llama_rms_norm_forward), operation for operation."""
    import torch

    variance = x.pow(2).mean(-1, keepdim=True)
    return norm.weight * (x * torch.rsqrt(variance + norm.variance_epsilon))


def _rotate_half(x: Any) -> Any:
    import torch

    half = x.shape[-1] // 2
    return torch.cat((-x[..., half:], x[..., :half]), dim=-1)


def _append(cache: list[Any], layer: int, new: Any) -> Any:
    """Write positions after the cached ones, in place, as bigdl's append_kv_cache does.

    A layer's first keys and values get a mapping of their own (memory.mapped_empty), at
    their own size, as bigdl sizes them. Kept where they were computed, in the heap, they
    stayed resident after the cache outgrew them (malloc keeps freed blocks this size):
    +200 MB at the peak of a 946-token prompt (docs/BENCHMARKS.md).
    """
    if len(cache) <= layer:
        stored = memory.mapped_empty(tuple(new.shape), new.dtype)
        stored.copy_(new)
        cache.append(stored)
        return stored
    old = cache[layer]
    batch, heads, length, head_dim = old.shape
    count = new.shape[2]
    grown = old.as_strided(
        (batch, heads, length + count, head_dim), old.stride(), old.storage_offset()
    )
    grown[:, :, length:, :] = new
    cache[layer] = grown
    return grown
