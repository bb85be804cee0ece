"""Qwen's tiktoken vocabulary (`qwen.tiktoken`) as a transformers Qwen2 tokenizer.

Qwen v1 ships its tokenizer as code (tiktoken under a `trust_remote_code` class); Qwen1.5 and
Qwen2 ship the same 151643 byte-level BPE ranks, split pattern and special ids 151643-151645 as
a `tokenizers` file. Rebuilding that file from `qwen.tiktoken` lets a Qwen v1 model load with
no code from its repo. The merges are derived as transformers' TikTokenConverter derives them;
tests/engine/test_qwen_v1_tokenizer.py checks the result against Qwen's own tokenizer.
"""

from __future__ import annotations

import base64
from collections.abc import Sequence
from pathlib import Path
from typing import Any

ENDOFTEXT, IM_START, IM_END = "<|endoftext|>", "<|im_start|>", "<|im_end|>"
QWEN_BPE_RANKS = 151643
"""Ranks in qwen.tiktoken; the special tokens get the ids after them."""

# Qwen's pre-tokenizer pattern (tokenization_qwen.py PAT_STR; Qwen2 kept it): single digits,
# letters with one leading non-letter.
QWEN_SPLIT_PATTERN = (
    r"(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}"
    r"| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"
)
QWEN2_SPECIAL_TOKENS = (ENDOFTEXT, IM_START, IM_END)
# Qwen v1 reserves 205 more special ids after those three (tokenization_qwen.py EXTRAS); a user
# typing `<|extra_3|>` must get text, as in v1, and a model emitting one must not show it.
QWEN_V1_SPECIAL_TOKENS = (*QWEN2_SPECIAL_TOKENS, *(f"<|extra_{i}|>" for i in range(205)))


class TiktokenVocabError(ValueError):
    """The vocabulary file is not Qwen's; the message says what is wrong."""


def read_tiktoken_ranks(path: Path) -> dict[bytes, int]:
    """`qwen.tiktoken`: one `base64(token) rank` per line."""
    ranks = {}
    for line in path.read_bytes().splitlines():
        if line:
            token, rank = line.split()
            ranks[base64.b64decode(token)] = int(rank)
    return ranks


def bpe_vocab_and_merges(ranks: dict[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """tiktoken ranks as a byte-level BPE vocabulary and merge list (as transformers'
    TikTokenConverter does): every split of a token into two lower-ranked tokens is a merge,
    ordered by the rank of the token it makes."""
    from transformers.models.gpt2.tokenization_gpt2 import bytes_to_unicode

    byte_char = bytes_to_unicode()

    def as_text(token: bytes) -> str:
        return "".join(byte_char[b] for b in token)

    merges: list[tuple[int, int, int, bytes, bytes]] = []
    for token, rank in ranks.items():
        pairs = [
            (ranks[token[:i]], ranks[token[i:]], rank, token[:i], token[i:])
            for i in range(1, len(token))
            if token[:i] in ranks and token[i:] in ranks
        ]
        merges.extend(sorted(pairs))
    merges.sort(key=lambda merge: merge[2])
    vocab = {as_text(token): rank for token, rank in ranks.items()}
    return vocab, [(as_text(left), as_text(right)) for *_, left, right in merges]


def build_qwen2_tokenizer(
    tiktoken_file: Path,
    dest: Path,
    *,
    special_tokens: Sequence[str] = QWEN2_SPECIAL_TOKENS,
    model_max_length: int,
    chat_template: str | None = None,
) -> Any:
    """A Qwen2TokenizerFast over `tiktoken_file`, saved to `dest`; returns it.

    `special_tokens` take the ids after the BPE ranks, in order. Raises TiktokenVocabError
    when the file does not hold Qwen's ranks.
    """
    from tokenizers import (
        AddedToken,
        Regex,
        Tokenizer,
        decoders,
        models,
        normalizers,
        pre_tokenizers,
        processors,
    )
    from transformers import Qwen2TokenizerFast

    ranks = read_tiktoken_ranks(tiktoken_file)
    if len(ranks) != QWEN_BPE_RANKS or sorted(ranks.values()) != list(range(QWEN_BPE_RANKS)):
        raise TiktokenVocabError(
            f"{tiktoken_file.name} is not Qwen's vocabulary "
            f"({len(ranks)} tokens, Qwen's has {QWEN_BPE_RANKS})"
        )
    vocab, merges = bpe_vocab_and_merges(ranks)
    backend = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    backend.normalizer = normalizers.NFC()  # tokenization_qwen.py normalizes to NFC first
    backend.pre_tokenizer = pre_tokenizers.Sequence(
        [
            pre_tokenizers.Split(Regex(QWEN_SPLIT_PATTERN), behavior="isolated"),
            pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
        ]
    )
    backend.decoder = decoders.ByteLevel()
    backend.post_processor = processors.ByteLevel(trim_offsets=False)
    # normalized=True: matched after NFC, as tiktoken matches them in Qwen's NFC'd text (so
    # `<|im_end|>` + U+0338 is `<|im_end|` + `≯` in both, not a control token).
    added = {t: AddedToken(t, special=True, normalized=True) for t in special_tokens}
    backend.add_special_tokens(list(added.values()))
    expected = list(range(QWEN_BPE_RANKS, QWEN_BPE_RANKS + len(special_tokens)))
    if [backend.token_to_id(t) for t in special_tokens] != expected:
        raise TiktokenVocabError(f"{tiktoken_file.name}: special tokens did not get Qwen's ids")
    tokenizer = Qwen2TokenizerFast(
        tokenizer_object=backend,
        bos_token=None,
        unk_token=None,
        # As AddedTokens: given as text, Qwen2TokenizerFast re-adds them with normalized=False.
        eos_token=added.get(IM_END, IM_END),
        pad_token=added.get(ENDOFTEXT, ENDOFTEXT),
        chat_template=chat_template,
        model_max_length=model_max_length,
        clean_up_tokenization_spaces=False,
        errors="replace",
    )
    tokenizer.save_pretrained(dest)
    return tokenizer
