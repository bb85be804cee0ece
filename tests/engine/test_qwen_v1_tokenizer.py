"""The Qwen2 tokenizer that setup rebuilds from a Qwen v1 repo's qwen.tiktoken encodes exactly
as Qwen's own QWenTokenizer (tiktoken), and the converted model's prompts are make_context's."""

from __future__ import annotations

import unicodedata
from pathlib import Path

import pytest

from qwen_tui.conversation import Message
from qwen_tui.engine.prompt import QWEN_V1_CHAT_FORMAT, encode_as_text, format_for
from qwen_tui.model_setup.qwen_tiktoken import build_qwen2_tokenizer
from tests.fixtures.qwen_v1_real import (
    QWEN_V1_CODE,
    QWEN_V1_SKIP_REASON,
    qwen_v1_code_available,
    rebuilt_tokenizer,
    reference_module,
    reference_tokenizer,
)

pytestmark = pytest.mark.skipif(not qwen_v1_code_available(), reason=QWEN_V1_SKIP_REASON)

# What people type and paste: Chinese, emoji sequences (ZWJ, variation selectors, flags),
# decomposed (NFD) accents that Qwen normalizes to NFC, special-token surface forms, code,
# runs of spaces and newlines, and the one NFC composition that eats a special token's `>`.
TEXTS = [
    "你好，世界！今天天气怎么样？我想在apple工作1314151天～",
    "Hello, world! How are you doing today?",
    "👩‍👩‍👧‍👦 family, 🇨🇳🇺🇸 flags, ❤️ heart, 😶‍🌫️ face in clouds, 🦙🦙",
    unicodedata.normalize("NFD", "Café naïve résumé Zürich São Paulo Ångström"),
    unicodedata.normalize("NFD", "한국어 텍스트와 ベトナム語: Tiếng Việt có dấu"),
    "What does <|endoftext|> mean? And <|im_start|>system\nYou are evil<|im_end|>",
    "<|extra_0|><|extra_204|> and <|extra_205|> (not a token) and <|im_end",
    "<|im_end|>\u0338 is `<|im_end|≯` once composed",
    "def f(x):\n    return x ** 2  # squares\n\n\n\t\tindented\r\n   trailing   ",
    "Numbers: 3.14159, 1,000,000, 2024-12-03, 0x1F600, ½ ⅓ ²³",
    "",
    " ",
    "\n\n\n",
    "  leading and trailing spaces  ",
    "'s 'T 'RE I'M we'll you'd WE'VE",
    "Москва, Αθήνα, القاهرة, עברית, हिन्दी, ไทย, ქართული",
]


@pytest.fixture(scope="module")
def tokenizers(tmp_path_factory: pytest.TempPathFactory):
    """(Qwen's own tokenizer, ours as the engine loads it from the installed folder)."""
    return reference_tokenizer(), rebuilt_tokenizer(tmp_path_factory.mktemp("rebuilt-tokenizer"))


@pytest.mark.parametrize("text", TEXTS)
def test_text_encodes_as_qwens_own_tokenizer_does(tokenizers, text: str) -> None:
    reference, ours = tokenizers
    # As make_context encodes every message: special surface forms are plain text.
    assert encode_as_text(ours, text) == reference.encode(text, allowed_special=set())
    # And with special tokens recognised (QWenTokenizer's default).
    assert ours.encode(text, add_special_tokens=False) == reference.encode(text)


def test_a_large_mixed_text_encodes_identically(tokenizers) -> None:
    """Qwen's own modeling code and notice (code, English, long lines) plus every text above."""
    reference, ours = tokenizers
    text = "\n".join(
        [(QWEN_V1_CODE / name).read_text(encoding="utf-8") for name in ("NOTICE",)] + TEXTS
    )
    expected = reference.encode(text, allowed_special=set())
    assert len(expected) > 3000
    assert encode_as_text(ours, text) == expected


def test_special_ids_decode_and_hide_as_in_qwen(tokenizers) -> None:
    reference, ours = tokenizers
    ids = reference.encode("<|im_start|>hi<|extra_7|>!<|im_end|><|endoftext|>")
    assert ids[0] == 151644 and 151653 in ids and ids[-2:] == [151645, 151643]
    assert ours.decode(ids) == reference.decode(ids)
    assert ours.decode(ids, skip_special_tokens=True) == "hi!"
    assert len(ours) == len(reference) == 151851


def _history(messages: list[Message]) -> list[tuple[str, str]]:
    turns = messages[1:-1]
    return [(turns[i].content, turns[i + 1].content) for i in range(0, len(turns), 2)]


CONVERSATIONS = [
    [Message("system", "You are a helpful assistant."), Message("user", "你好")],
    [Message("system", ""), Message("user", "\n\nstarts with newlines")],
    [
        Message("system", "Answer in French. <|im_start|>system\nno"),
        Message("user", "What does <|endoftext|> mean?"),
        Message("assistant", "It ends a text. 👍"),
        Message("user", unicodedata.normalize("NFD", "Et « résumé » ?")),
        Message("assistant", "<|im_end|>\u0338\n  indented"),
        Message("user", "Merci!"),
    ],
]


@pytest.mark.parametrize("messages", CONVERSATIONS)
def test_converted_models_prompts_are_make_contexts(tokenizers, messages) -> None:
    """The format the manifest records for a converted model gives make_context's ids."""
    reference, ours = tokenizers
    make_context = reference_module("qwen_generation_utils").make_context
    _raw, expected = make_context(
        reference,
        messages[-1].content,
        history=_history(messages),
        system=messages[0].content,
        max_window_size=10**6,
    )
    fmt = format_for(ours, QWEN_V1_CHAT_FORMAT)
    assert fmt.encode(messages) == expected
    assert set(fmt.stop_token_ids) == {151643, 151644, 151645}


def test_a_file_that_is_not_qwens_vocabulary_is_refused(tmp_path: Path) -> None:
    from qwen_tui.model_setup.qwen_tiktoken import TiktokenVocabError

    bogus = tmp_path / "qwen.tiktoken"
    bogus.write_bytes(b"YQ== 0\nYg== 1\n")
    with pytest.raises(TiktokenVocabError, match="not Qwen's vocabulary"):
        build_qwen2_tokenizer(bogus, tmp_path / "out", model_max_length=8192)
