"""Qwen v1 (`QWenLMHeadModel`, e.g. Qwen/Qwen-1_8B-Chat) -> a Qwen2ForCausalLM checkpoint.

Within `seq_length` tokens Qwen v1 is the Qwen2 architecture under other names (measured in
shared/notes/qwen-v1-as-qwen2.md): `c_attn` is q, k and v stacked by rows with their biases,
`w2` is the gate (it goes through silu) and `w1` the up projection, `c_proj` the o and down
projections. Its logn attention scaling and dynamic NTK rotary only act past `seq_length`,
so the converted model's context is capped there. Converting means the model runs without any
code from its repo, and through the engine's own decode step.

Nothing from the repo is imported: the safetensors files are read as bytes. Every converted
tensor is a contiguous byte range of a source tensor (a third of `c_attn` is a block of rows),
so the weights are copied range by range in small chunks and the peak RAM of converting stays
a few MB whatever the model's size. The tokenizer is rebuilt from the repo's `qwen.tiktoken`
(qwen_tiktoken.py) with all of v1's special tokens; the chat format stays v1's `make_context`,
which the installed model's manifest records (`chat_format`).
"""

from __future__ import annotations

import json
import shutil
import struct
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

from qwen_tui.model_files import QWEN_V1_ARCH
from qwen_tui.model_setup.qwen_tiktoken import (
    QWEN_V1_SPECIAL_TOKENS,
    TiktokenVocabError,
    build_qwen2_tokenizer,
)
from qwen_tui.units import human_bytes

_DTYPE_BYTES = {"F32": 4, "F16": 2, "BF16": 2}
_TORCH_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
_CHUNK = 8 * 2**20
# Files of the source repo that describe or license the model and carry no code.
_KEPT_FILES = ("generation_config.json", "LICENSE*", "NOTICE*")

Say = Callable[[str], None]


class QwenV1ConvertError(Exception):
    """The folder is a Qwen v1 model this converter cannot map exactly; says why."""


@dataclass(frozen=True)
class _Source:
    """A tensor in a safetensors file: where its bytes are and what they are."""

    file: Path
    start: int
    """Absolute byte offset of the tensor's data in `file`."""
    dtype: str
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        count = 1
        for dim in self.shape:
            count *= dim
        return count * _DTYPE_BYTES[self.dtype]


@dataclass(frozen=True)
class _Piece:
    """One output tensor: rows [row_start, row_start + shape[0]) of a source tensor."""

    name: str
    source: _Source
    row_start: int
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return _Source(self.source.file, 0, self.source.dtype, self.shape).nbytes

    @property
    def offset(self) -> int:
        row_bytes = self.nbytes // self.shape[0]
        return self.source.start + self.row_start * row_bytes


def is_qwen_v1(config: dict[str, Any]) -> bool:
    return QWEN_V1_ARCH in (config.get("architectures") or [])


