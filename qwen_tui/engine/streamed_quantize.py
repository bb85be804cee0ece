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
the process's RSS until the mapping closes, which is the whole file by the end.
"""

from __future__ import annotations

import json
import struct
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from qwen_tui.engine.bigdl import quiet_libraries, select_kernel_library

# Formats whose quantized bytes depend only on the weight (the "mixed" ones pick per layer by
# error against the full-precision weights, which the meta skeleton cannot do).
STREAMED_LOW_BITS = frozenset({"sym_int4", "asym_int4", "sym_int5", "asym_int5", "sym_int8", "nf4"})
_DTYPES = {"F32": "float32", "F16": "float16", "BF16": "bfloat16"}


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
    import torch

    select_kernel_library()
    quiet_libraries()
    config = json.loads((source_dir / "config.json").read_text(encoding="utf-8"))
    blocker = streaming_blocker(source_dir, config, low_bit)
    if blocker:
        raise StreamingUnsupported(blocker)
    model = _empty_low_bit_model(source_dir, low_bit, attn_implementation, optimize_model)
    slots = _slots(model)
    tied = _tied_output_key(model)
    for key, tensor in _read_tensors(_weight_files(source_dir)):
        if key not in slots:
            if _ignored(model, key) or _non_persistent_buffer(model, key):
                continue  # transformers drops these on load too (old rotary inv_freq)
            raise StreamingUnsupported(f"checkpoint tensor {key} has no place in the model")
        _place(slots, key, tensor)
        if tied and key == tied[1]:
            _place(slots, tied[0], tensor)
        del tensor  # the next tensor's read may reuse its pages
    empty = [key for key, (module, name) in slots.items() if _on_meta(module, name)]
    if empty:
        raise StreamingUnsupported(f"the checkpoint lacks {', '.join(empty[:3])}")
    _finish_and_save(model, source_dir, out_dir, low_bit, torch)


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


def _place(slots: dict[str, tuple[Any, str]], key: str, tensor: Any) -> None:
    """Put one checkpoint tensor where the converted model keeps it, in bigdl's form."""
    import torch
    from bigdl.llm.transformers.low_bit_linear import FP4Params

    module, name = slots[key]
    if name in module._buffers:
        module._buffers[name] = tensor
        return
    current = module._parameters[name]
    expected = current.get_shape() if isinstance(current, FP4Params) else current.shape
    if tuple(expected) != tuple(tensor.shape):
        raise StreamingUnsupported(
            f"{key} is {tuple(tensor.shape)} in the checkpoint, the model wants {tuple(expected)}"
        )
    # bigdl's path loads everything in bf16 first (torch_dtype=bfloat16): same rounding here.
    value = tensor.to(torch.bfloat16) if tensor.is_floating_point() else tensor
    if isinstance(current, FP4Params):
        # What _replace_with_low_bit_linear does with a loaded weight; .to("cpu") quantizes.
        value = FP4Params(
            data=value,
            requires_grad=False,
            quantized=False,
            _shape=None,
            qtype=current.qtype,
            imatrix=None,
            in_features=module.in_features,
        ).to("cpu")
    else:
        value = torch.nn.Parameter(value, requires_grad=False)
    module._parameters[name] = value


def _finish_and_save(model: Any, source_dir: Path, out_dir: Path, low_bit: str, torch: Any) -> None:
    """bigdl's `load_convert` epilogue, then its `save_low_bit`."""
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
    return sorted(source_dir.glob("*.safetensors"))


def _read_tensors(files: list[Path]) -> Iterator[tuple[str, Any]]:
    """(key, tensor) for every tensor of the safetensors `files`, each read into its own memory."""
    import torch

    for path in files:
        with path.open("rb") as file:
            (header_size,) = struct.unpack("<Q", file.read(8))
            header = json.loads(file.read(header_size))
            base = 8 + header_size
            entries = sorted(
                ((k, v) for k, v in header.items() if k != "__metadata__"),
                key=lambda item: item[1]["data_offsets"][0],
            )
            for key, entry in entries:
                dtype = _DTYPES.get(entry["dtype"])
                if dtype is None:
                    raise StreamingUnsupported(f"{key} is stored as {entry['dtype']}")
                start, end = entry["data_offsets"]
                tensor = torch.empty(entry["shape"], dtype=getattr(torch, dtype))
                raw = tensor.view(-1).view(torch.uint8).numpy()
                if raw.nbytes != end - start:
                    raise StreamingUnsupported(f"{path.name}: {key} has the wrong byte count")
                file.seek(base + start)
                if file.readinto(memoryview(raw)) != raw.nbytes:
                    raise StreamingUnsupported(f"{path.name} ends inside {key}")
                yield key, tensor
