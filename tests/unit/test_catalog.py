"""The catalog: complete entries whose allow-patterns pick exactly the files a model needs."""

from __future__ import annotations

import pytest
from huggingface_hub.utils import filter_repo_objects

from qwen_tui.model_setup.catalog import (
    CATALOG,
    DEFAULT_REPO,
    entry_for,
    find_entry,
)

# File lists of the real repos (names only), as the hub lists them.
QWEN_V1_REPO = [
    ".gitattributes",
    "LICENSE",
    "NOTICE",
    "README.md",
    "assets/logo.jpg",
    "assets/qwen_tokenizer.png",
    "cache_autogptq_cuda_256.cpp",
    "cache_autogptq_cuda_kernel_256.cu",
    "config.json",
    "configuration_qwen.py",
    "cpp_kernels.py",
    "generation_config.json",
    "model-00001-of-00002.safetensors",
    "model-00002-of-00002.safetensors",
    "model.safetensors.index.json",
    "modeling_qwen.py",
    "qwen.tiktoken",
    "qwen_generation_utils.py",
    "tokenization_qwen.py",
    "tokenizer_config.json",
]
QWEN2_REPO = [
    ".gitattributes",
    "LICENSE",
    "README.md",
    "config.json",
    "generation_config.json",
    "merges.txt",
    "model.safetensors",
    "onnx/model.onnx",
    "onnx/model.safetensors",
    "tokenizer.json",
    "tokenizer_config.json",
    "vocab.json",
]


def _selected(patterns: tuple[str, ...], files: list[str]) -> set[str]:
    return set(filter_repo_objects(files, allow_patterns=list(patterns)))


@pytest.mark.parametrize("entry", CATALOG, ids=lambda e: e.repo_id)
def test_every_entry_is_complete(entry) -> None:  # type: ignore[no-untyped-def]
    assert entry.repo_id.count("/") == 1
    assert entry.display_name and entry.license
    assert entry.params.endswith("B")
    assert entry.download_mb > 0
    assert 0 < entry.run_ram_gb < entry.quantize_ram_gb
    assert entry.tested
    assert find_entry(entry.repo_id) is entry


def test_default_is_qwen_v1_first_and_converted_without_its_code() -> None:
    default = find_entry(DEFAULT_REPO)
    assert default is not None and CATALOG[0] is default
    assert default.qwen_v1 and not default.trust_remote_code
    assert "*.tiktoken" in default.allow_patterns
    assert not any(p.endswith(".py") for p in default.allow_patterns)


def test_repo_ids_are_unique() -> None:
    ids = [e.repo_id.lower() for e in CATALOG]
    assert len(ids) == len(set(ids))


def test_qwen_v1_patterns_fetch_vocabulary_and_weights_not_code() -> None:
    default = find_entry(DEFAULT_REPO)
    assert default is not None
    assert _selected(default.allow_patterns, QWEN_V1_REPO) == {
        "LICENSE",
        "NOTICE",
        "config.json",
        "generation_config.json",
        "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors",
        "model.safetensors.index.json",
        "qwen.tiktoken",
        "tokenizer_config.json",
    }


@pytest.mark.parametrize("entry", [e for e in CATALOG if not e.qwen_v1], ids=lambda e: e.repo_id)
def test_qwen2_family_patterns_skip_code_and_other_formats(entry) -> None:  # type: ignore[no-untyped-def]
    assert not any(p.endswith(".py") for p in entry.allow_patterns)
    assert entry.revision is None
    assert _selected(entry.allow_patterns, QWEN2_REPO) == {
        "LICENSE",
        "config.json",
        "generation_config.json",
        "merges.txt",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
        "vocab.json",
    }


def test_lookup_ignores_case_and_slashes() -> None:
    assert find_entry("qwen/qwen2.5-0.5b-instruct/") is find_entry("Qwen/Qwen2.5-0.5B-Instruct")
    assert find_entry("someone/else") is None


def test_unknown_repo_gets_an_untested_entry() -> None:
    entry = entry_for("someone/Tiny-Chat")
    assert not entry.tested and "untested" in entry.notes
    assert entry.repo_id == "someone/Tiny-Chat" and not entry.trust_remote_code
    picked = _selected(
        entry.allow_patterns,
        [
            "config.json",
            "tokenizer.model",
            "tokenizer_config.json",
            "model.safetensors",
            "modeling_tiny.py",
            "tiny.Q4_0.gguf",
            "README.md",
        ],
    )
    assert picked == {
        "config.json",
        "tokenizer.model",
        "tokenizer_config.json",
        "model.safetensors",
    }
    assert "*.py" in entry_for("someone/Tiny-Chat", allow_remote_code=True).allow_patterns


def test_entry_for_known_repo_is_the_catalog_entry() -> None:
    assert entry_for(DEFAULT_REPO) is find_entry(DEFAULT_REPO)
