"""The layers under the UI never import textual (STYLE.md §1): ask, bench and tests rely on it."""

from __future__ import annotations

import subprocess
import sys

import pytest

UI_FREE = [
    "qwen_tui.config",
    "qwen_tui.conversation",
    "qwen_tui.paths",
    "qwen_tui.store",
    "qwen_tui.engine",
    "qwen_tui.engine.loader",
    "qwen_tui.engine.local",
    "qwen_tui.engine.decode",
    "qwen_tui.engine.prompt",
    "qwen_tui.engine.bigdl",
    "qwen_tui.engine.remote",
    "qwen_tui.model_setup.catalog",
    "qwen_tui.model_setup.download",
    "qwen_tui.model_setup.gguf_import",
    "qwen_tui.model_setup.importer",
    "qwen_tui.model_setup.installed",
    "qwen_tui.model_setup.quantize",
    "qwen_tui.model_setup.setup_flow",
    "qwen_tui.commands",
    "qwen_tui.visible_text",
    "qwen_tui.terminal_input",
    "qwen_tui.store.state",
    "qwen_tui.attachment",
    "qwen_tui.context_sources",
]

# A meta-path finder that refuses textual: importing it anywhere below raises ImportError.
BLOCK_TEXTUAL = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name == "textual" or name.startswith("textual."):
            raise ImportError(f"{name} imported by a UI-free layer")
sys.meta_path.insert(0, Block())
"""


@pytest.mark.parametrize("module", UI_FREE)
def test_module_imports_without_textual(module: str) -> None:
    code = BLOCK_TEXTUAL + f"import {module}\nprint('torch' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    # Heavy libraries load when a model loads, not when the module is imported.
    assert result.stdout.strip() == "False"
