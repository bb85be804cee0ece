"""Models and caches are the user's alone: folders 0700, files 0600, whoever writes them
(our code, transformers, huggingface_hub), even under the usual umask 022."""

from __future__ import annotations

import os
import stat
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qwen_tui.paths import Paths


@pytest.fixture
def usual_umask() -> Iterator[None]:
    old = os.umask(0o022)  # group and others could read what the children create
    try:
        yield
    finally:
        os.umask(old)


def qwen_tui(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qwen_tui", *args], capture_output=True, text=True, timeout=600
    )


def open_modes(root: Path) -> dict[str, str]:
    """Paths under `root` (itself included) that others could reach: not 0700/0600."""
    found = {}
    for path in [root, *root.rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        if path.is_symlink():
            continue
        wanted = 0o700 if path.is_dir() else 0o600
        if mode != wanted:
            found[str(path.relative_to(root.parent))] = oct(mode)
    return found


def test_an_imported_model_is_private(paths: Paths, tiny_checkpoint, usual_umask) -> None:
    imported = qwen_tui("import", str(tiny_checkpoint("llama")), "--name", "mine")
    assert imported.returncode == 0, imported.stderr
    assert (paths.models_dir / "mine").is_dir()
    assert open_modes(paths.models_dir) == {}


def test_folders_an_older_release_left_open_are_closed(paths: Paths, usual_umask) -> None:
    for folder in (paths.models_dir, paths.downloads_dir):
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o755)
    paths.data_dir.chmod(0o755)
    paths.cache_dir.chmod(0o755)
    assert qwen_tui("models").returncode == 0
    for folder in (paths.data_dir, paths.models_dir, paths.cache_dir, paths.downloads_dir):
        assert stat.S_IMODE(folder.stat().st_mode) == 0o700, folder
