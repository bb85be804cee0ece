"""Quantize a safetensors checkpoint one tensor at a time, never holding it whole.

bigdl's `from_pretrained(load_in_low_bit=...)` loads every weight in bf16 before it converts
the linear layers: quantizing the 1.8B model peaked at 5.3 GB. Here the model is built the way
bigdl's own `load_low_bit` builds it (an empty skeleton on the meta device, converted by
`ggml_convert_low_bit(..., device="meta")`), then each tensor of the checkpoint is read from
disk and put in place: a linear weight quantized on arrival, exactly as bigdl's `FP4Params`
quantizes it, anything else cast to bf16 as bigdl casts the modules it does not convert. The
folder is written by bigdl's `save_low_bit`, so it is the one `load_low_bit` expects, and its
tensors are the ones the `from_pretrained` path writes, byte for byte (tested).

Tensors are read with plain file reads, not mmap: pages of a mapped checkpoint would count in
the process's RSS until the mapping closes, which is the whole file by the end. A linear
weight is read and quantized a block of rows at a time (bigdl's formats quantize each row on
its own, in blocks of 32 or 64 along it, so the bytes are the same): the 1.8B model's
vocabulary head is 0.6 GB in bf16 and 1.2 GB as the fp32 copy bigdl quantizes from, which
was the peak of quantizing it whole (4.5 GB RSS, measured). What stays is the quantized
model plus one block.
"""

from __future__ import annotations

import json
import math
import struct
import types
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qwen_tui.engine.bigdl import quiet_libraries, select_kernel_library
from qwen_tui.engine.memory import release_free_memory

# Formats whose quantized bytes depend only on the weight (the "mixed" ones pick per layer by
# error against the full-precision weights, which the meta skeleton cannot do).
STREAMED_LOW_BITS = frozenset({"sym_int4", "asym_int4", "sym_int5", "asym_int5", "sym_int8", "nf4"})
_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}
# fp32 elements quantized at once (16 MB): small against the model, large enough that the
# per-call overhead of bigdl's quantizer does not show.
QUANTIZE_BLOCK_ELEMENTS = 4 * 2**20


class StreamingUnsupported(Exception):
    """This checkpoint cannot be quantized tensor by tensor; the message says why."""


def streaming_blocker(source_dir: Path, config: dict[str, Any], low_bit: str) -> str | None:
    """Why `source_dir` needs bigdl's whole-model path, or None when it can be streamed.

    Only architectures transformers itself implements are built empty here: a repo's own
    code may build its modules in ways the skeleton does not mirror (and runs only where the
    user trusted it, on the old path).
    """
    if low_bit not in STREAMED_LOW_BITS:
        return f"low-bit format {low_bit} chooses per layer"
    if config.get("auto_map"):
        return "the model ships its own code"
    if config.get("quantization_config"):
        return "the checkpoint is already quantized (GPTQ/AWQ)"
    if not _weight_files(source_dir):
        return "the weights are not in safetensors files"
    from transformers.models.auto.modeling_auto import MODEL_FOR_CAUSAL_LM_MAPPING_NAMES

    model_type = config.get("model_type")
    if model_type not in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES:
        return f"transformers has no causal LM for model type {model_type!r}"
    return None


