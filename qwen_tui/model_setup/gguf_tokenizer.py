"""The vocabulary stored in a GGUF rebuilt as a fast tokenizer, and its tokenizer_config.json."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from qwen_tui.model_setup.gguf_metadata import GGUFImportError, GGUFVocab, LlamaShape

if TYPE_CHECKING:
    from tokenizers import Tokenizer

# GGUF token types (llama.cpp's llama_token_type).
_TOKEN_UNKNOWN = 2
_TOKEN_CONTROL = 3
_TOKEN_USER_DEFINED = 4


def build_tokenizer(vocab: GGUFVocab) -> Tokenizer:
    """A byte-level BPE `tokenizers.Tokenizer` equivalent to llama.cpp's reading of the vocab."""
    from tokenizers import AddedToken, Tokenizer, decoders, models, processors

    # GGUF keeps merges as "left right"; tokens never hold a plain space (byte-level maps it to Ġ).
    merges = [tuple(merge.split(" ", 1)) for merge in vocab.merges]
    ids = {token: token_id for token_id, token in enumerate(vocab.tokens)}
    tokenizer = Tokenizer(models.BPE(vocab=ids, merges=merges, fuse_unk=False))
    tokenizer.pre_tokenizer = _pre_tokenizer(vocab.pre)
    tokenizer.decoder = decoders.ByteLevel()
    bos = vocab.token(vocab.bos_id)
    if vocab.add_bos and bos is not None:
        tokenizer.post_processor = processors.TemplateProcessing(
            single=f"{bos} $A", pair=f"{bos} $A {bos} $B", special_tokens=[(bos, vocab.bos_id)]
        )
    else:
        tokenizer.post_processor = processors.ByteLevel(trim_offsets=False)
    added = [
        AddedToken(token, special=kind != _TOKEN_USER_DEFINED, normalized=False)
        for token, kind in zip(vocab.tokens, vocab.token_types, strict=True)
        if kind in (_TOKEN_UNKNOWN, _TOKEN_CONTROL, _TOKEN_USER_DEFINED)
    ]
    tokenizer.add_tokens(added)
    return tokenizer


def _pre_tokenizer(pre: str) -> Any:
    """The pre-tokenizer llama.cpp uses for `tokenizer.ggml.pre`; unknown kinds are refused
    rather than guessed, because a wrong split silently changes every token id."""
    from tokenizers import pre_tokenizers

    byte_level = pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=True)
    if pre == "smollm":
        # llama.cpp's SMOLLM regex: every digit on its own, then the GPT-2 split.
        digits = pre_tokenizers.Digits(individual_digits=True)
        return pre_tokenizers.Sequence([digits, byte_level])
    if pre in ("default", "gpt2"):
        return byte_level
    raise GGUFImportError(f"the GGUF tokenizer's pre-tokenizer {pre!r} is not supported")


def tokenizer_config(vocab: GGUFVocab, shape: LlamaShape) -> dict[str, Any]:
    named = {vocab.bos_id, vocab.eos_id, vocab.unk_id, vocab.pad_id}
    control = [
        token
        for token_id, (token, kind) in enumerate(zip(vocab.tokens, vocab.token_types, strict=True))
        if kind == _TOKEN_CONTROL and token_id not in named
    ]
    config: dict[str, Any] = {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "bos_token": vocab.token(vocab.bos_id),
        "eos_token": vocab.token(vocab.eos_id),
        "unk_token": vocab.token(vocab.unk_id),
        "pad_token": vocab.token(vocab.pad_id),
        "additional_special_tokens": control,
        "model_max_length": shape.context_length,
        # transformers' default True rewrites " ." to "." on decode: text would not round-trip.
        "clean_up_tokenization_spaces": False,
    }
    if vocab.chat_template:
        config["chat_template"] = vocab.chat_template
    return config
