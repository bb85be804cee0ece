"""The token loop: prefill, sample, decode — with the conversation's KV cache kept across turns.

transformers' generate() recomputes the whole conversation every turn and runs the LM head
over every prompt position. A chat turn only appends to what the model has already seen, so
we keep the KV cache with the token ids it covers, feed only the new tokens, and compute
logits for the last position alone (the LM head over a 151936-token vocabulary is the
largest matrix of a 1.8B model).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from qwen_tui.conversation import GenerationSettings

ROOM_AHEAD = 1024
"""Tokens of room kept after a reply for the next turn (a user message and its reply)."""


@dataclass
class KVCache:
    """The model's past keys/values and exactly which token ids they were computed from."""

    past: Any = None
    ids: list[int] = field(default_factory=list)

    def reset(self) -> None:
        self.past, self.ids = None, []

    def reuse_for(self, prompt: Sequence[int]) -> int:
        """How many leading prompt tokens need no recomputing; crops the cache to them.

        Any edit, regenerate, system-prompt change or trimmed history changes the prompt's
        ids somewhere; everything from that point on is recomputed. At least one prompt token
        is always fed, because its logits pick the first reply token.
        """
        common = 0
        for cached, new in zip(self.ids, prompt, strict=False):
            if cached != new:
                break
            common += 1
        common = min(common, len(prompt) - 1)
        if common == len(self.ids):
            return common
        if common > 0 and _crop(self.past, common):
            self.ids = self.ids[:common]
            return common
        self.reset()
        return 0


