"""What the CPU can do, read from /proc/cpuinfo, and which bigdl kernel library fits it.

bigdl-llm picks its native INT4 library in a constructor that checks the CPU vendor first:
anything but "GenuineIntel" gets the plain-AVX build, 2.5x slower at decode on our AMD Zen
machines. We decide from the ISA flags instead, on any vendor (same order as bigdl's own
check on Intel, so Intel machines get what bigdl would pick).
"""

from __future__ import annotations

import os
import platform
from dataclasses import dataclass
from functools import cache
from pathlib import Path

# Kernel libraries bigdl ships (`libllama_<name>.so`), best first, with the flags each needs.
KERNEL_REQUIREMENTS: tuple[tuple[str, frozenset[str]], ...] = (
    ("amx", frozenset({"amx_int8", "amx_tile"})),
    ("avx512", frozenset({"avx512f", "avx512bw", "avx512dq", "avx512vl", "avx512_vnni"})),
    ("avxvnni", frozenset({"avx_vnni", "avx2", "fma"})),
    ("avx2", frozenset({"avx2", "fma", "f16c"})),
    ("avx", frozenset({"avx"})),
)
REPORTED_FLAGS = (
    "avx",
    "avx2",
    "fma",
    "avx_vnni",
    "avx512f",
    "avx512_vnni",
    "avx512_bf16",
    "amx_tile",
    "amx_int8",
    "amx_bf16",
)


@dataclass(frozen=True)
class CpuInfo:
    vendor: str
    """e.g. GenuineIntel, AuthenticAMD."""
    model_name: str
    flags: frozenset[str]
    logical_cores: int
    physical_cores: int

    @property
    def is_intel(self) -> bool:
        return self.vendor == "GenuineIntel"

    def reported_flags(self) -> list[str]:
        return [flag for flag in REPORTED_FLAGS if flag in self.flags]


def parse_cpuinfo(text: str) -> tuple[str, str, frozenset[str]]:
    """(vendor, model name, flags) of the first processor block of /proc/cpuinfo."""
    vendor = model = ""
    flags: frozenset[str] = frozenset()
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip(), value.strip()
        if key == "vendor_id" and not vendor:
            vendor = value
        elif key == "model name" and not model:
            model = value
        elif key == "flags" and not flags:
            flags = frozenset(value.split())
    return vendor, model, flags


@cache
def cpu_info() -> CpuInfo:
    try:
        text = Path("/proc/cpuinfo").read_text(encoding="utf-8", errors="replace")
    except OSError:
        text = ""
    vendor, model, flags = parse_cpuinfo(text)
    logical = os.cpu_count() or 1
    try:
        import psutil

        physical = psutil.cpu_count(logical=False) or logical
    except ImportError:  # psutil is a dependency; this only guards odd platforms
        physical = logical
    return CpuInfo(vendor, model or platform.processor(), flags, logical, physical)


def runnable_kernels(flags: frozenset[str]) -> list[str]:
    """Every bigdl kernel library this set of ISA flags can run, fastest first."""
    return [name for name, needed in KERNEL_REQUIREMENTS if needed <= flags] or ["avx"]


def best_kernel(flags: frozenset[str]) -> str:
    """The fastest bigdl kernel library this set of ISA flags can run."""
    return runnable_kernels(flags)[0]


def default_threads() -> int:
    """Physical cores: a second hyper-thread per core only adds contention to the INT4 kernels."""
    return max(1, cpu_info().physical_cores)