def check_convertible(source_dir: Path, config: dict[str, Any]) -> None:
    """Raise QwenV1ConvertError unless the conversion is exact for this model."""
    hidden, heads = config.get("hidden_size"), config.get("num_attention_heads")
    problems = []
    if not isinstance(hidden, int) or not isinstance(heads, int) or hidden % heads:
        problems.append("hidden_size and num_attention_heads are missing or do not divide")
    elif config.get("kv_channels", hidden // heads) * heads != hidden:
        problems.append("kv_channels x heads differs from hidden_size")
    if config.get("rotary_pct", 1.0) != 1.0:
        problems.append("rotary_pct is not 1")
    if not config.get("no_bias", True):
        problems.append("it has biases besides c_attn's")
    if config.get("use_cache_quantization"):
        problems.append("it quantizes its KV cache")
    if "visual" in config:
        problems.append("it is a vision model (Qwen-VL)")
    if not (source_dir / "qwen.tiktoken").is_file():
        problems.append("qwen.tiktoken is missing")
    if not _weight_files(source_dir):
        problems.append("it has no .safetensors weights")
    if problems:
        raise QwenV1ConvertError(
            f"{source_dir.name} is a Qwen v1 model qwen-tui cannot convert: " + "; ".join(problems)
        )


def context_limit(config: dict[str, Any]) -> int:
    """Tokens within which the conversion is exact: v1's logn/NTK act only past seq_length."""
    return int(config.get("seq_length") or config.get("max_position_embeddings") or 2048)


def qwen2_config(config: dict[str, Any], torch_dtype: str) -> dict[str, Any]:
    """Qwen2ForCausalLM config.json of the same model."""
    limit = context_limit(config)
    layers = config["num_hidden_layers"]
    return {
        "architectures": ["Qwen2ForCausalLM"],
        "model_type": "qwen2",
        "hidden_size": config["hidden_size"],
        # v1 states the width of w1 and w2 together
        "intermediate_size": config["intermediate_size"] // 2,
        "num_hidden_layers": layers,
        "num_attention_heads": config["num_attention_heads"],
        "num_key_value_heads": config["num_attention_heads"],
        "hidden_act": "silu",
        "max_position_embeddings": limit,
        "rope_theta": float(config.get("rotary_emb_base", 10000)),
        "rms_norm_eps": config.get("layer_norm_epsilon", 1e-6),
        "vocab_size": config["vocab_size"],
        "tie_word_embeddings": False,
        "use_sliding_window": False,
        "sliding_window": limit,
        "max_window_layers": layers,
        "attention_dropout": 0.0,
        "initializer_range": config.get("initializer_range", 0.02),
        "bos_token_id": 151643,
        "eos_token_id": 151643,
        "use_cache": True,
        "torch_dtype": torch_dtype,
        "transformers_version": "4.37.2",
    }


def _weight_files(source_dir: Path) -> list[Path]:
    return sorted(p for p in source_dir.glob("*.safetensors") if p.is_file())


def read_safetensors_header(path: Path) -> dict[str, _Source]:
    """Every tensor of a safetensors file, from its header (the format's documented layout:
    8-byte little-endian header length, JSON header, then the data)."""
    with path.open("rb") as f:
        (length,) = struct.unpack("<Q", f.read(8))
        header = json.loads(f.read(length))
    found = {}
    for name, info in header.items():
        if name == "__metadata__":
            continue
        if info["dtype"] not in _DTYPE_BYTES:
            raise QwenV1ConvertError(f"{path.name}: tensor {name} has dtype {info['dtype']}")
        begin, end = info["data_offsets"]
        source = _Source(path, 8 + length + begin, info["dtype"], tuple(info["shape"]))
        if source.nbytes != end - begin:
            raise QwenV1ConvertError(f"{path.name}: tensor {name} has a damaged header")
        found[name] = source
    return found


def plan_tensors(sources: dict[str, _Source], layers: int) -> list[_Piece]:
    """The Qwen2 tensors and the rows of v1's that they are (see the module docstring)."""

    def whole(name: str, v1: str) -> _Piece:
        return _Piece(name, _need(v1), 0, _need(v1).shape)

    def third(name: str, v1: str, index: int) -> _Piece:
        source = _need(v1)
        rows = source.shape[0] // 3
        if rows * 3 != source.shape[0]:
            raise QwenV1ConvertError(f"{v1} has {source.shape[0]} rows: not q, k and v")
        return _Piece(name, source, index * rows, (rows, *source.shape[1:]))

    def _need(v1: str) -> _Source:
        if v1 not in sources:
            raise QwenV1ConvertError(f"the weights have no tensor {v1}")
        return sources[v1]

    pieces = [whole("model.embed_tokens.weight", "transformer.wte.weight")]
    for n in range(layers):
        v1, qwen2 = f"transformer.h.{n}.", f"model.layers.{n}."
        pieces.append(whole(qwen2 + "input_layernorm.weight", v1 + "ln_1.weight"))
        for index, part in enumerate("qkv"):
            for kind in ("weight", "bias"):
                name = f"{qwen2}self_attn.{part}_proj.{kind}"
                pieces.append(third(name, f"{v1}attn.c_attn.{kind}", index))
        pieces += [
            whole(qwen2 + "self_attn.o_proj.weight", v1 + "attn.c_proj.weight"),
            whole(qwen2 + "post_attention_layernorm.weight", v1 + "ln_2.weight"),
            whole(qwen2 + "mlp.gate_proj.weight", v1 + "mlp.w2.weight"),
            whole(qwen2 + "mlp.up_proj.weight", v1 + "mlp.w1.weight"),
            whole(qwen2 + "mlp.down_proj.weight", v1 + "mlp.c_proj.weight"),
        ]
    pieces += [
        whole("model.norm.weight", "transformer.ln_f.weight"),
        whole("lm_head.weight", "lm_head.weight"),
    ]
    return pieces


def write_safetensors(pieces: list[_Piece], out: Path) -> None:
    """One safetensors file of `pieces`, copied from their sources chunk by chunk."""
    header: dict[str, Any] = {"__metadata__": {"format": "pt"}}
    offset = 0
    for piece in pieces:
        header[piece.name] = {
            "dtype": piece.source.dtype,
            "shape": list(piece.shape),
            "data_offsets": [offset, offset + piece.nbytes],
        }
        offset += piece.nbytes
    encoded = json.dumps(header, separators=(",", ":")).encode()
    encoded += b" " * (-len(encoded) % 8)  # data starts 8-byte aligned, as safetensors writes it
    with out.open("wb") as f:
        f.write(struct.pack("<Q", len(encoded)))
        f.write(encoded)
        for piece in pieces:
            with piece.source.file.open("rb") as src:
                for chunk in _read_range(src, piece.offset, piece.nbytes):
                    f.write(chunk)


def _read_range(src: BinaryIO, start: int, length: int) -> Iterator[bytes]:
    src.seek(start)
    while length > 0:
        chunk = src.read(min(_CHUNK, length))
        if not chunk:
            raise QwenV1ConvertError(f"{Path(src.name).name} ends early: the download is damaged")
        length -= len(chunk)
        yield chunk


def convert_qwen_v1(source_dir: Path, dest: Path, *, say: Say | None = None) -> dict[str, Any]:
    """Write the Qwen2 checkpoint of the Qwen v1 model in `source_dir` to `dest` (created);
    returns its config. Raises QwenV1ConvertError in words."""
    report = say or (lambda _text: None)
    config = json.loads((source_dir / "config.json").read_text(encoding="utf-8"))
    check_convertible(source_dir, config)
    sources: dict[str, _Source] = {}
    for path in _weight_files(source_dir):
        sources.update(read_safetensors_header(path))
    pieces = plan_tensors(sources, config["num_hidden_layers"])
    dtype = sources["transformer.wte.weight"].dtype
    dest.mkdir(parents=True, exist_ok=True)
    report("building the tokenizer from qwen.tiktoken")
    try:
        build_qwen2_tokenizer(
            source_dir / "qwen.tiktoken",
            dest,
            special_tokens=QWEN_V1_SPECIAL_TOKENS,
            model_max_length=context_limit(config),
        )
    except TiktokenVocabError as error:
        raise QwenV1ConvertError(str(error)) from None
    total = sum(piece.nbytes for piece in pieces)
    report(f"writing {human_bytes(total, 'GB', digits=1)} of weights in the Qwen2 layout")
    write_safetensors(pieces, dest / "model.safetensors")
    new_config = qwen2_config(config, _TORCH_DTYPES[dtype])
    (dest / "config.json").write_text(json.dumps(new_config, indent=2), encoding="utf-8")
    for pattern in _KEPT_FILES:
        for path in source_dir.glob(pattern):
            if path.is_file():
                shutil.copy2(path, dest / path.name)
    return new_config