def quantize_streamed(
    source_dir: Path,
    out_dir: Path,
    *,
    low_bit: str,
    attn_implementation: str | None,
    optimize_model: bool = True,
) -> None:
    """Write `source_dir` quantized to `low_bit` into `out_dir` as a `save_low_bit` folder.

    Raises StreamingUnsupported before any heavy work when the checkpoint does not fit
    (the caller then takes bigdl's whole-model path), or when a tensor has no place in the
    model or a weight is missing from the checkpoint.
    """
    select_kernel_library()
    quiet_libraries()
    config = json.loads((source_dir / "config.json").read_text(encoding="utf-8"))
    blocker = streaming_blocker(source_dir, config, low_bit)
    if blocker:
        raise StreamingUnsupported(blocker)
    model = _empty_low_bit_model(source_dir, low_bit, attn_implementation, optimize_model)
    slots = _slots(model)
    tied = _tied_output_key(model)
    tensors = list(_stored_tensors(_weight_files(source_dir)))
    if tied and any(stored.key == tied[0] for stored in tensors):
        # transformers loads both into the one shared tensor; which wins depends on order
        raise StreamingUnsupported(f"{tied[0]} is tied to {tied[1]} yet stored as well")
    scratch = _Scratch()
    for stored in tensors:
        key = stored.key
        if key not in slots:
            if _ignored(model, key) or _non_persistent_buffer(model, key):
                continue  # transformers drops these on load too (old rotary inv_freq)
            raise StreamingUnsupported(f"checkpoint tensor {key} has no place in the model")
        placed = _place(slots, key, stored.shape, stored.read_rows, scratch)
        if tied and key == tied[1]:
            _place(slots, tied[0], stored.shape, _rows_of(placed), scratch)
    del scratch
    release_free_memory()  # the blocks' buffers, before save_low_bit's own allocations
    empty = [key for key, (module, name) in slots.items() if _on_meta(module, name)]
    if empty:
        raise StreamingUnsupported(f"the checkpoint lacks {', '.join(empty[:3])}")
    _finish_and_save(model, source_dir, out_dir, low_bit)


def _empty_low_bit_model(
    source_dir: Path, low_bit: str, attn_implementation: str | None, optimize_model: bool
) -> Any:
    """The model's modules with no weights, converted as `load_low_bit` converts them."""
    import torch
    from accelerate import init_empty_weights
    from bigdl.llm.ggml.quantize import ggml_tensor_qtype
    from bigdl.llm.transformers.convert import ggml_convert_low_bit
    from transformers import AutoConfig, AutoModelForCausalLM
    from transformers.modeling_utils import no_init_weights

    config = AutoConfig.from_pretrained(str(source_dir))
    if hasattr(config, "pretraining_tp"):
        config.pretraining_tp = 1  # as bigdl's from_pretrained sets it: no split F.linear
    kwargs: dict[str, Any] = {"torch_dtype": torch.bfloat16}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    # Buffers (rotary tables) stay real: init_empty_weights only moves parameters to meta.
    with no_init_weights(), init_empty_weights():
        model = AutoModelForCausalLM.from_config(config, **kwargs)
    return ggml_convert_low_bit(
        model,
        ggml_tensor_qtype[low_bit],
        optimize_model,
        device="meta",
        torch_dtype=torch.bfloat16,
    )


def _slots(model: Any) -> dict[str, tuple[Any, str]]:
    """State-dict key -> (module, attribute) for every parameter and persistent buffer."""
    slots: dict[str, tuple[Any, str]] = {}
    for prefix, module in model.named_modules():
        dot = prefix + "." if prefix else ""
        for name, param in module._parameters.items():
            if param is not None:
                slots[dot + name] = (module, name)
        for name, buffer in module._buffers.items():
            if buffer is not None and name not in module._non_persistent_buffers_set:
                slots[dot + name] = (module, name)
    return slots


def _tied_output_key(model: Any) -> tuple[str, str] | None:
    """(output head key, embedding key) when the head shares the embedding's weights.

    Such checkpoints hold only the embedding; bigdl's path quantizes the head from it.
    """
    if not getattr(model.config, "tie_word_embeddings", False):
        return None
    output, inputs = model.get_output_embeddings(), model.get_input_embeddings()
    names = {id(module): name for name, module in model.named_modules()}
    if output is None or inputs is None or id(output) not in names:
        return None
    return names[id(output)] + ".weight", names[id(inputs)] + ".weight"


def _ignored(model: Any, key: str) -> bool:
    import re

    patterns = getattr(model, "_keys_to_ignore_on_load_unexpected", None) or []
    return any(re.search(pattern, key) for pattern in patterns)


def _non_persistent_buffer(model: Any, key: str) -> bool:
    owner, _, name = key.rpartition(".")
    try:
        module = model.get_submodule(owner)
    except AttributeError:
        return False
    return name in module._non_persistent_buffers_set


