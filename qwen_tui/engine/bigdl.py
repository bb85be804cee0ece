"""The only module that imports bigdl-llm.

bigdl-llm is no longer developed upstream and pinned; keeping every call to it here means a
replacement backend touches one file. Everything imports lazily: importing this module is cheap.
"""

from __future__ import annotations

import importlib
import os
import re
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

from qwen_tui.engine.cpu import best_kernel, cpu_info

# Importing this module loads bigdl's native library; after that the choice is fixed.
_NATIVE_MODULE = "bigdl.llm.ggml.model.llama.llama_cpp"
_KERNEL_LIB = re.compile(r"libllama_(\w+)\.so")


def bigdl_libs_dir() -> Path | None:
    import importlib.util

    spec = importlib.util.find_spec("bigdl.llm")
    if spec is None or not spec.submodule_search_locations:
        return None
    return Path(next(iter(spec.submodule_search_locations))) / "libs"


def kernel_library(kernel: str) -> Path | None:
    """bigdl's `libllama_<kernel>.so`, if this installation ships it."""
    libs = bigdl_libs_dir()
    path = None if libs is None else libs / f"libllama_{kernel}.so"
    return path if path is not None and path.exists() else None


def select_kernel_library() -> str | None:
    """Steer bigdl to the kernel library the CPU's flags allow; return the one requested.

    bigdl's native wrapper gives every non-GenuineIntel CPU its plain-AVX build. Its Python
    loader honours LLAMA_CPP_LIB (undocumented, inherited from llama-cpp-python), which loads
    a backend library directly. On Intel the wrapper's own check already picks by flags (and
    AMX needs the wrapper's set-up), so we leave it alone there. A user's own LLAMA_CPP_LIB wins.
    """
    if _NATIVE_MODULE in sys.modules or "LLAMA_CPP_LIB" in os.environ:
        return None
    info = cpu_info()
    if info.is_intel:
        return None
    kernel = best_kernel(info.flags - {"amx_int8", "amx_tile"})
    library = kernel_library(kernel)
    if library is None:
        return None
    os.environ["LLAMA_CPP_LIB"] = str(library)
    return kernel


def loaded_kernel() -> str | None:
    """The bigdl kernel library actually mapped into this process (None before the first load)."""
    try:
        maps = Path("/proc/self/maps").read_text(encoding="utf-8", errors="replace")
    except OSError:
        return None
    match = _KERNEL_LIB.search(maps)
    return match.group(1) if match else None


def load_native_library() -> tuple[str | None, str | None]:
    """(kernel in use, error): load bigdl's native wrapper the way a model load would."""
    select_kernel_library()
    try:
        import importlib

        importlib.import_module(_NATIVE_MODULE)
    except Exception as error:  # reported by `doctor`, which exists to show such things
        return None, f"{type(error).__name__}: {error}"
    return loaded_kernel(), None


def expected_kernel() -> str:
    """What bigdl would load on this CPU after our steering (for `doctor` before any load)."""
    info = cpu_info()
    if "LLAMA_CPP_LIB" in os.environ:
        match = _KERNEL_LIB.search(os.environ["LLAMA_CPP_LIB"])
        return match.group(1) if match else os.environ["LLAMA_CPP_LIB"]
    return (
        best_kernel(info.flags)
        if info.is_intel
        else best_kernel(info.flags - {"amx_int8", "amx_tile"})
    )


# From how many prompt rows a linear layer is computed by dequantizing its INT4 weight to
# fp32 and calling torch's GEMM instead of bigdl's INT4 kernel, on CPUs without AMX.
# Measured on the 1.8B model (docs/BENCHMARKS.md, "Prefill path"): with the AVX-512 kernel
# 47 -> 86 tok/s at 512 tokens, break-even at 128 rows, slower below (29 vs 41 at 64).
GEMM_MIN_ROWS = 128


