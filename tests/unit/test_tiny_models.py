"""The tiny test checkpoints load, generate and tokenize like the real models they stand in for."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from tests.fixtures.tiny_models import (
    ENDOFTEXT,
    IM_END,
    IM_START,
    QWEN_V1_VOCAB_SIZE,
    TINY_BUILDERS,
    build_tiny_qwen2,
    build_tiny_remote_code,
)

# The generation configs copy the real models' sampling settings; these tests decode greedily.
pytestmark = pytest.mark.filterwarnings("ignore:`do_sample` is set to `False`:UserWarning")

ROUND_TRIP_TEXT = "Hello, world!  Tabs\tand\nnew lines, 3.14 + 42 = x; café 東京 — done.\n"
MESSAGES = [{"role": "user", "content": "Say hi."}]
# Qwen v1 has no chat template: the app writes ChatML itself, as here.
MANUAL_CHATML = (
    "<|im_start|>system\nYou are a helpful assistant.<|im_end|>\n"
    "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n"
)


@pytest.fixture(scope="module")
def built(tiny_checkpoint: Callable[[str], Path]) -> dict[str, Path]:
    """The session's shared tiny checkpoints (tests/conftest.py); these tests only read them."""
    return {name: tiny_checkpoint(name) for name in TINY_BUILDERS}


def _load(folder: Path, remote: bool) -> tuple[Any, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(folder, trust_remote_code=remote)
    model = AutoModelForCausalLM.from_pretrained(
        folder, trust_remote_code=remote, torch_dtype="auto"
    )
    return tokenizer, model


def _prompt(tokenizer: Any, name: str) -> str:
    if name == "remote":
        return MANUAL_CHATML
    return tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)


def _greedy(model: Any, tokenizer: Any, prompt: str, n: int = 5) -> list[int]:
    inputs = tokenizer(prompt, return_tensors="pt")
    output = model.generate(
        **inputs, max_new_tokens=n, min_new_tokens=n, do_sample=False, repetition_penalty=1.0
    )
    return output[0, inputs["input_ids"].shape[1] :].tolist()


@pytest.mark.parametrize("name", list(TINY_BUILDERS))
def test_checkpoint_generates_from_chatml_prompt(built: dict[str, Path], name: str) -> None:
    tokenizer, model = _load(built[name], remote=name == "remote")
    prompt = _prompt(tokenizer, name)
    assert prompt.endswith("<|im_start|>assistant\n")

    new_ids = _greedy(model, tokenizer, prompt)

    assert len(new_ids) == 5
    assert all(0 <= i < len(tokenizer) for i in new_ids)
    assert isinstance(tokenizer.decode(new_ids), str)
    assert new_ids == _greedy(model, tokenizer, prompt)  # greedy decoding is repeatable


@pytest.mark.parametrize("name", list(TINY_BUILDERS))
def test_tokenizer_round_trips_text(built: dict[str, Path], name: str) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built[name], trust_remote_code=name == "remote")
    ids = tokenizer.encode(ROUND_TRIP_TEXT, add_special_tokens=False)

    assert tokenizer.decode(ids) == ROUND_TRIP_TEXT
    assert len(ids) < len(ROUND_TRIP_TEXT.encode())  # merges were learned, not bytes only


@pytest.mark.parametrize("name", ["qwen2", "llama"])
def test_template_models_use_chatml_and_stop_on_im_end(built: dict[str, Path], name: str) -> None:
    from transformers import AutoConfig, AutoTokenizer, GenerationConfig

    tokenizer = AutoTokenizer.from_pretrained(built[name])
    config = AutoConfig.from_pretrained(built[name])
    im_start, im_end, endoftext = tokenizer.convert_tokens_to_ids([IM_START, IM_END, ENDOFTEXT])

    text = tokenizer.apply_chat_template(MESSAGES, tokenize=False, add_generation_prompt=True)
    assert text.startswith("<|im_start|>system\n")
    assert "<|im_start|>user\nSay hi.<|im_end|>\n<|im_start|>assistant\n" in text
    assert tokenizer.encode(IM_START, add_special_tokens=False) == [im_start]
    assert tokenizer.eos_token == IM_END
    assert config.eos_token_id == im_end
    assert config.vocab_size >= len(tokenizer)
    assert config.max_position_embeddings == 2048
    generation = GenerationConfig.from_pretrained(built[name])
    expected_eos = [im_end, endoftext] if name == "qwen2" else im_end
    assert generation.eos_token_id == expected_eos


def test_llama_is_shaped_like_smollm2(built: dict[str, Path]) -> None:
    from transformers import AutoConfig, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built["llama"])
    config = AutoConfig.from_pretrained(built["llama"])

    assert tokenizer.convert_tokens_to_ids([ENDOFTEXT, IM_START, IM_END]) == [0, 1, 2]
    assert config.tie_word_embeddings is True
    assert config.architectures == ["LlamaForCausalLM"]