def _on_meta(module: Any, name: str) -> bool:
    tensor = module._parameters.get(name)
    if tensor is None:
        tensor = module._buffers.get(name)
    return tensor is not None and tensor.device.type == "meta"


Rows = Callable[..., Any]
"""rows(start, stop, into=None) -> those rows of a tensor as stored, in `into`'s memory if given
(a _Scratch the caller reuses for the next block)."""


class _Scratch:
    """Memory reused by every block: fresh allocations page-fault on every block (measured on
    the 1.8B model: 65 s for the streamed step with them, 54 s with these buffers)."""

    def __init__(self) -> None:
        self._buffers: dict[str, Any] = {}

    def take(self, name: str, shape: tuple[int, ...], dtype: Any) -> Any:
        """A tensor of `shape` over the named buffer, grown when too small (contents undefined)."""
        import torch

        nbytes = math.prod(shape) * torch.empty((), dtype=dtype).element_size()
        buffer = self._buffers.get(name)
        if buffer is None or buffer.numel() < nbytes:
            buffer = self._buffers[name] = torch.empty(nbytes, dtype=torch.uint8)
        return buffer[:nbytes].view(dtype).view(shape)


def _rows_of(tensor: Any) -> Rows:
    return lambda start, stop, into=None: tensor[start:stop]


def _place(
    slots: dict[str, tuple[Any, str]],
    key: str,
    shape: tuple[int, ...],
    rows: Rows,
    scratch: _Scratch,
) -> Any:
    """Put one checkpoint tensor where the converted model keeps it, in bigdl's form.

    Returns what was placed (the bf16 tensor, or the quantized weight).
    """
    import torch
    from bigdl.llm.transformers.low_bit_linear import FP4Params

    module, name = slots[key]
    if name in module._buffers:
        # bigdl casts the modules it does not convert, buffers included, to the load dtype
        module._buffers[name] = _as_bf16(rows(0, shape[0] if shape else 1))
        return module._buffers[name]
    current = module._parameters[name]
    expected = current.get_shape() if isinstance(current, FP4Params) else current.shape
    if tuple(expected) != tuple(shape):
        raise StreamingUnsupported(
            f"{key} is {tuple(shape)} in the checkpoint, the model wants {tuple(expected)}"
        )
    if isinstance(current, FP4Params):
        # What _replace_with_low_bit_linear's FP4Params(...).to("cpu") makes of a loaded weight.
        value: Any = FP4Params(
            data=_quantize_rows(rows, shape, current.qtype, scratch),
            requires_grad=False,
            quantized=True,
            _shape=torch.Size(shape),
            qtype=current.qtype,
            in_features=module.in_features,
        )
    else:
        whole = _as_bf16(rows(0, shape[0] if shape else 1))
        value = torch.nn.Parameter(whole, requires_grad=False)
    module._parameters[name] = value
    return value


def _as_bf16(tensor: Any) -> Any:
    """bigdl's path loads everything in bf16 (torch_dtype=bfloat16): the same rounding here."""
    import torch

    return tensor.to(torch.bfloat16) if tensor.is_floating_point() else tensor


