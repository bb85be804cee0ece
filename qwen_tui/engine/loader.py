"""Load an installed model into a LocalEngine, turning every failure into a sentence."""

from __future__ import annotations

import logging
from collections.abc import Callable

from qwen_tui.engine.base import EngineError, ModelDamagedError, ModelInfo
from qwen_tui.engine.code_folder import importable_folder
from qwen_tui.engine.cpu import default_threads
from qwen_tui.engine.decode_step import DecodeStep
from qwen_tui.engine.local import LocalEngine
from qwen_tui.model_files import InstalledModel

log = logging.getLogger(__name__)

# What `save_low_bit` writes; a folder missing one of them cannot load.
_WEIGHT_FILES = ("pytorch_model.bin", "model.safetensors")
_REQUIRED_FILES = ("config.json", "load_keys.json")


def check_model_files(model: InstalledModel) -> None:
    """Fail early, in words, when files of an installed model are gone."""
    missing = [name for name in _REQUIRED_FILES if not (model.path / name).is_file()]
    if not any((model.path / name).is_file() for name in _WEIGHT_FILES):
        missing.append(_WEIGHT_FILES[0])
    if missing:
        raise ModelDamagedError(damaged_message(model, f"missing {', '.join(missing)}"))


def damaged_message(model: InstalledModel, detail: str) -> str:
    how = (
        f"qwen-tui setup {model.manifest.source}"
        if "/" in model.manifest.source
        else (f"qwen-tui import {model.manifest.source}")
    )
    return (
        f"model {model.name!r} is damaged ({detail}): remove it with `qwen-tui rm {model.name}` "
        f"and run setup again (`{how}`)"
    )


def load_engine(
    model: InstalledModel,
    *,
    threads: int = 0,
    progress: Callable[[str], None] | None = None,
) -> LocalEngine:
    """Load `model` (slow: seconds). Raises EngineError subclasses with user-facing messages."""
    from qwen_tui.engine import bigdl, memory, prompt

    check_model_files(model)
    bigdl.quiet_libraries()
    manifest = model.manifest
    say = progress or (lambda _text: None)
    say(f"loading {model.name}")
    try:
        from transformers import AutoTokenizer

        with importable_folder(model.path, runs_code=manifest.trust_remote_code) as folder:
            tokenizer = AutoTokenizer.from_pretrained(
                str(folder), trust_remote_code=manifest.trust_remote_code
            )
            net = bigdl.load_quantized(
                folder,
                optimize_model=manifest.optimize_model,
                trust_remote_code=manifest.trust_remote_code,
                attn_implementation=manifest.attn_implementation,
            )
    except EngineError:
        raise
    except (OSError, EOFError, RuntimeError, ValueError, KeyError) as error:
        log.exception("loading %s failed", model.path)
        raise ModelDamagedError(
            damaged_message(model, f"{type(error).__name__}: {error}")
        ) from None
    net.eval()
    memory.release_free_memory()  # what loading freed: ~1 GB for the 1.8B model
    step = DecodeStep.for_model(net)
    info = ModelInfo(
        name=model.name,
        arch=manifest.arch,
        low_bit=manifest.low_bit,
        context_length=manifest.context_length,
        source=manifest.source,
        kernel=bigdl.loaded_kernel() or "",
    )
    say(f"{model.name} ready")
    return LocalEngine(
        net,
        tokenizer,
        prompt.format_for(tokenizer, manifest.chat_format),
        info,
        threads or default_threads(),
        step=step,
    )
