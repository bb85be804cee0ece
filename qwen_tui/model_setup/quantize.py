"""Quantize a full-precision checkpoint folder once into an installed model folder.

Built in `<models>/<name>.partial/` and renamed into place only after the manifest is
written, so a killed quantize never leaves a folder that looks like a usable model.
"""

from __future__ import annotations

import json
import logging
import shutil
import time
from collections.abc import Callable
from pathlib import Path

from qwen_tui.model_setup.installed import (
    STAGING_SUFFIX,
    InstalledModel,
    ModelManifest,
    folder_size,
    write_manifest,
)

log = logging.getLogger(__name__)

LOW_BIT_FORMATS = ("sym_int4", "asym_int4", "sym_int8", "nf4")
# Architectures whose attention must run "eager": with bigdl + transformers 4.37 the SDPA
# path drops the causal mask during prefill and the model talks nonsense (measured).
EAGER_MODEL_TYPES = frozenset({"llama", "mistral"})
# Files a quantized folder needs besides the weights: tokenizer, chat template, remote code.
_SIDE_FILES = (
    "*.py",
    "*.tiktoken",
    "tokenizer*",
    "vocab*",
    "merges.txt",
    "special_tokens_map.json",
    "added_tokens.json",
    "generation_config.json",
    "*.model",
)

Progress = Callable[[str, float | None], None]


class QuantizeError(Exception):
    """Quantizing cannot start or failed; the message is meant for the user."""


def read_config(source_dir: Path) -> dict:
    try:
        return json.loads((source_dir / "config.json").read_text(encoding="utf-8"))
    except (OSError, ValueError) as error:
        raise QuantizeError(f"{source_dir} is not a transformers model folder: {error}") from None


def context_length_of(source_dir: Path, config: dict) -> int:
    """Tokens the model handles: its position limit, or the chat window its authors set."""
    length = next(
        (
            config[k]
            for k in ("max_position_embeddings", "seq_length", "n_positions")
            if k in config
        ),
        2048,
    )
    try:
        generation = json.loads((source_dir / "generation_config.json").read_text("utf-8"))
        length = min(length, int(generation.get("max_window_size", length)))
    except (OSError, ValueError, TypeError):
        pass
    return int(length)


def needs_remote_code(source_dir: Path, config: dict) -> bool:
    return bool(config.get("auto_map")) or any(source_dir.glob("*.py"))


def estimate_quantize_ram(source_dir: Path) -> int:
    """Peak bytes of quantizing: the weights loaded in bf16 plus the INT4 copy and overhead."""
    weights = sum(p.stat().st_size for p in source_dir.glob("*.safetensors")) or sum(
        p.stat().st_size for p in source_dir.glob("*.bin")
    )
    return int(weights * 1.3) + 512 * 2**20


def check_ram(needed: int) -> None:
    import psutil

    available = psutil.virtual_memory().available
    if available < needed:
        raise QuantizeError(
            f"quantizing needs about {needed / 2**30:.1f} GB of free RAM, "
            f"{available / 2**30:.1f} GB is available: close other programs or use a smaller model"
        )


def copy_side_files(source_dir: Path, out_dir: Path) -> None:
    """Make the quantized folder self-contained: it must load with the hub unreachable."""
    for pattern in _SIDE_FILES:
        for path in source_dir.glob(pattern):
            if path.is_file() and not (out_dir / path.name).exists():
                # copyfile, not copy2: the copy takes our private mode, not the source's.
                shutil.copyfile(path, out_dir / path.name)


def quantize_model(
    source_dir: Path,
    models_dir: Path,
    *,
    name: str,
    source: str,
    low_bit: str = "sym_int4",
    trust_remote_code: bool = False,
    revision: str | None = None,
    progress: Progress | None = None,
) -> InstalledModel:
    """Quantize `source_dir` into `models_dir/name`. Raises QuantizeError in words."""
    from qwen_tui.engine import bigdl

    say = progress or (lambda _stage, _fraction: None)
    if low_bit not in LOW_BIT_FORMATS:
        raise QuantizeError(f"unknown low-bit format {low_bit!r}: use one of {LOW_BIT_FORMATS}")
    config = read_config(source_dir)
    if needs_remote_code(source_dir, config) and not trust_remote_code:
        raise QuantizeError(
            f"{source} ships its own model code, which would run on this machine: "
            "pass --trust-remote-code if you trust it"
        )
    check_ram(estimate_quantize_ram(source_dir))
    models_dir.mkdir(parents=True, exist_ok=True)
    final, staging = models_dir / name, models_dir / (name + STAGING_SUFFIX)
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run: start over
    staging.mkdir()
    model_type = str(config.get("model_type", ""))
    attn = "eager" if model_type in EAGER_MODEL_TYPES else None
    say("quantizing", None)
    started = time.perf_counter()
    try:
        bigdl.quantize_checkpoint(
            source_dir,
            staging,
            low_bit=low_bit,
            trust_remote_code=trust_remote_code,
            attn_implementation=attn,
        )
        copy_side_files(source_dir, staging)
        _save_tokenizer(source_dir, staging, trust_remote_code)
    except QuantizeError:
        raise
    except Exception as error:
        log.exception("quantizing %s failed", source_dir)
        shutil.rmtree(staging, ignore_errors=True)
        raise QuantizeError(
            f"quantizing {source} failed: {type(error).__name__}: {error}"
        ) from None
    manifest = ModelManifest(
        name=name,
        source=source,
        arch=(config.get("architectures") or ["?"])[0],
        model_type=model_type,
        low_bit=low_bit,
        context_length=context_length_of(source_dir, config),
        trust_remote_code=trust_remote_code,
        optimize_model=True,
        attn_implementation=attn,
        revision=revision,
        size_bytes=folder_size(staging),
        created=time.time(),
        versions=_versions(bigdl.bigdl_version()),
    )
    write_manifest(staging, manifest)
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    log.info("quantized %s in %.1f s", source, time.perf_counter() - started)
    say("done", 1.0)
    return InstalledModel(final, manifest)


def _save_tokenizer(source_dir: Path, out_dir: Path, trust_remote_code: bool) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source_dir), trust_remote_code=trust_remote_code)
    tokenizer.save_pretrained(str(out_dir))


def _versions(bigdl_version: str) -> dict[str, str]:
    import transformers

    return {"bigdl-llm": bigdl_version, "transformers": transformers.__version__}
