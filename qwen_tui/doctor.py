"""`qwen-tui doctor`: everything a bug report needs, as plain text.

It loads no model, but it does load bigdl's native kernel library (cheap) to report which
one this CPU really gets: on non-Intel CPUs bigdl's own choice would be the slow AVX build.
"""

from __future__ import annotations

import os
import platform
import sys
from importlib.metadata import PackageNotFoundError, version

from qwen_tui import __version__
from qwen_tui.engine import bigdl
from qwen_tui.engine.cpu import best_kernel, cpu_info, runnable_kernels
from qwen_tui.model_files import list_installed
from qwen_tui.paths import Paths
from qwen_tui.units import human_bytes

PACKAGES = (
    "bigdl-llm",
    "torch",
    "transformers",
    "tokenizers",
    "accelerate",
    "huggingface_hub",
    "hf_transfer",
    "textual",
    "numpy",
    "gguf",
    "tiktoken",
)


def _version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "not installed"


def report(paths: Paths, endpoint: str, *, load_kernel: bool = True) -> list[str]:
    import psutil

    cpu = cpu_info()
    memory = psutil.virtual_memory()
    lines = [
        f"qwen-tui {__version__}",
        f"python {sys.version.split()[0]} on {platform.platform()}",
        "",
        "packages:",
        *(f"  {name:<16} {_version(name)}" for name in PACKAGES),
        "",
        f"cpu: {cpu.model_name} ({cpu.vendor})",
        f"  cores: {cpu.physical_cores} physical, {cpu.logical_cores} logical",
        f"  isa: {' '.join(cpu.reported_flags()) or 'none of interest'}",
        f"  best bigdl kernel for these flags: {best_kernel(cpu.flags)}",
        f"  bigdl kernels these flags can run: {', '.join(runnable_kernels(cpu.flags))}",
    ]
    if load_kernel:
        kernel, error = bigdl.load_native_library()
        lines.append(
            f"  bigdl kernel loaded: {kernel or 'none'}" + (f" ({error})" if error else "")
        )
        if kernel:
            path = bigdl.batch_path_for(kernel)
            how = "INT4 kernel" if path == "int4" else f"fp32 GEMM from {bigdl.GEMM_MIN_ROWS} rows"
            lines.append(f"  prompt chunks computed with: {how}")
        if kernel == "avx" and best_kernel(cpu.flags) != "avx":
            lines.append(
                "  warning: the slow plain-AVX kernels are in use although the CPU can do "
                "better (LLAMA_CPP_LIB set by hand?)"
            )
    lines += [
        f"ram: {human_bytes(memory.total, 'GB', digits=1)} total, "
        f"{human_bytes(memory.available, 'GB', digits=1)} available",
        f"threads: OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS', '(unset)')}",
        "",
        "paths:"
        + (
            f"  (QWEN_TUI_HOME={os.environ['QWEN_TUI_HOME']})"
            if "QWEN_TUI_HOME" in os.environ
            else ""
        ),
        *(f"  {name:<10} {path}" for name, path in paths.as_dict().items()),
        f"hub endpoint: {endpoint}",
        "",
        "installed models:",
    ]
    models = list_installed(paths.models_dir)
    lines += [f"  {m.name:<20} {m.manifest.low_bit:<10} {m.manifest.source}" for m in models]
    if not models:
        lines.append("  none")
    return lines
