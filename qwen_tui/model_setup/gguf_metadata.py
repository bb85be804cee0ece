"""A GGUF file's header read: the Llama shape and the stored vocabulary; any gap is an error.

Only metadata is read here (gguf-py memory-maps the tensors; gguf_tensors.py converts them).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from gguf import GGUFReader


class GGUFImportError(Exception):
    """The GGUF file cannot be imported; the message is meant for the user."""


@dataclass(frozen=True)
class LlamaShape:
    """The hyper-parameters of a Llama model, read from the `llama.*` GGUF metadata."""

    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    intermediate_size: int
    context_length: int
    rope_theta: float
    rms_norm_eps: float
    rope_scaling: dict[str, Any] | None = None

    @property
    def head_dim(self) -> int:
        return self.hidden_size // self.num_heads


@dataclass(frozen=True)
class GGUFVocab:
    """The tokenizer stored in a GGUF file (`tokenizer.*` metadata)."""

    tokens: list[str]
    token_types: list[int]
    merges: list[str]
    pre: str
    bos_id: int | None
    eos_id: int | None
    unk_id: int | None
    pad_id: int | None
    add_bos: bool
    chat_template: str | None

    def token(self, token_id: int | None) -> str | None:
        return None if token_id is None else self.tokens[token_id]


def open_reader(gguf_path: Path) -> GGUFReader:
    from gguf import GGUFReader

    if not gguf_path.is_file():
        raise GGUFImportError(f"{gguf_path}: no such file")
    try:
        return GGUFReader(gguf_path)
    except (ValueError, OSError, IndexError, KeyError) as exc:
        # gguf-py raises these for a wrong magic number and for data cut short alike.
        if "magic" in str(exc):
            raise GGUFImportError(f"{gguf_path} is not a GGUF file") from None
        raise GGUFImportError(
            f"{gguf_path} is damaged or truncated (an incomplete download?). Detail: {exc}"
        ) from None


def _field(reader: GGUFReader, key: str, default: Any = ...) -> Any:
    field = reader.fields.get(key)
    if field is None:
        if default is ...:
            raise GGUFImportError(f"the GGUF file lacks the {key!r} metadata entry")
        return default
    try:
        return field.contents()
    except (ValueError, IndexError) as exc:
        raise GGUFImportError(f"the GGUF metadata entry {key!r} is damaged: {exc}") from None


def check_architecture(reader: GGUFReader, gguf_path: Path) -> None:
    arch = _field(reader, "general.architecture")
    if arch != "llama":
        raise GGUFImportError(
            f"only Llama-architecture GGUF files can be imported; {gguf_path.name} is {arch!r}"
        )
    if any(t.name.startswith("rope_freqs") for t in reader.tensors):
        # Llama 3.1-style rope frequency factors: transformers 4.37 cannot express them.
        raise GGUFImportError(
            f"{gguf_path.name} uses Llama 3.1 rope scaling, "
            "which transformers 4.37 does not support"
        )


def _float32_value(value: float) -> float:
    """GGUF stores floats as float32: 1e-5 reads back as 9.9999997e-06; keep the short form."""
    return float(str(np.float32(value)))


def read_llama_shape(reader: GGUFReader) -> LlamaShape:
    heads = int(_field(reader, "llama.attention.head_count"))
    hidden = int(_field(reader, "llama.embedding_length"))
    shape = LlamaShape(
        hidden_size=hidden,
        num_layers=int(_field(reader, "llama.block_count")),
        num_heads=heads,
        num_kv_heads=int(_field(reader, "llama.attention.head_count_kv", heads)),
        intermediate_size=int(_field(reader, "llama.feed_forward_length")),
        context_length=int(_field(reader, "llama.context_length")),
        rope_theta=_float32_value(_field(reader, "llama.rope.freq_base", 10000.0)),
        rms_norm_eps=_float32_value(_field(reader, "llama.attention.layer_norm_rms_epsilon")),
        rope_scaling=_rope_scaling(reader),
    )
    key_length = _field(reader, "llama.attention.key_length", shape.head_dim)
    if hidden % heads or int(key_length) != shape.head_dim:
        raise GGUFImportError(
            "this GGUF's attention head size differs from hidden size / heads, "
            "which transformers 4.37's Llama cannot load"
        )
    return shape


def _rope_scaling(reader: GGUFReader) -> dict[str, Any] | None:
    kind = _field(reader, "llama.rope.scaling.type", "none")
    if kind == "none":
        return None
    if kind != "linear":
        raise GGUFImportError(f"rope scaling {kind!r} is not supported (only 'linear')")
    factor = _float32_value(_field(reader, "llama.rope.scaling.factor"))
    return {"type": "linear", "factor": factor}


def read_vocab(reader: GGUFReader) -> GGUFVocab:
    model = _field(reader, "tokenizer.ggml.model")
    if model != "gpt2":
        raise GGUFImportError(
            "only byte-level BPE (gpt2-style) GGUF tokenizers can be imported; "
            f"this one is {model!r}"
        )
    tokens = _field(reader, "tokenizer.ggml.tokens")
    return GGUFVocab(
        tokens=tokens,
        token_types=_field(reader, "tokenizer.ggml.token_type", [1] * len(tokens)),
        merges=_field(reader, "tokenizer.ggml.merges"),
        pre=_field(reader, "tokenizer.ggml.pre", "default"),
        bos_id=_field(reader, "tokenizer.ggml.bos_token_id", None),
        eos_id=_field(reader, "tokenizer.ggml.eos_token_id", None),
        unk_id=_field(reader, "tokenizer.ggml.unknown_token_id", None),
        pad_id=_field(reader, "tokenizer.ggml.padding_token_id", None),
        add_bos=bool(_field(reader, "tokenizer.ggml.add_bos_token", False)),
        chat_template=_field(reader, "tokenizer.chat_template", None),
    )