def batch_path_for(kernel: str | None) -> str:
    """ "int4" or "gemm": how a prompt chunk's linear layers run with this kernel library.

    The AMX library multiplies whole batches with AMX tiles (190 tok/s at 512 tokens
    against 79 through GEMM, measured), so it keeps them. bigdl's own choice keys on
    `is_server() and not is_spr()`, which reads "avx512_vnni and avx_vnni" as Sapphire
    Rapids: Zen 4/5 match it and never get the GEMM path; AVX2 machines never do either.
    """
    return "int4" if kernel == "amx" else "gemm"


def use_batch_path(path: str, min_rows: int = GEMM_MIN_ROWS) -> None:
    """Make bigdl's INT4 linear layers take `path` for batches of `min_rows` rows or more.

    low_bit_linear re-imports is_server/is_spr from isa_checker on every call and reads
    its threshold as a module global, and nothing else in bigdl uses them.
    """
    from bigdl.llm.transformers import low_bit_linear
    from bigdl.llm.utils import isa_checker

    gemm = path == "gemm"
    isa_checker.is_server = lambda: gemm
    isa_checker.is_spr = lambda: False
    low_bit_linear.TORCH_LINEAR_THRESHOLD = min_rows


def bigdl_version() -> str:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("bigdl-llm")
    except PackageNotFoundError:
        return "not installed"


def quiet_libraries() -> None:
    """transformers' warnings (e.g. "Special tokens have been added...") are for model
    authors; our users would read them as errors. They still reach the log file."""
    import transformers

    transformers.utils.logging.set_verbosity_error()


def quantize_checkpoint(
    source_dir: Path,
    out_dir: Path,
    *,
    low_bit: str,
    trust_remote_code: bool,
    attn_implementation: str | None,
    optimize_model: bool = True,
) -> Any:
    """Load a full-precision checkpoint folder, convert its linear layers, `save_low_bit` it.

    Loads in bf16 with low_cpu_mem_usage: it halves the peak RAM of quantizing (the fp32
    load of the 1.8B model peaked at 7.1 GB) and keeps the embedding bf16 on disk.
    Returns the converted model so the caller can check it before it is discarded.
    """
    import torch

    select_kernel_library()
    quiet_libraries()
    from bigdl.llm.transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.from_pretrained(
        str(source_dir),
        load_in_low_bit=low_bit,
        optimize_model=optimize_model,
        trust_remote_code=trust_remote_code,
        torch_dtype=torch.bfloat16,
        low_cpu_mem_usage=True,
        **kwargs,
    )
    model.save_low_bit(str(out_dir))
    return model


def load_quantized(
    model_dir: Path,
    *,
    optimize_model: bool,
    trust_remote_code: bool,
    attn_implementation: str | None,
) -> Any:
    """Load a `save_low_bit` folder; the flags must match those it was saved with."""
    select_kernel_library()
    quiet_libraries()
    from bigdl.llm.transformers import AutoModelForCausalLM

    kwargs: dict[str, Any] = {}
    if attn_implementation:
        kwargs["attn_implementation"] = attn_implementation
    model = AutoModelForCausalLM.load_low_bit(
        str(model_dir),
        optimize_model=optimize_model,
        trust_remote_code=trust_remote_code,
        **kwargs,
    )
    share_rotary_tables(model)
    use_batch_path(batch_path_for(loaded_kernel()))
    return compute_in_float32(model)


def share_rotary_tables(model: Any) -> Any:
    """One rotary cos/sin table for all layers instead of one per layer.

    transformers 4.37 gives every attention layer its own rotary embedding, each caching
    cos/sin for max_position_embeddings positions: for Qwen1.5-1.8B (32768 positions,
    24 layers) that is ~800 MB in fp32 of identical tables. The layers only read them.
    """
    import torch

    first = None
    for module in model.modules():
        rotary = getattr(module, "rotary_emb", None)
        if rotary is None or not hasattr(rotary, "inv_freq"):
            continue
        if first is None:
            first = rotary
        elif type(rotary) is type(first) and torch.equal(rotary.inv_freq, first.inv_freq):
            module.rotary_emb = first
    return model


