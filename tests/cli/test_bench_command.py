"""`qwen-tui bench`: the installed package measures installed models on its own (no checkout,
no UI), under the same JSON keys as `make bench`. Shapes only; timings are never asserted."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Callable

import pytest

from qwen_tui.model_setup.installed import InstalledModel
from qwen_tui.paths import Paths
from tests.cli.in_process import run_main


@pytest.mark.slow
def test_quick_json_measures_the_named_model(
    tiny_quantized: Callable[[str], InstalledModel],
    install_into_home: Callable[[InstalledModel], InstalledModel],
) -> None:
    model = install_into_home(tiny_quantized("qwen2"))
    ran = run_main("bench", "--model", model.name, "--quick", "--json", "--threads", "1")
    assert ran.status == 0, ran.stderr.decode()
    report = json.loads(ran.stdout)
    assert report["model"] == model.name and report["quick"] is True
    assert report["decode_tokens"] == 32 and report["decode_tok_s"] > 0
    assert set(report["ttft_s"]) == set(report["prefill_tok_s"]) == {"32"}
    assert report["ttft_s"]["32"] > 0 and report["prefill_tok_s"]["32"] > 0
    assert report["load_s"] > 0 and report["peak_rss_mb"] > 0 and report["kernel"]
    assert report["threads"] == 1
    assert b"bench: decode" in ran.stderr  # progress goes to stderr, the result to stdout


@pytest.mark.slow
def test_default_is_the_configured_model_and_the_table_names_it(
    tiny_quantized: Callable[[str], InstalledModel],
    install_into_home: Callable[[InstalledModel], InstalledModel],
    paths: Paths,
) -> None:
    install_into_home(tiny_quantized("qwen2"))
    configured = install_into_home(tiny_quantized("llama"))
    paths.config_file.parent.mkdir(parents=True, exist_ok=True)
    paths.config_file.write_text(f'[model]\ndefault = "{configured.name}"\n')
    ran = run_main("bench", "--quick", "--threads", "1")
    assert ran.status == 0, ran.stderr.decode()
    table = ran.stdout.decode()
    assert table.startswith(f"{configured.name}: bigdl kernel ")
    for row in ("load s", "decode tok/s (32-token reply)", "TTFT s @32", "prefill tok/s @32"):
        assert row in table
    assert "peak RSS MB" in table


def test_an_unknown_model_is_a_sentence_and_exit_3() -> None:
    ran = run_main("bench", "--model", "no-such-model", "--quick")
    assert ran.status == 3
    assert b"no-such-model" in ran.stderr and b"Traceback" not in ran.stderr


# Refuses what `qwen-tui bench` must never need: the UI, the source checkout's benchmarks/ and
# tests/, and (until a model loads) torch.
BLOCKED = """
import importlib.abc, sys
class Block(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.split(".")[0] in ("textual", "benchmarks", "tests", "torch"):
            raise ImportError(f"{name} imported by qwen-tui bench")
sys.meta_path.insert(0, Block())
"""


@pytest.mark.parametrize("module", ["qwen_tui.bench", "qwen_tui.engine.measure"])
def test_bench_imports_neither_the_ui_nor_the_checkout(module: str) -> None:
    code = BLOCKED + f"import {module}\nfrom qwen_tui import cli\ncli.build_parser()"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
