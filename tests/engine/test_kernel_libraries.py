"""The kernel-sensitive engine tests again, under every other bigdl kernel library this CPU runs.

Each library (AVX, AVX2, AVX-VNNI, AVX-512, AMX) rounds differently, and the process picks
one at the first model load, for good. A test that holds only under the library of the machine
it was written on fails CI on the next machine: so every test marked `kernels` runs in this
process (under the library qwen-tui picks here) and once more in a subprocess per other
library the CPU can execute, selected as a user would, with LLAMA_CPP_LIB.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_tui.engine.bigdl import expected_kernel, kernel_library
from qwen_tui.engine.cpu import KERNEL_REQUIREMENTS, cpu_info, runnable_kernels

REPO = Path(__file__).resolve().parents[2]
REQUESTED = "QWEN_TUI_TEST_KERNEL"
"""Set in the subprocess: the library it was started under, checked by the test below."""


@pytest.mark.kernels
def test_the_expected_library_does_the_math(tiny_engine) -> None:
    loaded = tiny_engine("qwen2").info.kernel
    assert loaded == os.environ.get(REQUESTED, expected_kernel())


@pytest.mark.slow
@pytest.mark.parametrize("kernel", [name for name, _needed in KERNEL_REQUIREMENTS])
def test_kernel_sensitive_tests_pass_under(kernel: str, tiny_engine, tmp_path: Path) -> None:
    cpu = cpu_info()
    if kernel not in runnable_kernels(cpu.flags):
        pytest.skip(f"this CPU cannot run the {kernel} library ({cpu.model_name})")
    if kernel == tiny_engine("qwen2").info.kernel:
        pytest.skip(f"{kernel} is this process's library: the main run covered it")
    # A fresh pytest of its own, not one more pytest-xdist worker (make test runs on workers).
    env = {k: v for k, v in os.environ.items() if not k.startswith("PYTEST_XDIST")}
    env[REQUESTED] = kernel
    if kernel == "amx":
        # bigdl's wrapper sets AMX up itself and picks it on Intel CPUs that have it.
        if not cpu.is_intel:
            pytest.skip("bigdl enables AMX only through its wrapper, which needs an Intel CPU")
        env.pop("LLAMA_CPP_LIB", None)
    else:
        library = kernel_library(kernel)
        if library is None:
            pytest.skip(f"this bigdl installation has no libllama_{kernel}.so")
        env["LLAMA_CPP_LIB"] = str(library)
    command = [sys.executable, "-m", "pytest", "-q", "-m", "kernels", "-p", "no:cacheprovider"]
    command += ["--basetemp", str(tmp_path / "run"), "tests/engine"]
    result = subprocess.run(
        command, cwd=REPO, env=env, capture_output=True, text=True, timeout=1800, check=False
    )
    assert result.returncode == 0, (
        f"under {kernel}:\n{result.stdout[-6000:]}\n{result.stderr[-2000:]}"
    )
