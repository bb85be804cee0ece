"""How long `qwen-tui` takes to draw its prompt, against a bare Textual app with one Input.

    python benchmarks/launch_time.py [--pairs 8] [--no-bytecode]

Both start on an 80x24 pseudo-terminal (tests/terminal's harness: the screen is read back with
pyte) with the same Python and environment; the clock runs from starting the process to the
text "Message" (the prompt's placeholder) on the screen. The two alternate, one pair at a
time, so a noisy stretch of a shared machine hits both. The target (issue 14) is qwen-tui's
median at most 1.5x the bare app's. Prints a table and writes
benchmarks/results/launch_time-<time>.json.

qwen-tui starts as a user who set up the demo model starts it: a fresh QWEN_TUI_HOME (no
sessions, no state) whose models folder holds the demo model (prepared once into
benchmarks/cache/, about half a minute), no network (HF_HUB_OFFLINE). The model's load starts in
a worker at mount, as it does for every user. (With no model at all, `qwen-tui` first prepares
the demo model, half a minute once: not a start worth timing.)

qwen_tui's bytecode is compiled first, as `make run` does (`python -m compileall -q qwen_tui`):
with PYTHONDONTWRITEBYTECODE set Python never writes it, and compiling ~150 modules at every
start is a fifth of it. `--no-bytecode` deletes qwen_tui's __pycache__ folders instead, to
measure a start without it.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from tests.terminal.tui_process import SIZE, TuiProcess  # noqa: E402  (needs ROOT on sys.path)

CACHED_HOME = ROOT / "benchmarks" / "cache" / "launch-home"
"""A QWEN_TUI_HOME with the demo model installed, reused by every run (git-ignored)."""

BARE_APP = """
from textual.app import App
from textual.widgets import Input

class Bare(App):
    def compose(self):
        yield Input(placeholder="Message")

Bare().run()
"""
"""The baseline: the least a Textual app with a prompt box does before its first frame."""

POLL_S = 0.005
TIMEOUT_S = 60.0


def seconds_to_show(prefix: tuple[str, ...], wanted: str, env: dict[str, str]) -> float:
    """Start `python PREFIX` on a pty and time it until `wanted` is on the screen."""
    started = time.perf_counter()
    tui = TuiProcess(prefix=prefix, env=env, size=SIZE)
    try:
        while wanted not in tui.screen_text():
            if not tui.alive():
                raise RuntimeError(f"{prefix} exited before drawing:\n{tui.screen_text()}")
            if time.perf_counter() - started > TIMEOUT_S:
                raise RuntimeError(f"{prefix} never showed {wanted!r}:\n{tui.screen_text()}")
            time.sleep(POLL_S)
        return time.perf_counter() - started
    finally:
        tui.kill()


def demo_home() -> Path:
    """The cached home with the demo model, prepared on first use."""
    os.environ["QWEN_TUI_HOME"] = str(CACHED_HOME)
    from qwen_tui.model_setup.importer import ensure_demo_model
    from qwen_tui.paths import get_paths

    ensure_demo_model(get_paths(), lambda text, _fraction: print(text, file=sys.stderr))
    return get_paths().models_dir


def fresh_home(models: Path) -> Path:
    """A new QWEN_TUI_HOME for one start: nothing in it but a link to the models."""
    home = Path(tempfile.mkdtemp(prefix="qwen-tui-launch-"))
    (home / "data").mkdir()
    (home / "data" / "models").symlink_to(models)
    return home


def prepare_bytecode(compiled: bool) -> None:
    """Compile qwen_tui as `make run` does, or remove its bytecode to measure without."""
    package = ROOT / "qwen_tui"
    if compiled:
        subprocess.run([sys.executable, "-m", "compileall", "-q", str(package)], check=True)
        return
    for folder in package.rglob("__pycache__"):
        shutil.rmtree(folder)


def summary(times: list[float]) -> dict[str, float]:
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pairs", type=int, default=8)
    parser.add_argument(
        "--no-bytecode", action="store_true", help="start qwen-tui without its compiled bytecode"
    )
    args = parser.parse_args()
    prepare_bytecode(not args.no_bytecode)
    models = demo_home()
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1"}
    qwen: list[float] = []
    bare: list[float] = []
    for pair in range(args.pairs):
        # Which goes first alternates too: the first of a pair may find colder caches.
        order = ("qwen", "bare") if pair % 2 == 0 else ("bare", "qwen")
        for which in order:
            if which == "bare":
                bare.append(seconds_to_show(("-c", BARE_APP), "Message", env))
            else:
                home = fresh_home(models)
                home_env = env | {"QWEN_TUI_HOME": str(home)}
                qwen.append(seconds_to_show(("-m", "qwen_tui"), "Message", home_env))
                shutil.rmtree(home)
        print(f"pair {pair + 1}: qwen-tui {qwen[-1]:.2f} s, bare {bare[-1]:.2f} s", file=sys.stderr)
    result = {
        "home": "demo model installed",
        "pairs": args.pairs,
        "bytecode": not args.no_bytecode,
        "size": list(SIZE),
        "qwen_tui": summary(qwen),
        "bare_textual": summary(bare),
        "qwen_tui_s": qwen,
        "bare_textual_s": bare,
        "python": platform.python_version(),
        "pythondontwritebytecode": bool(os.environ.get("PYTHONDONTWRITEBYTECODE")),
        "load_average": list(os.getloadavg()),
        "cpu_count": os.cpu_count(),
    }
    result["ratio"] = result["qwen_tui"]["median_s"] / result["bare_textual"]["median_s"]
    print(f"{'app (80x24 pty)':<24}{'median s':>10}{'min':>8}{'max':>8}")
    for name, key in (("qwen-tui", "qwen_tui"), ("bare Textual + Input", "bare_textual")):
        row = result[key]
        print(f"{name:<24}{row['median_s']:>10.2f}{row['min_s']:>8.2f}{row['max_s']:>8.2f}")
    print(f"ratio {result['ratio']:.2f}x (target: at most 1.5x), {args.pairs} alternated pairs")
    out = ROOT / "benchmarks" / "results" / f"launch_time-{time.strftime('%Y%m%d-%H%M%S')}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_text(json.dumps(result, indent=2))
    print(f"wrote {out.relative_to(ROOT)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
