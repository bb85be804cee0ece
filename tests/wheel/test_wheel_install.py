"""qwen-tui as a tool: built as a wheel, installed into a fresh venv, run from outside the repo.

This is what `uv tool install .` and `pipx install .` do (README, "Install as a tool"): build a
wheel, install it into an environment of its own and put `qwen-tui` on PATH. The test builds
the wheel from a copy of pyproject.toml, README.md and qwen_tui/ only (so nothing else in the
checkout can leak in), offline (`--no-build-isolation --no-index`), installs it with pip
`--no-deps` into a venv made from the base interpreter, and runs `qwen-tui doctor`,
`qwen-tui ask --model demo` and `qwen-tui bench --model demo --quick` from a temporary folder
with its own QWEN_TUI_HOME and no PYTHONPATH.

The one shortcut, so that CI (no network beyond package registries, ~15 minutes) does not fetch
torch and the rest again: once qwen_tui is installed, a `.pth` file in the fresh venv appends the
test interpreter's site-packages (the project venv, where `make install` put the pinned
dependencies and the demo model's GGUF package) to sys.path. Python does not run the `.pth` files
of a folder added that way, so the venv's editable qwen_tui finder stays inactive; the test
checks that `qwen_tui` is imported from the fresh venv, not from the checkout.
"""

from __future__ import annotations

import ast
import os
import shutil
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import pytest

from qwen_tui.paths import get_paths

ROOT = Path(__file__).resolve().parents[2]


def run(command: list[str | Path], **kwargs: object) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(
        [str(part) for part in command], capture_output=True, text=True, timeout=600, **kwargs
    )
    assert done.returncode == 0, f"{command}: exit {done.returncode}\n{done.stdout}{done.stderr}"
    return done


def build_wheel(work: Path) -> Path:
    source = work / "source"
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy2(ROOT / name, source / name)
    shutil.copytree(
        ROOT / "qwen_tui", source / "qwen_tui", ignore=shutil.ignore_patterns("__pycache__")
    )
    dist = work / "dist"
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check"]
    run([*pip, "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-w", dist, source])
    (wheel,) = dist.glob("qwen_tui-*.whl")
    return wheel


def shipped_files() -> set[str]:
    """What the app reads from its own package at run time: its modules and its styles."""
    return {
        path.relative_to(ROOT).as_posix()
        for pattern in ("*.py", "*.tcss")
        for path in (ROOT / "qwen_tui").rglob(pattern)
    }


def fresh_venv(work: Path, wheel: Path) -> Path:
    """A venv from the base interpreter with the wheel installed; returns its bin/ folder."""
    venv = work / "venv"
    base = Path(sys.base_prefix) / "bin" / f"python{sys.version_info[0]}.{sys.version_info[1]}"
    run([base, "-m", "venv", "--without-pip", venv])
    python = venv / "bin" / "python"
    # Installed before the dependencies are visible: pip sees an empty environment.
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--python", python]
    run([*pip, "install", "--no-deps", "--no-index", wheel])
    site = Path(
        run(
            [python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]
        ).stdout.strip()
    )
    (site / "project_dependencies.pth").write_text(sysconfig.get_paths()["purelib"] + "\n")
    return venv / "bin"


# Run by the fresh venv's python: each requirement the installed wheel declares is met by the
# reused environment, at the version constraints.txt pins (what `pip install -c` would pick).
CHECK_REQUIREMENTS = """
import sys
from importlib.metadata import PackageNotFoundError, requires, version
from packaging.requirements import Requirement
pins = dict(
    line.strip().split("==", 1) for line in open(sys.argv[1]) if "==" in line and line[0] != "#"
)
pins = {Requirement(name).name.lower().replace("_", "-"): v for name, v in pins.items()}
for text in requires("qwen-tui"):
    req = Requirement(text)
    if req.marker and not req.marker.evaluate({"extra": ""}):
        continue  # an extra: [test], [llamacpp]
    try:
        found = version(req.name)
    except PackageNotFoundError:
        sys.exit(f"{req.name} is declared but not installed")
    if not req.specifier.contains(found, prereleases=True):
        sys.exit(f"{req.name} {found} does not meet {req}")
    pin = pins.get(req.name.lower().replace("_", "-"))
    if pin is None or found.split("+")[0] != pin:
        sys.exit(f"{req.name} {found}: constraints.txt pins {pin}")
print("requirements met")
"""


@pytest.mark.slow
def test_wheel_installs_and_runs_outside_the_repository(
    tmp_path: Path, demo_home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    started = time.monotonic()
    wheel = build_wheel(tmp_path)
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
    assert shipped_files() <= names, shipped_files() - names
    assert not {n for n in names if n.startswith(("benchmarks/", "tests/"))}
    assert any(n.endswith("entry_points.txt") for n in names)

    bin_dir = fresh_venv(tmp_path, wheel)
    home, outside = tmp_path / "home", tmp_path / "elsewhere"
    outside.mkdir()
    env = {k: v for k, v in os.environ.items() if not k.startswith(("PYTHON", "VIRTUAL_ENV"))}
    env |= {
        "PATH": f"{bin_dir}{os.pathsep}{os.defpath}",
        "QWEN_TUI_HOME": str(home),
        "HF_HUB_OFFLINE": "1",
        "NO_COLOR": "1",
    }
    # The demo model the session already prepared (the same GGUF -> quantize the app runs).
    monkeypatch.setenv("QWEN_TUI_HOME", str(demo_home))
    demo = get_paths().models_dir / "demo"
    monkeypatch.setenv("QWEN_TUI_HOME", str(home))
    get_paths().models_dir.mkdir(parents=True)
    (get_paths().models_dir / "demo").symlink_to(demo, target_is_directory=True)

    def qwen_tui(*args: str) -> str:
        done = run([bin_dir / "qwen-tui", *args], cwd=outside, env=env)
        print(f"$ qwen-tui {' '.join(args)}\n{done.stdout}{done.stderr}")
        return done.stdout

    where = run(
        [bin_dir / "python", "-c", "import qwen_tui; print(qwen_tui.__file__)"],
        cwd=outside,
        env=env,
    ).stdout.strip()
    assert Path(where).is_relative_to(bin_dir.parent), where
    python = bin_dir / "python"
    run([python, "-c", CHECK_REQUIREMENTS, ROOT / "constraints.txt"], cwd=outside, env=env)

    doctor = qwen_tui("doctor")
    assert str(home) in doctor and "demo" in doctor
    answer = qwen_tui("ask", "--model", "demo", "--max-tokens", "12", "What is 2+2?")
    assert answer.strip()
    bench = qwen_tui("bench", "--model", "demo", "--quick")
    assert bench.startswith("demo: bigdl kernel ") and "decode tok/s" in bench
    print(f"wheel test: {time.monotonic() - started:.1f} s (demo model prepared beforehand)")


def test_the_package_imports_nothing_of_the_checkout() -> None:
    """The wheel holds qwen_tui/ only: no module in it may import benchmarks/ or tests/ (at the
    top or inside a function) or reach them by changing sys.path."""
    found = []
    for path in sorted((ROOT / "qwen_tui").rglob("*.py")):
        text = path.read_text(encoding="utf-8")
        where = path.relative_to(ROOT)
        if "sys.path" in text:
            found.append(f"{where}: changes sys.path")
        for node in ast.walk(ast.parse(text)):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            else:
                continue
            found += [f"{where}:{node.lineno}: imports {n}" for n in names if _outside(n)]
    assert not found, "\n".join(found)


def _outside(module: str) -> bool:
    return module.split(".")[0] in ("benchmarks", "tests")
