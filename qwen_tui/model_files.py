"""Installed (quantized) models on disk: `<data>/models/<name>/` plus a manifest written last.

A folder counts as a model only when its manifest exists: quantizing builds in a staging
folder and renames it into place, so an interrupted run never looks like a usable model.
Reading and writing manifests lives here, below the engine (which loads what a manifest
describes) and model_setup (which makes models): both import it, neither imports the other.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

from qwen_tui.store.atomic import write_atomic

QWEN_V1_ARCH = "QWenLMHeadModel"
"""Qwen v1's architecture name: setup converts it; an old install that kept it runs its code."""
MANIFEST_NAME = "qwen-tui-model.json"
STAGING_SUFFIX = ".partial"


class ModelNotFoundError(LookupError):
    """No installed model matches; the message says how to get one."""


@dataclass(frozen=True)
class ModelManifest:
    name: str
    """Short name shown by `qwen-tui models` and accepted by --model."""
    source: str
    """Hub repo id, GGUF path or local folder it was made from."""
    arch: str
    """transformers architecture class, e.g. Qwen2ForCausalLM."""
    model_type: str
    low_bit: str
    context_length: int
    trust_remote_code: bool = False
    """The folder holds model code that must run to load it (recorded consent)."""
    optimize_model: bool = True
    """bigdl's optimize_model flag at save time; loading must pass the same value."""
    attn_implementation: str | None = None
    """`eager` for Llama models: bigdl + transformers 4.37 SDPA drops the causal mask."""
    chat_format: str | None = None
    """How prompts are built when it is not the tokenizer's chat template: "qwen-v1" is
    Qwen v1's make_context (a Qwen v1 model converted to the Qwen2 layout keeps its format)."""
    converted_from: str | None = None
    """The architecture the checkpoint had before setup converted it (QWenLMHeadModel)."""
    revision: str | None = None
    size_bytes: int = 0
    created: float = 0.0
    versions: dict[str, str] = field(default_factory=dict)
    """bigdl-llm and transformers versions that wrote it."""

    def to_json(self) -> str:
        return json.dumps(asdict(self), indent=2, sort_keys=True)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ModelManifest:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})


@dataclass(frozen=True)
class InstalledModel:
    path: Path
    manifest: ModelManifest

    @property
    def name(self) -> str:
        return self.manifest.name


def read_manifest(model_dir: Path) -> ModelManifest:
    data = json.loads((model_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    return ModelManifest.from_dict(data)


def write_manifest(model_dir: Path, manifest: ModelManifest) -> None:
    """Written atomically (unique temp name, fsync, rename): the manifest is what makes a
    folder a model, so a crash mid-write must leave the old one or none, never half."""
    write_atomic(model_dir / MANIFEST_NAME, manifest.to_json().encode("utf-8"))


def list_installed(models_dir: Path) -> list[InstalledModel]:
    """Every complete model folder by name; staging folders and folders without one skipped."""
    if not models_dir.is_dir():
        return []
    found = []
    for child in sorted(models_dir.iterdir()):
        if not child.is_dir() or child.name.endswith(STAGING_SUFFIX):
            continue
        try:
            found.append(InstalledModel(child, read_manifest(child)))
        except (OSError, ValueError, TypeError):
            continue  # not a model folder (or a damaged manifest): `doctor` reports these
    return found


def find_installed(models_dir: Path, name: str) -> InstalledModel:
    """Look a model up by short name or by the repo id / path it was made from."""
    installed = list_installed(models_dir)
    for model in installed:
        if name in (model.name, model.manifest.source):
            return model
    names = ", ".join(m.name for m in installed) or "none"
    raise ModelNotFoundError(
        f"model {name!r} is not installed (installed: {names}). "
        "Get one with `qwen-tui setup REPO_ID` or `qwen-tui import PATH`."
    )


def runs_qwen_v1_code(manifest: ModelManifest) -> bool:
    """A Qwen v1 model installed before setup converted them: it runs the repo's own code."""
    return manifest.trust_remote_code and manifest.arch == QWEN_V1_ARCH


def upgrade_hint(model: InstalledModel) -> str | None:
    """One line telling how to convert an old Qwen v1 install, or None."""
    if not runs_qwen_v1_code(model.manifest):
        return None
    source = model.manifest.source
    again = (
        f"qwen-tui setup {source}"
        if "/" in source and not Path(source).exists()
        else f"qwen-tui import {source} --name {model.name}"
    )
    return (
        f"{model.name} runs Qwen v1's own code (installed by an older qwen-tui), which cannot "
        f"reuse the conversation between turns; `{again}` converts it, with no code run"
    )