def reserve(past: Any, total_tokens: int) -> bool:
    """Give every layer's cache room for `total_tokens` before feeding tokens.

    bigdl preallocates each layer's cache and, before appending, checks for room for ONE
    more token only (generate() never appends more than one on top of a cache); appending a
    whole new turn past the buffer then fails with "setStorage ... out of bounds". When it
    does grow a buffer it copies it into a new one 256 positions longer, from the heap.
    Here a buffer that must grow at least doubles, in its own mapping (memory.mapped_empty):
    pages past the tokens written cost no RAM, and the old buffer's pages go straight back.
    Returns False for caches this does not know (legacy tuples): those are fed in one go.
    """
    from qwen_tui.engine.memory import mapped_empty

    key_cache = getattr(past, "key_cache", None)
    value_cache = getattr(past, "value_cache", None)
    if not isinstance(key_cache, list) or not isinstance(value_cache, list):
        return False
    for layer, keys in enumerate(key_cache):
        if keys.dim() != 4 or keys.stride(1) >= total_tokens * keys.size(3):
            continue
        capacity = max(total_tokens, 2 * keys.stride(1) // keys.size(3))
        for cache in (key_cache, value_cache):
            old = cache[layer]
            batch, heads, length, head_dim = old.shape
            buffer = mapped_empty((batch, heads, capacity, head_dim), old.dtype)
            buffer[:, :, :length, :] = old
            cache[layer] = buffer[:, :, :length, :]
    return True


def _crop(past: Any, length: int) -> bool:
    """Cut a transformers Cache (bigdl's included) back to `length` tokens, if it is one.

    bigdl keeps each layer's keys as a view into a larger preallocated buffer and appends by
    writing past the view's end, so slicing the view is all a crop needs. Legacy tuple caches
    differ in layout per model: those are not cropped (the caller recomputes instead).
    """
    key_cache = getattr(past, "key_cache", None)
    value_cache = getattr(past, "value_cache", None)
    if not isinstance(key_cache, list) or not isinstance(value_cache, list):
        return False
    for layer in range(len(key_cache)):
        key_cache[layer] = key_cache[layer][:, :, :length, :]
        value_cache[layer] = value_cache[layer][:, :, :length, :]
    if hasattr(past, "seen_tokens"):
        past.seen_tokens = length
    return True


def logits_processors(settings: GenerationSettings) -> Any:
    """transformers' own processors for the user's settings (they validate them, too)."""
    from transformers import (
        LogitsProcessorList,
        RepetitionPenaltyLogitsProcessor,
        TemperatureLogitsWarper,
        TopKLogitsWarper,
        TopPLogitsWarper,
    )

    processors = LogitsProcessorList()
    if settings.repetition_penalty != 1.0:
        processors.append(RepetitionPenaltyLogitsProcessor(settings.repetition_penalty))
    if settings.temperature > 0:
        processors.append(TemperatureLogitsWarper(settings.temperature))
        if settings.top_k > 0:
            processors.append(TopKLogitsWarper(settings.top_k))
        if settings.top_p < 1.0:
            processors.append(TopPLogitsWarper(settings.top_p))
    return processors


def split_head(model: Any) -> tuple[Any, Any]:
    """(decoder stack, LM head) of a causal LM, so the head can run on one position only."""
    base = getattr(model, model.base_model_prefix, None)
    head = model.get_output_embeddings()
    if base is None or head is None:
        raise TypeError(f"{type(model).__name__} has no separate decoder and LM head")
    return base, head


def decode(
    model: Any,
    cache: KVCache,
    prompt: list[int],
    settings: GenerationSettings,
    max_new_tokens: int,
    stop_ids: Sequence[int],
    on_token: Callable[[int], bool],
    *,
    prefill_chunk: int = 0,
    cancelled: Callable[[], bool] = lambda: False,
    step: Callable[[list[int], Any], Any] | None = None,
    on_logits: Callable[[Any], None] | None = None,
) -> int:
    """Generate up to `max_new_tokens` after `prompt`, calling `on_token(id)` for each.

    Returns how many prompt tokens came from the cache. `on_token` returns False to stop
    (the user cancelled). New prompt tokens are fed `prefill_chunk` at a time (0: all at
    once): that bounds the attention scores and activations a long prompt allocates, and
    `cancelled()` is checked between chunks, so a long prefill can be stopped. The cache is
    left covering every token fed to the model, ready for the next turn; on an exception it
    is reset, since a half-updated cache would silently corrupt the next reply.
    `step` (decode_step.DecodeStep), when given, computes new tokens in place of the
    model's forward. `on_logits`, when given, sees each position's raw fp32 logits before
    sampling: tests compare them across paths within the kernels' rounding, where greedy text
    of a random-weight model would flip.
    """
    import torch

    from qwen_tui.engine.memory import release_free_memory

    base, head = split_head(model)
    processors = logits_processors(settings)
    sampler = torch.Generator().manual_seed(settings.seed) if settings.seed is not None else None
    reused = cache.reuse_for(prompt)
    if cache.past is None and getattr(model, "_supports_cache_class", False):
        # Given a Cache object, transformers returns one (croppable); given None it returns
        # legacy tuples, whose layout differs per model (Qwen v1's remote code uses those).
        from transformers import DynamicCache

        cache.past = DynamicCache()
    ids = torch.tensor([prompt])
    try:
        fed = reused
        chunked = reserve(cache.past, len(prompt)) and prefill_chunk > 0
        direct = step if isinstance(getattr(cache.past, "key_cache", None), list) else None

        def forward(tokens: list[int]) -> Any:
            """Hidden states of `tokens` after the cache; extends the cache."""
            if direct is not None:
                return direct(tokens, cache.past)
            out = base(input_ids=torch.tensor([tokens]), past_key_values=cache.past, use_cache=True)
            cache.past = out.past_key_values
            return out.last_hidden_state

        # All but the last chunk: keys and values only, no logits needed.
        while chunked and len(prompt) - fed > prefill_chunk and not cancelled():
            reserve(cache.past, len(prompt))  # the first chunk was stored at its own size
            forward(prompt[fed : fed + prefill_chunk])
            fed += prefill_chunk
            cache.ids = prompt[:fed]
        if cancelled():
            return reused
        feed = prompt[fed:]
        for _ in range(max_new_tokens):
            reserve(cache.past, ids.shape[1])  # a no-op but when the buffer is full
            hidden = forward(feed)
            if len(feed) > 1:
                # The prompt's activations, kept by malloc, go back before the first token:
                # the LM head and the reply are the peak of a turn (docs/BENCHMARKS.md).
                release_free_memory()
            cache.ids = ids[0].tolist()
            logits = head(hidden[:, -1:, :])[:, -1, :].float()
            if on_logits is not None:
                on_logits(logits[0].clone())  # the processors below work in place
            scores = processors(ids, logits)
            if settings.temperature > 0:
                probs = torch.softmax(scores, dim=-1)
                token = torch.multinomial(probs, 1, generator=sampler)
            else:
                token = scores.argmax(dim=-1, keepdim=True)
            token_id = int(token)
            ids = torch.cat([ids, token.view(1, 1)], dim=-1)
            if not on_token(token_id) or token_id in stop_ids:
                break
            feed = [token_id]
    except BaseException:
        cache.reset()
        raise
    return reused


def make_room_ahead(cache: KVCache, tokens: int = ROOM_AHEAD) -> None:
    """After a reply: room for the next turn now, while the user reads and types, so
    growing the buffer (a copy of the whole cache) is not part of the next TTFT."""
    reserve(cache.past, len(cache.ids) + tokens)
