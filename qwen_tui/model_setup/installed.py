"""Making room for installed models: names for new model folders, sizes, removal.

The manifests and the listing of installed models live in qwen_tui.model_files (the engine
reads them too); the names below are re-exported for code that imports them from here.
"""

from __future__ import annotations

import shutil
from pathlib import Path

from qwen_tui.model_files import (
    MANIFEST_NAME,
    STAGING_SUFFIX,
    InstalledModel,
    ModelManifest,
    ModelNotFoundError,
    find_installed,
    list_installed,
    read_manifest,
    runs_qwen_v1_code,
    upgrade_hint,
    write_manifest,
)

# Re-exported: the benchmarks (and older imports) find the manifest names here.
__all__ = [
    "MANIFEST_NAME",
    "STAGING_SUFFIX",
    "InstalledModel",
    "ModelManifest",
    "ModelNameError",
    "ModelNotFoundError",
    "check_model_name",
    "find_installed",
    "folder_size",
    "list_installed",
    "model_name_for",
    "read_manifest",
    "remove_installed",
    "runs_qwen_v1_code",
    "upgrade_hint",
    "write_manifest",
]


class ModelNameError(ValueError):
    """A name that cannot be a model folder; the message says why."""


def check_model_name(name: str) -> None:
    """Any printable name works (dots, spaces, any script), as long as it is one folder."""
    problem = None
    if not name.strip():
        problem = "it is empty"
    elif name in (".", "..") or name.startswith("."):
        problem = "it starts with a dot"
    elif any(c in name for c in "/\\") or not name.isprintable():
        problem = "it has a slash or a control character"
    elif name.endswith(STAGING_SUFFIX):
        problem = f"it ends with {STAGING_SUFFIX}"
    elif len(name.encode()) > 200:
        problem = "it is longer than 200 bytes"
    if problem:
        raise ModelNameError(f"{name!r} cannot be a model name: {problem}")


def model_name_for(source: str) -> str:
    """Short folder-safe name from a repo id or path: Qwen/Qwen-1_8B-Chat -> qwen-1_8b-chat."""
    base = source.rstrip("/").rsplit("/", 1)[-1]
    for suffix in (".gguf", ".GGUF"):
        base = base.removesuffix(suffix)
    safe = "".join(c if c.isalnum() or c in "-_." else "-" for c in base).strip(".-")
    return safe.lower() or "model"


def folder_size(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def remove_installed(model: InstalledModel) -> None:
    shutil.rmtree(model.path)