def test_remote_tokenizer_keeps_typed_special_tokens_as_text(built: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(built["remote"], trust_remote_code=True)

    as_text = tokenizer.encode("<|im_start|>", allowed_special=set())
    assert 151644 not in as_text and len(as_text) > 1
    assert tokenizer.decode(as_text) == "<|im_start|>"
    assert tokenizer.encode("<|im_start|>") == [151644]
    assert (tokenizer.eod_id, tokenizer.im_start_id, tokenizer.im_end_id) == (
        151643,
        151644,
        151645,
    )
    assert tokenizer.convert_tokens_to_ids("<|extra_204|>") == 151850
    assert len(tokenizer) == 151851
    assert tokenizer.chat_template is None
    assert tokenizer.encode("cafe\u0301") == tokenizer.encode("café")  # NFC first
    assert tokenizer.decode(tokenizer.encode(MANUAL_CHATML), skip_special_tokens=True) == (
        "system\nYou are a helpful assistant.\nuser\nSay hi.\nassistant\n"
    )


def test_remote_model_needs_trust_and_has_qwen_v1_shape(built: dict[str, Path]) -> None:
    from transformers import AutoConfig, GenerationConfig

    with pytest.raises(ValueError, match="trust_remote_code"):
        AutoConfig.from_pretrained(built["remote"], trust_remote_code=False)
    config = AutoConfig.from_pretrained(built["remote"], trust_remote_code=True)

    assert config.model_type == "tinyqwen"
    assert config.architectures == ["TinyQwenForCausalLM"]
    assert set(config.auto_map) == {"AutoConfig", "AutoModelForCausalLM", "AutoTokenizer"}
    assert config.vocab_size == QWEN_V1_VOCAB_SIZE
    assert config.seq_length == 2048
    assert config.eos_token_id is None  # as Qwen v1: the ids live in generation_config.json
    assert GenerationConfig.from_pretrained(built["remote"]).eos_token_id == 151643
    assert {p.name for p in built["remote"].glob("*.py")} == {
        "configuration_tinyqwen.py",
        "modeling_tinyqwen.py",
        "tokenization_tinyqwen.py",
    }


def test_remote_checkpoint_survives_save_pretrained(built: dict[str, Path], tmp_path: Path) -> None:
    import torch

    tokenizer, model = _load(built["remote"], remote=True)
    tokenizer.save_pretrained(tmp_path / "resaved")
    model.save_pretrained(tmp_path / "resaved")

    tokenizer2, model2 = _load(tmp_path / "resaved", remote=True)
    assert (tmp_path / "resaved" / "qwen.tiktoken").read_bytes() == (
        built["remote"] / "qwen.tiktoken"
    ).read_bytes()
    assert tokenizer2.encode(MANUAL_CHATML) == tokenizer.encode(MANUAL_CHATML)
    inputs = tokenizer(MANUAL_CHATML, return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**inputs).logits, model2(**inputs).logits)


@pytest.mark.parametrize("build", [build_tiny_qwen2, build_tiny_remote_code])
def test_same_seed_writes_identical_weights(build: Any, tmp_path: Path) -> None:
    first = build(tmp_path / "a", seed=3) / "model.safetensors"
    second = build(tmp_path / "b", seed=3) / "model.safetensors"
    other = build(tmp_path / "c", seed=4) / "model.safetensors"

    assert first.read_bytes() == second.read_bytes()
    assert first.read_bytes() != other.read_bytes()
    assert (tmp_path / "a" / "tokenizer_config.json").read_bytes() == (
        tmp_path / "b" / "tokenizer_config.json"
    ).read_bytes()


@pytest.mark.slow
@pytest.mark.parametrize("name", list(TINY_BUILDERS))
def test_bigdl_quantizes_saves_and_reloads(built: dict[str, Path], name: str, tmp_path: Path):
    from bigdl.llm.transformers import AutoModelForCausalLM
    from transformers import AutoTokenizer

    remote = name == "remote"
    # bigdl's Llama rewrite loses the causal mask under SDPA (transformers 4.37).
    extra = {"attn_implementation": "eager"} if name == "llama" else {}
    tokenizer = AutoTokenizer.from_pretrained(built[name], trust_remote_code=remote)
    model = AutoModelForCausalLM.from_pretrained(
        str(built[name]),
        load_in_low_bit="sym_int4",
        optimize_model=True,
        trust_remote_code=remote,
        torch_dtype="auto",
        **extra,
    )
    model.save_low_bit(str(tmp_path / "low"))
    reloaded = AutoModelForCausalLM.load_low_bit(
        str(tmp_path / "low"), optimize_model=True, trust_remote_code=remote, **extra
    )

    assert type(reloaded.lm_head).__name__ == "LowBitLinear"
    new_ids = _greedy(reloaded, tokenizer, _prompt(tokenizer, name))
    assert len(new_ids) == 5
    assert all(0 <= i < len(tokenizer) for i in new_ids)
