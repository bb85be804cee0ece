"""One decode step of a Llama-shaped model (Qwen2, Llama) without the module stack.

After the prompt, every new token runs the whole decoder for one position. Through
transformers and bigdl's replacement forwards that costs ~170 module calls, each with
shape checks, dtype branches and ctypes argument building: profiled on the 1.8B model,
a third of each token's time was that Python, two thirds the INT4 matrix products.
Here the same operations run straight, with each layer's INT4 weights called through
a prebuilt kernel call (bigdl.int4_matvec) and q/k/v and gate/up fused into one matrix.

It mirrors the reference computation operation by operation (bigdl's RMSNorm, rotary
tables, cache layout and attention), so greedy output is the same token for token;
tests/engine/test_decode_step.py checks that against the model's own forward.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from qwen_tui.engine import bigdl

# Architectures whose decoder layer is exactly: RMSNorm, q/k/v with rotary, attention,
# o_proj, residual, RMSNorm, SiLU-gated MLP, residual.
_LLAMA_SHAPED = {"llama", "qwen2"}
_PLAIN_ROTARY = {"LlamaRotaryEmbedding", "Qwen2RotaryEmbedding"}


@dataclass
class _Layer:
    input_norm: Any
    qkv: Callable[[Any], Any]
    o_proj: Callable[[Any], Any]
    post_norm: Any
    gate_up: Callable[[Any], Any]
    down: Callable[[Any], Any]


class DecodeStep:
    """Feeds one token on top of a KV cache and returns the last hidden state (normed).

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
        # bigdl runs Qwen2 through SDPA when transformers chose it, everything else
        # through its matmul/softmax attention; either is kept, so results are identical.
        self.sdpa = config.model_type == "qwen2" and config._attn_implementation == "sdpa"

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
            layers.append(
                _Layer(
                    layer.input_layernorm,
                    qkv,
                    o_proj,
                    layer.post_attention_layernorm,
                    gate_up,
                    down,
                )
            )
        return cls(model, layers)

    def __call__(self, token_id: int, past: Any) -> Any:
        """The normed hidden state [1, 1, hidden] of `token_id` after `past`; appends to it.

        The caller has made room in every layer's buffer (decode.reserve).
        """
        import torch

        position = past.key_cache[0].shape[2]
        x = self.embedding[token_id].float().view(1, self.hidden)
        # The rotary module extends its tables past their length, as in the reference.
        cos, sin = self.rotary(x, seq_len=position + 1)
        cos, sin = cos[position].view(1, 1, 1, -1), sin[position].view(1, 1, 1, -1)
        q_size, kv_size = self.heads * self.head_dim, self.kv_heads * self.head_dim
        for index, layer in enumerate(self.layers):
            qkv = layer.qkv(_rms_norm(layer.input_norm, x))
            q = qkv[:, :q_size].view(1, 1, self.heads, self.head_dim).transpose(1, 2)
            k = qkv[:, q_size : q_size + kv_size].view(1, 1, self.kv_heads, self.head_dim)
            v = qkv[:, q_size + kv_size :].view(1, 1, self.kv_heads, self.head_dim)
            q = q * cos + _rotate_half(q) * sin
            k = k.transpose(1, 2)
            k = k * cos + _rotate_half(k) * sin
            keys = _append(past.key_cache, index, k)
            values = _append(past.value_cache, index, v.transpose(1, 2))
            attended = self._attend(q, keys, values)
            x = x + layer.o_proj(attended.transpose(1, 2).reshape(1, q_size))
            gate_up = layer.gate_up(_rms_norm(layer.post_norm, x))
            gate, up = gate_up.chunk(2, dim=-1)
            x = x + layer.down(torch.nn.functional.silu(gate) * up)
        past.seen_tokens = position + 1
        return _rms_norm(self.final_norm, x).view(1, 1, self.hidden)

    def _attend(self, q: Any, keys: Any, values: Any) -> Any:
        import torch

        groups = self.heads // self.kv_heads
        if groups > 1:
            keys = keys.repeat_interleave(groups, dim=1)
            values = values.repeat_interleave(groups, dim=1)
        if self.sdpa:
            return torch.nn.functional.scaled_dot_product_attention(q, keys, values)
        weights = torch.matmul(q, keys.transpose(2, 3)) / self.scale
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
    """Write one position after the cached ones, in place, as bigdl's append_kv_cache does."""
    old = cache[layer]
    batch, heads, length, head_dim = old.shape
    grown = old.as_strided((batch, heads, length + 1, head_dim), old.stride(), old.storage_offset())
    grown[:, :, length : length + 1, :] = new
    cache[layer] = grown
    return grown
