"""The layers point one way (STYLE.md §1): the layers under the UI never import textual (ask,
bench and the tests rely on it), the import-linter contracts of pyproject.toml hold, and no
two modules of the package import each other, directly or round a loop."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from collections.abc import Iterable, Mapping
from pathlib import Path

import grimp
import pytest

import qwen_tui

REPO = Path(__file__).resolve().parents[2]

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
    "qwen_tui.model_setup.gguf_metadata",
    "qwen_tui.model_setup.gguf_tensors",
    "qwen_tui.model_setup.gguf_tokenizer",
    "qwen_tui.model_setup.importer",
    "qwen_tui.model_setup.installed",
    "qwen_tui.model_setup.quantize",
    "qwen_tui.model_setup.setup_flow",
    "qwen_tui.commands.ask",
    "qwen_tui.commands.reports",
    "qwen_tui.commands.install",
    "qwen_tui.commands.model_choice",
    "qwen_tui.commands.app_start",
    "qwen_tui.setup_cli",
    "qwen_tui.cli_settings",
    "qwen_tui.cli_signals",
    "qwen_tui.console",
    "qwen_tui.exit_codes",
    "qwen_tui.model_files",
    "qwen_tui.units",
    "qwen_tui.stats_text",
    "qwen_tui.low_bit",
    "qwen_tui.engine.stats",
    "qwen_tui.actions",
    "qwen_tui.visible_text",
    "qwen_tui.terminal_input",
    "qwen_tui.store.state",
    "qwen_tui.store.presets",
    "qwen_tui.chat",
    "qwen_tui.chat.reply",
    "qwen_tui.chat.state",
    "qwen_tui.chat.branches",
    "qwen_tui.chat.reply_lifecycle",
    "qwen_tui.chat.left_off",
    "qwen_tui.chat.model_slot",
    "qwen_tui.attachment",
    "qwen_tui.context_sources",
    "qwen_tui.well_formed",
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


def test_import_contracts_hold() -> None:
    """`make lint`'s import-linter run, here too so that `make test` (CI) enforces it."""
    lint_imports = Path(sys.executable).with_name("lint-imports")
    result = subprocess.run(
        [str(lint_imports), "--no-cache", "--no-logo"], cwd=REPO, capture_output=True, text=True
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "0 broken" in result.stdout


def import_cycles(imports: Mapping[str, Iterable[str]]) -> list[list[str]]:
    """Groups of modules that reach each other through imports (strongly connected
    components of two or more, or a module importing itself), each sorted; Tarjan's
    algorithm, iterative so a long chain cannot hit the recursion limit."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []
    for root in sorted(imports):
        if root in index:
            continue
        work = [(root, iter(sorted(imports.get(root, ()))))]
        index[root] = low[root] = len(index)
        stack.append(root)
        on_stack.add(root)
        while work:
            node, targets = work[-1]
            for target in targets:
                if target not in index:
                    index[target] = low[target] = len(index)
                    stack.append(target)
                    on_stack.add(target)
                    work.append((target, iter(sorted(imports.get(target, ())))))
                    break
                if target in on_stack:
                    low[node] = min(low[node], index[target])
            else:
                work.pop()
                if work:
                    parent = work[-1][0]
                    low[parent] = min(low[parent], low[node])
                if low[node] == index[node]:
                    group = []
                    while True:
                        member = stack.pop()
                        on_stack.discard(member)
                        group.append(member)
                        if member == node:
                            break
                    if len(group) > 1 or node in imports.get(node, ()):
                        cycles.append(sorted(group))
    return sorted(cycles)


def module_imports(package: str) -> dict[str, set[str]]:
    """Every module of `package` -> the package's modules it imports, at module level or
    inside a function. Imports under `if TYPE_CHECKING:` are left out: they never run, so a
    loop they close is no loop at run time (the screens name the app class for type hints)."""
    graph = grimp.build_graph(package, cache_dir=None, exclude_type_checking_imports=True)
    return {module: graph.find_modules_directly_imported_by(module) for module in graph.modules}


def test_no_import_cycle_among_the_package_modules() -> None:
    cycles = import_cycles(module_imports(qwen_tui.__name__))
    assert cycles == [], "modules that import each other: " + "; ".join(
        " <-> ".join(group) for group in cycles
    )


def test_a_cycle_closed_inside_a_function_is_found(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The check above sees lazy imports too: a planted loop through one is reported."""
    package = tmp_path / "planted_cycle"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "low.py").write_text(
        textwrap.dedent(
            """
            def late():
                from planted_cycle import high
                return high
            """
        )
    )
    (package / "high.py").write_text("from planted_cycle import low\n")
    (package / "alone.py").write_text("from planted_cycle import low\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    cycles = import_cycles(module_imports("planted_cycle"))
    assert cycles == [["planted_cycle.high", "planted_cycle.low"]]