def compute_in_float32(model: Any) -> Any:
    """Run activations in fp32 while the embedding table stays bf16 in memory.

    Models are saved with a bf16 embedding (half the disk and RAM: 622 MB instead of
    1.24 GB for Qwen-1.8B's 151936x2048 table), but bigdl's kernels and attention masks
    assume fp32 activations: with bf16 ones, prefilling on top of a KV cache fails on a
    mask/query dtype mismatch. So: every other float tensor to fp32 (norms, biases; the
    INT4 weights are not floating point and stay as they are), and the embedding's output
    cast to fp32 as it leaves the table.
    """
    import torch

    embedding = model.get_input_embeddings()
    for module in model.modules():
        if module is embedding:
            continue
        for param in module.parameters(recurse=False):
            if param.is_floating_point() and param.dtype != torch.float32:
                param.data = param.data.float()
        for name, buffer in module.named_buffers(recurse=False):
            if buffer.is_floating_point() and buffer.dtype != torch.float32:
                setattr(module, name, buffer.float())
    embedding.register_forward_hook(lambda _module, _inputs, output: output.float())
    model.config.torch_dtype = torch.float32
    return model


def int4_matvec(linears: list[Any]) -> Callable[[Any], Any] | None:
    """One call into bigdl's CPU kernel computing `linears` (same input) for one row.

    bigdl's own LowBitLinear.forward rebuilds the kernel's ctypes arguments and re-checks
    device, dtype and training mode on every call: ~40 us, 169 times a token on the 1.8B
    model. Here they are built once. Layers that read the same input (q/k/v, gate/up)
    become one matrix, which saves the kernel's per-call thread start too: ggml stores
    INT4 weights row by row, so the fused matrix is the layers' bytes concatenated and
    each output is bit-identical. The layers then use views of it (prompts still run
    through them) and their old copies' pages are returned, so fusing costs no RAM.
    Returns None for anything but bigdl's CPU linear layers of one quantization type.
    """
    import ctypes

    import torch
    from bigdl.llm.transformers.low_bit_linear import LowBitLinear

    from qwen_tui.engine import memory

    if not linears or not all(type(layer) is LowBitLinear for layer in linears):
        return None
    first = linears[0]
    if any(
        layer.weight.device.type != "cpu"
        or layer.qtype != first.qtype
        or layer.in_len != first.in_len
        or layer.optimize_lm_head
        for layer in linears
    ):
        return None
    weight, retired = first.weight.data, []
    if len(linears) > 1:
        weight = torch.cat([layer.weight.data for layer in linears])
        offset = 0
        for layer in linears:
            old = layer.weight.data
            layer.weight.data = weight[offset : offset + old.numel()]
            offset += old.numel()
            retired.append(old)
            memory.drop_pages(old)
    out_len = sum(layer.out_len for layer in linears)
    bias = None
    if any(layer.bias is not None for layer in linears):
        bias = torch.cat(
            [
                layer.bias.data.float() if layer.bias is not None else torch.zeros(layer.out_len)
                for layer in linears
            ]
        )
    kernel = importlib.import_module(_NATIVE_MODULE)._lib.ggml_compute_forward_mul_mat_q_fp32
    weight_ne = (ctypes.c_int64 * 2)(first.in_len, out_len)
    weight_data = ctypes.c_void_p(weight.data_ptr())
    input_ne = (ctypes.c_int64 * 2)(first.in_len, 1)
    qtype = first.qtype

    def matvec(x: Any) -> Any:
        """x: contiguous fp32 [1, in_len] -> [1, out_len]."""
        out = torch.empty((1, out_len))
        kernel(
            weight_ne,
            weight_data,
            qtype,
            input_ne,
            ctypes.c_void_p(x.data_ptr()),
            ctypes.c_void_p(out.data_ptr()),
        )
        if bias is not None:
            out += bias
        return out

    # The closure owns the fused matrix; the retired tensors stay allocated (their pages
    # returned) so that no allocation can reuse memory the system was told to drop.
    matvec.weight, matvec.retired = weight, retired  # type: ignore[attr-defined]
    return matvec
