"""`make bench`: the harness (harness.py) from this checkout, keeping docs/BENCHMARKS.md's table.

    python benchmarks/run.py            # full: both models, both baselines, 3 repeats
    python benchmarks/run.py --quick    # development: 1.8B model, 1 repeat, no baselines/UI
    python benchmarks/run.py --json --model demo --baseline llamacpp

A full run (not --quick, no --model) also rewrites the latest-run section of docs/BENCHMARKS.md.
"""

from __future__ import annotations

import os
import shlex
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks.harness import main  # noqa: E402  (needs the checkout on sys.path first)


def with_docs(argv: list[str]) -> list[str]:
    """Only the default full run is the reference the docs keep."""
    partial = {"--quick", "--model", "--docs", "--repeats", "--baseline", "--lengths"}
    if any(arg.split("=")[0] in partial for arg in argv):
        return argv
    return [*argv, "--docs", str(ROOT / "docs" / "BENCHMARKS.md")]


def command_line(argv: list[str]) -> str:
    """What to type to repeat this run (make exports MAKELEVEL to the commands it runs)."""
    if os.environ.get("MAKELEVEL"):
        return "make bench" + (f' ARGS="{shlex.join(argv)}"' if argv else "")
    return shlex.join(["python", "benchmarks/run.py", *argv])


if __name__ == "__main__":
    argv = sys.argv[1:]
    sys.exit(main(with_docs(argv), prog="benchmarks/run.py", command=command_line(argv)))
