"""Give freed memory back to the system: the model's RAM budget is the product's promise.

torch frees tensors to glibc's malloc, which keeps most of them for reuse instead of
returning them. Loading a model leaves ~1 GB of such free-but-resident heap behind (the
1.8B model: 1.4 GB RSS after load, 0.4 GB after a trim), and a long prefill leaves its
activations. Both are measured in docs/BENCHMARKS.md. Off glibc these are no-ops.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import logging
import math
import mmap
from typing import Any

log = logging.getLogger(__name__)


@functools.cache
def _glibc() -> ctypes.CDLL | None:
    name = ctypes.util.find_library("c")
    if name is None:
        return None
    try:
        libc = ctypes.CDLL(name)
        libc.malloc_trim  # noqa: B018 - absent outside glibc (musl, macOS)
    except (OSError, AttributeError):
        return None
    return libc


def release_free_memory() -> None:
    """Return the heap's free pages to the system (glibc's malloc_trim: ~10 ms)."""
    libc = _glibc()
    if libc is not None:
        libc.malloc_trim(0)


def mapped_empty(shape: tuple[int, ...], dtype: Any) -> Any:
    """An uninitialised tensor in an anonymous mapping of its own.

    Its pages cost RAM only once written, and all of them go back to the system the moment
    it is freed; a KV-cache buffer (hundreds of MB) freed to malloc would stay resident.
    """
    import torch

    count = math.prod(shape)
    itemsize = torch.empty((), dtype=dtype).element_size()
    region = mmap.mmap(-1, max(count * itemsize, 1))
    return torch.frombuffer(region, dtype=dtype, count=count).view(shape)


_MADV_DONTNEED = 4
_PAGE = mmap.PAGESIZE


def drop_pages(tensor: Any) -> None:
    """Return the RAM of a tensor nothing will read again, keeping its allocation.

    For pages mapped from a checkpoint file (torch.load's mmap) a later read would load
    them again from the file; for heap pages it would read zeros: the caller keeps the
    tensor alive and unused. Only whole pages inside the tensor are dropped, never a
    neighbour's.
    """
    libc = _glibc()
    if libc is None:
        return
    start = tensor.data_ptr()
    end = start + tensor.numel() * tensor.element_size()
    first = -(-start // _PAGE) * _PAGE
    last = end // _PAGE * _PAGE
    if last > first:
        libc.madvise(ctypes.c_void_p(first), ctypes.c_size_t(last - first), _MADV_DONTNEED)
