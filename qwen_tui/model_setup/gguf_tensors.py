"""GGUF tensors as transformers Llama weights: dequantized, renamed, q/k rows un-permuted."""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import numpy as np

from qwen_tui.model_setup.gguf_metadata import GGUFImportError, LlamaShape

if TYPE_CHECKING:
    from gguf import GGUFReader, ReaderTensor

ProgressCallback = Callable[[str, float], None]
"""Called with a stage name the user can read and the overall fraction done (0.0 to 1.0)."""

# Per-layer GGUF tensor names -> transformers Llama names (the weight/bias suffix is kept).
_LAYER_TENSORS = {
    "attn_q": "self_attn.q_proj",
    "attn_k": "self_attn.k_proj",
    "attn_v": "self_attn.v_proj",
    "attn_output": "self_attn.o_proj",
    "ffn_gate": "mlp.gate_proj",
    "ffn_up": "mlp.up_proj",
    "ffn_down": "mlp.down_proj",
    "attn_norm": "input_layernorm",
    "ffn_norm": "post_attention_layernorm",
}
_GLOBAL_TENSORS = {
    "token_embd": "model.embed_tokens",
    "output_norm": "model.norm",
    "output": "lm_head",
}


def hf_tensor_name(gguf_name: str) -> str:
    """`blk.3.attn_q.weight` -> `model.layers.3.self_attn.q_proj.weight`."""
    base, _, suffix = gguf_name.rpartition(".")
    parts = base.split(".")
    if len(parts) == 3 and parts[0] == "blk" and parts[2] in _LAYER_TENSORS:
        return f"model.layers.{parts[1]}.{_LAYER_TENSORS[parts[2]]}.{suffix}"
    if base in _GLOBAL_TENSORS:
        return f"{_GLOBAL_TENSORS[base]}.{suffix}"
    raise GGUFImportError(f"the GGUF file holds a tensor this importer does not know: {gguf_name}")


def unpermute_rope_rows(weights: np.ndarray, n_head: int) -> np.ndarray:
    """Undo llama.cpp's reordering of q_proj/k_proj rows.

    llama.cpp's converter (`LlamaModel.permute`) interleaves the two rotary halves of each head,
    `w.reshape(n_head, 2, head_dim // 2, ...).swapaxes(1, 2)`, because its rope rotates
    adjacent pairs while transformers rotates the first half against the second. This is the
    inverse: read each head as (head_dim // 2, 2) pairs and put the halves back one after another.
    """
    rows = weights.shape[0]
    return (
        weights.reshape(n_head, rows // n_head // 2, 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def dequantize_tensor(tensor: ReaderTensor) -> np.ndarray:
    """A GGUF tensor as a float32 array in transformers order (GGUF lists dimensions reversed)."""
    from gguf.quants import dequantize

    try:
        values = dequantize(tensor.data, tensor.tensor_type)
    except NotImplementedError:
        raise GGUFImportError(
            f"tensor {tensor.name} uses the {tensor.tensor_type.name} format, "
            "which gguf-py cannot dequantize"
        ) from None
    torch_shape = tuple(int(n) for n in reversed(tensor.shape.tolist()))
    return values.astype(np.float32, copy=False).reshape(torch_shape)


def convert_tensors(
    reader: GGUFReader, shape: LlamaShape, report: ProgressCallback
) -> dict[str, np.ndarray]:
    """Every tensor, dequantized, renamed, q/k rows un-permuted; progress runs 0.05 -> 0.85."""
    converted: dict[str, np.ndarray] = {}
    count = len(reader.tensors)
    for index, tensor in enumerate(reader.tensors):
        name = hf_tensor_name(tensor.name)
        values = dequantize_tensor(tensor)
        if ".q_proj." in name:
            values = unpermute_rope_rows(values, shape.num_heads)
        elif ".k_proj." in name:
            values = unpermute_rope_rows(values, shape.num_kv_heads)
        converted[name] = np.ascontiguousarray(values)
        report("Dequantizing tensors", 0.05 + 0.8 * (index + 1) / count)
    if "model.embed_tokens.weight" not in converted:
        raise GGUFImportError("the GGUF file has no token embedding tensor (token_embd)")
    return converted
