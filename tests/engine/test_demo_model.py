"""The real demo model (SmolLM2-135M-Instruct, Llama architecture) through our whole pipeline."""

from __future__ import annotations

from dataclasses import replace

import pytest

from qwen_tui.conversation import GenerationSettings, Message, StopReason
from qwen_tui.engine.base import TextChunk
from qwen_tui.model_files import find_installed
from qwen_tui.paths import Paths

pytestmark = pytest.mark.slow
QUESTION = [
    Message("system", "You are a helpful assistant."),
    Message("user", "What is the capital of France?"),
]
GREEDY = GenerationSettings(temperature=0, max_new_tokens=12, repetition_penalty=1.0)


@pytest.fixture(scope="module")
def demo_model(demo_home):
    return find_installed(
        Paths(
            demo_home / "config.toml", demo_home / "data", demo_home / "state", demo_home / "cache"
        ).models_dir,
        "demo",
    )


@pytest.fixture(scope="module")
def reference_ids(demo_model, tmp_path_factory) -> list[int]:
    """Greedy tokens of the full-precision checkpoint in plain transformers (no bigdl)."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from qwen_tui.engine.prompt import format_for
    from qwen_tui.model_setup.gguf_import import find_demo_gguf, gguf_to_checkpoint

    folder = gguf_to_checkpoint(find_demo_gguf(), tmp_path_factory.mktemp("demo") / "fp32")
    model = AutoModelForCausalLM.from_pretrained(folder, attn_implementation="eager")
    prompt = format_for(AutoTokenizer.from_pretrained(folder)).encode(QUESTION)
    out = model.generate(torch.tensor([prompt]), max_new_tokens=12, do_sample=False)
    return out[0, len(prompt) :].tolist()


def generated_ids(engine) -> list[int]:
    text = "".join(e.text for e in engine.generate(QUESTION, GREEDY) if isinstance(e, TextChunk))
    return engine.tokenizer.encode(text, add_special_tokens=False)


def test_quantized_greedy_answer_starts_like_the_full_precision_one(demo_model, reference_ids):
    from qwen_tui.engine.loader import load_engine

    engine = load_engine(demo_model)
    assert generated_ids(engine)[:6] == reference_ids[:6]
    events = list(engine.generate(QUESTION, GREEDY.with_changes(max_new_tokens=40)))
    assert "Paris" in "".join(e.text for e in events[:-1])
    assert events[-1].stats.stop_reason is StopReason.EOS  # a real model ends its reply


def test_without_eager_attention_bigdl_talks_nonsense(demo_model, reference_ids):
    """Why the manifest records attn_implementation="eager" for Llama models."""
    from qwen_tui.engine.loader import load_engine
    from qwen_tui.model_files import InstalledModel

    sdpa = InstalledModel(demo_model.path, replace(demo_model.manifest, attn_implementation=None))
    assert generated_ids(load_engine(sdpa))[:6] != reference_ids[:6]


def test_the_gemm_prompt_path_answers_like_the_full_precision_model(
    demo_model, reference_ids, monkeypatch
):
    """CPUs without AMX compute prompt chunks by dequantizing INT4 weights for torch's GEMM
    (bigdl.use_batch_path): the answer must not change, and that path must really run."""
    from bigdl.llm.transformers import low_bit_linear

    from qwen_tui.engine import bigdl
    from qwen_tui.engine.loader import load_engine

    engine = load_engine(demo_model)
    dequantized = []
    convert = low_bit_linear.ggml_int4_convert_fp32
    monkeypatch.setattr(
        low_bit_linear,
        "ggml_int4_convert_fp32",
        lambda *args: dequantized.append(1) or convert(*args),
    )
    try:
        bigdl.use_batch_path("gemm", min_rows=2)
        assert generated_ids(engine)[:6] == reference_ids[:6]
    finally:
        bigdl.use_batch_path(bigdl.batch_path_for(bigdl.loaded_kernel()))
    assert dequantized


def test_continuing_a_stopped_answer_reuses_the_whole_cache(demo_model) -> None:
    """A real model's text encodes back to the ids it was decoded from: continuing right
    after a stop recomputes only the last token (docs/BENCHMARKS.md has the TTFT)."""
    import threading

    from qwen_tui.engine.loader import load_engine

    engine = load_engine(demo_model)
    asked = [QUESTION[0], Message("user", "Write a short story about a cat.")]
    cancel, pieces = threading.Event(), []
    for event in engine.generate(asked, GREEDY.with_changes(max_new_tokens=200), cancel):
        if isinstance(event, TextChunk):
            pieces.append(event.text)
            if len(pieces) == 30:
                cancel.set()
        else:
            assert event.stats.stop_reason is StopReason.STOPPED
    continued = [*asked, Message("assistant", "".join(pieces))]
    *more, done = engine.generate(continued, GREEDY)
    assert more and done.stats.reused_tokens == done.stats.prompt_tokens - 1
    assert done.stats.prompt_tokens == len(engine.format.encode_continuation(continued))