def _quantize_rows(rows: Rows, shape: tuple[int, ...], qtype: int, scratch: _Scratch) -> Any:
    """bigdl's quantized bytes of a 2-D weight, computed a block of rows at a time.

    As FP4Params.quantize does: bf16 (the dtype bigdl's path loads in), then fp32, then
    ggml_convert_qtype. Each row quantizes on its own, so block by block the bytes are equal.
    """
    import torch
    from bigdl.llm.transformers.low_bit_linear import ggml_convert_qtype

    out_features, in_features = shape
    out = torch.empty(0, dtype=torch.uint8)
    block = max(1, QUANTIZE_BLOCK_ELEMENTS // in_features)
    for start in range(0, out_features, block):
        stop = min(out_features, start + block)
        stored = rows(start, stop, scratch)
        if stored.dtype != torch.bfloat16:
            stored = stored.to(torch.bfloat16)
        weights = scratch.take("fp32", (stop - start, in_features), torch.float32)
        weights.copy_(stored)
        quantized = ggml_convert_qtype(weights, qtype, device="cpu", in_features=in_features)
        if start == 0:
            # bytes per row are fixed by the format: size the whole weight from the first block
            out = torch.empty(quantized.numel() // (stop - start) * out_features, dtype=torch.uint8)
        offset = quantized.numel() // (stop - start) * start
        out[offset : offset + quantized.numel()] = quantized
    return out


def _finish_and_save(model: Any, source_dir: Path, out_dir: Path, low_bit: str) -> None:
    """bigdl's `load_convert` epilogue, then its `save_low_bit`."""
    import torch
    from bigdl.llm.transformers.model import save_low_bit
    from transformers import GenerationConfig

    model.config.update({"bigdl_transformers_low_bit": low_bit, "tie_word_embeddings": False})
    model.config._name_or_path = str(source_dir)
    if (source_dir / "generation_config.json").exists():
        # What from_pretrained reads; from_config only derives one from config.json.
        model.generation_config = GenerationConfig.from_pretrained(str(source_dir))
    model.eval()
    model.save_low_bit = types.MethodType(save_low_bit, model)
    with torch.no_grad():
        model.save_low_bit(str(out_dir))


def _weight_files(source_dir: Path) -> list[Path]:
    """The files transformers loads: the shards an index names, else model.safetensors."""
    index = source_dir / "model.safetensors.index.json"
    if index.exists():
        try:
            names = set(json.loads(index.read_text(encoding="utf-8"))["weight_map"].values())
        except (OSError, ValueError, KeyError, TypeError, AttributeError):
            return []
        return sorted(source_dir / name for name in names)
    single = source_dir / "model.safetensors"
    return [single] if single.exists() else []


@dataclass(frozen=True)
class _StoredTensor:
    """One tensor of a safetensors file: where its bytes are, read a block of rows at a time."""

    path: Path
    key: str
    offset: int
    """Absolute byte offset of the tensor's data in `path`."""
    nbytes: int
    dtype: str
    shape: tuple[int, ...]

    def read_rows(self, start: int, stop: int, into: _Scratch | None = None) -> Any:
        """Rows [start, stop) of the first dimension (a 0-d tensor: its value); in `into`'s
        memory if given, valid until its next use."""
        import torch

        shape = (stop - start, *self.shape[1:]) if self.shape else ()
        dtype = getattr(torch, self.dtype)
        if into is None:
            tensor = torch.empty(shape, dtype=dtype)
        else:
            tensor = into.take("stored", shape, dtype)
        raw = tensor.view(-1).view(torch.uint8).numpy()
        row_bytes = self.nbytes // self.shape[0] if self.shape and self.shape[0] else 0
        with self.path.open("rb") as file:
            file.seek(self.offset + start * row_bytes)
            if file.readinto(memoryview(raw)) != raw.nbytes:
                raise StreamingUnsupported(f"{self.path.name} ends inside {self.key}")
        return tensor


def _stored_tensors(files: list[Path]) -> Iterator[_StoredTensor]:
    """The tensors of the safetensors `files`, in file order (reads stay sequential)."""
    for path in files:
        with path.open("rb") as file:
            (header_size,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(header_size))
        header.pop("__metadata__", None)
        for key, entry in sorted(header.items(), key=lambda item: item[1]["data_offsets"][0]):
            dtype = _DTYPES.get(entry["dtype"])
            if dtype is None:
                raise StreamingUnsupported(f"{key} is stored as {entry['dtype']}")
            start, end = entry["data_offsets"]
            shape = tuple(entry["shape"])
            itemsize = 4 if dtype == "float32" else 2
            if math.prod(shape) * itemsize != end - start:
                raise StreamingUnsupported(f"{path.name}: {key} has the wrong byte count")
            yield _StoredTensor(path, key, 8 + header_size + start, end - start, dtype, shape)
