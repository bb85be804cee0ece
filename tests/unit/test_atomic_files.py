"""Every file the app writes outside the sessions folder goes through the atomic writer:
a write that fails half way (here a real one: the process's file-size limit, EFBIG) leaves
the old file whole and no temp file behind."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest

from qwen_tui.conversation import Session
from qwen_tui.model_files import MANIFEST_NAME, ModelManifest, read_manifest, write_manifest
from qwen_tui.store.export import write_export

MANIFEST = ModelManifest(
    name="old", source="a/b", arch="Qwen2ForCausalLM", model_type="qwen2", low_bit="sym_int4",
    context_length=2048,
)  # fmt: skip

# Runs `write` in a process that may write at most 64 bytes to any file: the first
# os.write goes through, the next fails with EFBIG, half way into the new file.
LIMITED = """
import resource, signal, sys
from pathlib import Path
signal.signal(signal.SIGXFSZ, signal.SIG_IGN)  # a failed write, not a killed process
resource.setrlimit(resource.RLIMIT_FSIZE, (64, 64))
target = Path(sys.argv[1])
{write}
"""

WRITERS = {
    "manifest": """
from qwen_tui.model_files import ModelManifest, write_manifest
manifest = ModelManifest(name="new" * 100, source="x", arch="a", model_type="t",
                         low_bit="sym_int4", context_length=1)
write_manifest(target.parent, manifest)
""",
    "export": """
from qwen_tui.conversation import Session
from qwen_tui.store.export import write_export
session = Session(title="new")
session.add("user", "long question " * 100)
write_export(session, target)
""",
}


def _old_file(kind: str, folder: Path) -> Path:
    if kind == "manifest":
        write_manifest(folder, MANIFEST)
        return folder / MANIFEST_NAME
    path = folder / "chat.md"
    write_export(Session(title="old"), path)
    return path


@pytest.mark.parametrize("kind", sorted(WRITERS))
def test_a_write_that_fails_half_way_keeps_the_old_file(tmp_path: Path, kind: str) -> None:
    path = _old_file(kind, tmp_path)
    before = path.read_bytes()
    code = LIMITED.format(write=textwrap.dedent(WRITERS[kind]))
    env = {**os.environ, "PYTHONDONTWRITEBYTECODE": "1"}
    result = subprocess.run(
        [sys.executable, "-c", code, str(path)], capture_output=True, text=True, env=env
    )
    assert result.returncode != 0 and "File too large" in result.stderr, result.stderr
    assert path.read_bytes() == before
    assert [p.name for p in tmp_path.iterdir()] == [path.name]  # no temp file left


def test_a_file_at_the_old_fixed_temp_name_is_not_written_through(tmp_path: Path) -> None:
    """The manifest once went through `qwen-tui-model.json.tmp`: anything found at that name
    (a stale temp, a symlink someone planted) was overwritten. Temp names are unique now."""
    elsewhere = tmp_path / "elsewhere"
    elsewhere.write_text("keep me")
    (tmp_path / (MANIFEST_NAME + ".tmp")).symlink_to(elsewhere)
    write_manifest(tmp_path, MANIFEST)
    assert elsewhere.read_text() == "keep me"
    assert read_manifest(tmp_path) == MANIFEST
