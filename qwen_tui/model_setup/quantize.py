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

from qwen_tui.engine.code_folder import importable_folder
from qwen_tui.engine.prompt import QWEN_V1_CHAT_FORMAT
from qwen_tui.low_bit import LOW_BIT_FORMATS
from qwen_tui.model_files import (
    QWEN_V1_ARCH,
    STAGING_SUFFIX,
    InstalledModel,
    ModelManifest,
    write_manifest,
)
from qwen_tui.model_setup.installed import ModelNameError, check_model_name, folder_size
from qwen_tui.model_setup.qwen_v1_convert import (
    QwenV1ConvertError,
    check_convertible,
    convert_qwen_v1,
    is_qwen_v1,
)
from qwen_tui.units import MB, human_bytes

log = logging.getLogger(__name__)

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
# The Qwen2 checkpoint of a Qwen v1 model, inside the staging folder while quantizing.
_CONVERTED = "qwen2-checkpoint"


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


def converts_from_qwen_v1(source_dir: Path, config: dict) -> bool:
    """A Qwen v1 model we turn into Qwen2 at setup, so that none of its code runs."""
    if not is_qwen_v1(config):
        return False
    try:
        check_convertible(source_dir, config)
    except QwenV1ConvertError as error:
        log.info("%s", error)
        return False
    return True


def needs_remote_code(source_dir: Path, config: dict) -> bool:
    if converts_from_qwen_v1(source_dir, config):
        return False
    return bool(config.get("auto_map")) or any(source_dir.glob("*.py"))


def estimate_quantize_ram(source_dir: Path, *, streamed: bool = False) -> int:
    """Peak bytes of quantizing: whole, the weights loaded in bf16 plus the INT4 copy and
    overhead; streamed, the quantized model (its bf16 embedding, INT4 linears) and one block.
    Measured on the 1.8B model (3.7 GB of bf16 weights): 5.3 GB whole, 1.9 GB streamed."""
    weights = sum(p.stat().st_size for p in source_dir.glob("*.safetensors")) or sum(
        p.stat().st_size for p in source_dir.glob("*.bin")
    )
    return int(weights * (0.5 if streamed else 1.3)) + 512 * MB


def check_ram(needed: int) -> None:
    import psutil

    available = psutil.virtual_memory().available
    if available < needed:
        raise QuantizeError(
            f"quantizing needs about {human_bytes(needed, 'GB', digits=1)} of free RAM, "
            f"{human_bytes(available, 'GB', digits=1)} is available: "
            "close other programs or use a smaller model"
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
    try:
        check_model_name(name)
    except ModelNameError as error:
        raise QuantizeError(str(error)) from None
    config = read_config(source_dir)
    convert = converts_from_qwen_v1(source_dir, config)
    if needs_remote_code(source_dir, config) and not trust_remote_code:
        why = _unconvertible_reason(source_dir, config)
        raise QuantizeError(
            f"{source} ships its own model code, which would run on this machine: "
            f"pass --trust-remote-code if you trust it{why}"
        )
    check_ram(
        estimate_quantize_ram(source_dir, streamed=_streams(source_dir, config, convert, low_bit))
    )
    models_dir.mkdir(parents=True, exist_ok=True)
    final, staging = models_dir / name, models_dir / (name + STAGING_SUFFIX)
    shutil.rmtree(staging, ignore_errors=True)  # left by an interrupted run: start over
    staging.mkdir()
    started = time.perf_counter()
    checkpoint = source_dir
    try:
        if convert:
            # Inside the staging folder: an interrupted run leaves nothing that looks usable.
            checkpoint = staging / _CONVERTED
            say("converting Qwen v1 to the Qwen2 layout (no code from the repo runs)", None)
            config = convert_qwen_v1(source_dir, checkpoint, say=lambda text: say(text, None))
            trust_remote_code = False
        model_type = str(config.get("model_type", ""))
        attn = "eager" if model_type in EAGER_MODEL_TYPES else None
        say("quantizing", None)
        with importable_folder(checkpoint, runs_code=trust_remote_code) as folder:
            _quantize_weights(folder, staging, config, low_bit, trust_remote_code, attn)
            _save_tokenizer(folder, staging, trust_remote_code)
        copy_side_files(checkpoint, staging)
        context_length = context_length_of(checkpoint, config)
        shutil.rmtree(staging / _CONVERTED, ignore_errors=True)
    except QwenV1ConvertError as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise QuantizeError(str(error)) from None
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
        context_length=context_length,
        trust_remote_code=trust_remote_code,
        chat_format=QWEN_V1_CHAT_FORMAT if convert else None,
        converted_from=QWEN_V1_ARCH if convert else None,
        optimize_model=True,
        attn_implementation=attn,
        revision=revision,
        size_bytes=folder_size(staging),
        created=time.time(),
        versions=_versions(bigdl.bigdl_version()),
    )
    if convert:
        say(f"Qwen v1 converted: context is {manifest.context_length} tokens (<= seq_length)", None)
    write_manifest(staging, manifest)
    if final.exists():
        shutil.rmtree(final)
    staging.rename(final)
    log.info("quantized %s in %.1f s", source, time.perf_counter() - started)
    say("done", 1.0)
    return InstalledModel(final, manifest)


def _streams(source_dir: Path, config: dict, convert: bool, low_bit: str) -> bool:
    """Whether quantizing will go tensor by tensor (a converted Qwen v1 checkpoint always can)."""
    from qwen_tui.engine.streamed_quantize import STREAMED_LOW_BITS, streaming_blocker

    if convert:
        return low_bit in STREAMED_LOW_BITS
    return streaming_blocker(source_dir, config, low_bit) is None


def _quantize_weights(
    folder: Path,
    staging: Path,
    config: dict,
    low_bit: str,
    trust_remote_code: bool,
    attn: str | None,
) -> None:
    """Tensor by tensor where the checkpoint allows (peak RAM about the quantized model's
    size), else bigdl's whole-model load (remote code, .bin weights, a checkpoint whose
    tensors do not match the model's exactly: transformers fills or drops those)."""
    from qwen_tui.engine import bigdl
    from qwen_tui.engine.streamed_quantize import (
        StreamingUnsupported,
        quantize_streamed,
        streaming_blocker,
    )

    blocker = streaming_blocker(folder, config, low_bit)
    if blocker is None:
        try:
            quantize_streamed(folder, staging, low_bit=low_bit, attn_implementation=attn)
            return
        except StreamingUnsupported as error:
            blocker = str(error)
    log.info("quantizing the whole model at once: %s", blocker)
    bigdl.quantize_checkpoint(
        folder,
        staging,
        low_bit=low_bit,
        trust_remote_code=trust_remote_code,
        attn_implementation=attn,
    )


def _unconvertible_reason(source_dir: Path, config: dict) -> str:
    """Why a Qwen v1 folder needs its code after all (the converter's sentence), or ""."""
    if not is_qwen_v1(config):
        return ""
    try:
        check_convertible(source_dir, config)
    except QwenV1ConvertError as error:
        return f" ({error})"
    return ""


def _save_tokenizer(source_dir: Path, out_dir: Path, trust_remote_code: bool) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(str(source_dir), trust_remote_code=trust_remote_code)
    tokenizer.save_pretrained(str(out_dir))


def _versions(bigdl_version: str) -> dict[str, str]:
    import transformers

    return {"bigdl-llm": bigdl_version, "transformers": transformers.__version__}
