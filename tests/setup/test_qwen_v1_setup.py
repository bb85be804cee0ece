"""Setting up Qwen v1 (built from Qwen's real code) runs none of its code; old installs that
do run it keep working and say how to convert; model names with dots, spaces or any script
work everywhere (import, ask, rm)."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_tui.conversation import GenerationSettings, Message
from qwen_tui.engine.base import ReplyDone, TextChunk
from qwen_tui.model_files import (
    InstalledModel,
    ModelManifest,
    find_installed,
    list_installed,
    upgrade_hint,
    write_manifest,
)
from qwen_tui.model_setup.setup_flow import SetupRequest, installed_from, run_setup
from tests.fixtures.qwen_v1_real import (
    QWEN_V1_SKIP_REASON,
    qwen_v1_code_available,
    shared_tiny_qwen_v1,
)
from tests.hub_server import HubServer

QWEN_V1_REPO = "Qwen/Qwen-1_8B-Chat"
GREEDY = GenerationSettings(temperature=0, max_new_tokens=6, repetition_penalty=1.0)

needs_qwen_code = pytest.mark.skipif(not qwen_v1_code_available(), reason=QWEN_V1_SKIP_REASON)


def qwen_tui(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qwen_tui", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=os.environ.copy(),
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def no_remote_code(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Every way transformers runs a repo's code goes through these two functions
    (get_class_from_dynamic_module calls them): fail loudly if either is reached."""
    from transformers import dynamic_module_utils

    calls: list[str] = []

    def refuse(name: str):
        def called(*args, **kwargs):
            calls.append(f"{name}{args[:2]}")
            raise AssertionError(f"remote code was loaded: {name}{args[:2]}")

        return called

    for name in ("get_cached_module_file", "get_class_in_module"):
        monkeypatch.setattr(dynamic_module_utils, name, refuse(name))
    return calls


def reply(engine, text: str = "你好") -> str:
    events = list(engine.generate([Message("system", ""), Message("user", text)], GREEDY))
    assert isinstance(events[-1], ReplyDone) and events[-1].stats.error is None
    return "".join(e.text for e in events if isinstance(e, TextChunk))


@needs_qwen_code
@pytest.mark.slow
def test_catalog_qwen_v1_setup_and_chat_never_call_remote_code(
    tmp_path: Path, tmp_path_factory, paths, no_remote_code, monkeypatch
) -> None:
    """`setup Qwen/Qwen-1_8B-Chat` from the hub, then a chat: no code of the repo is fetched,
    none is imported, and bigdl and transformers are never asked to trust any."""
    from qwen_tui.engine import bigdl
    from qwen_tui.engine.loader import load_engine

    trusted: list[str] = []
    for name in ("quantize_checkpoint", "load_quantized"):
        real = getattr(bigdl, name)

        def spy(*args, _real=real, _name=name, **kwargs):
            if kwargs.get("trust_remote_code"):
                trusted.append(_name)
            return _real(*args, **kwargs)

        monkeypatch.setattr(bigdl, name, spy)
    root = tmp_path / "hub"
    repo = root / QWEN_V1_REPO
    shutil.copytree(shared_tiny_qwen_v1(tmp_path_factory), repo)
    assert list(repo.glob("*.py"))  # the repo does ship code
    # Its chat window below seq_length (2048 here): the context is the smaller of the two.
    generation = json.loads((repo / "generation_config.json").read_text())
    (repo / "generation_config.json").unlink()
    (repo / "generation_config.json").write_text(json.dumps(generation | {"max_window_size": 1000}))
    with HubServer(root) as hub:
        result = run_setup(SetupRequest(QWEN_V1_REPO, endpoint=hub.url), paths)
    assert not any(r.path.endswith(".py") for r in hub.requests)
    model = result.model
    assert not model.manifest.trust_remote_code and model.manifest.chat_format == "qwen-v1"
    assert model.manifest.converted_from == "QWenLMHeadModel"
    assert model.manifest.context_length == 1000
    assert not list(model.path.glob("*.py")) and not (model.path / "qwen2-checkpoint").exists()
    assert "auto_map" not in json.loads((model.path / "config.json").read_text())
    engine = load_engine(model, threads=2)
    assert engine.step is not None  # the fast path: decode_step, KV cache kept across turns
    assert reply(engine)
    assert no_remote_code == [] and trusted == []


def legacy_install(source: Path, models_dir: Path, name: str) -> InstalledModel:
    """A Qwen v1 model as qwen-tui installed it before conversion existed: bigdl's INT4 of
    QWenLMHeadModel, the repo's code beside it, a manifest recording the consent."""
    from qwen_tui.engine import bigdl
    from qwen_tui.model_setup.quantize import copy_side_files

    folder = models_dir / name
    folder.mkdir(parents=True)
    bigdl.quantize_checkpoint(
        source, folder, low_bit="sym_int4", trust_remote_code=True, attn_implementation=None
    )
    copy_side_files(source, folder)  # code, qwen.tiktoken, tokenizer_config.json
    manifest = ModelManifest(
        name=name,
        source=QWEN_V1_REPO,
        arch="QWenLMHeadModel",
        model_type="qwen",
        low_bit="sym_int4",
        context_length=6144,
        trust_remote_code=True,
    )
    write_manifest(folder, manifest)
    return InstalledModel(folder, manifest)


@needs_qwen_code
@pytest.mark.slow
def test_an_old_remote_code_install_keeps_working_and_setup_converts_it(
    tmp_path: Path, tmp_path_factory, paths
) -> None:
    from qwen_tui.engine.loader import load_engine

    source = shared_tiny_qwen_v1(tmp_path_factory)
    # A dot in the name: transformers derives a module name from the folder's name.
    old = legacy_install(source, paths.models_dir, "qwen-1_8b-chat")
    dotted = legacy_install(source, tmp_path / "elsewhere", "qwen-v1-1.8b")
    for model in (old, dotted):
        engine = load_engine(model, threads=2)
        assert engine.step is None  # Qwen's own forward, as before
        assert reply(engine)
    hint = upgrade_hint(old)
    assert hint is not None and "\n" not in hint and f"qwen-tui setup {QWEN_V1_REPO}" in hint
    assert installed_from(paths, QWEN_V1_REPO) is None  # so setup does it again, converted
    root = tmp_path / "hub"
    shutil.copytree(source, root / QWEN_V1_REPO)
    with HubServer(root) as hub:
        result = run_setup(SetupRequest(QWEN_V1_REPO, endpoint=hub.url), paths)
    assert not result.already_installed
    (model,) = list_installed(paths.models_dir)
    assert model.name == old.name and not model.manifest.trust_remote_code
    assert upgrade_hint(model) is None and installed_from(paths, QWEN_V1_REPO) == model


@pytest.mark.slow
@pytest.mark.parametrize("name", ["qwen-v1-1.8b", "Qwen 1.8 模型 v1.0"])
def test_names_with_dots_spaces_and_any_script_import_chat_and_remove(
    tiny_checkpoint, paths, name: str
) -> None:
    """The reported bug: `import DIR --name qwen-v1-1.8b --trust-remote-code`, then `ask`
    died with ModuleNotFoundError 'transformers_modules.qwen-v1-1'. The model here runs its
    own code (the remote-code stand-in), the case where the folder's name reaches Python."""
    folder = tiny_checkpoint("remote")
    imported = qwen_tui("import", str(folder), "--name", name, "--trust-remote-code")
    assert imported.returncode == 0, imported.stderr
    assert find_installed(paths.models_dir, name).path.name == name
    answer = qwen_tui("ask", "--model", name, "--max-tokens", "4", "hi")
    assert answer.returncode == 0, answer.stderr
    assert answer.stdout.strip()
    removed = qwen_tui("rm", name)
    assert removed.returncode == 0, removed.stderr
    assert list_installed(paths.models_dir) == []


@needs_qwen_code
@pytest.mark.slow
def test_a_qwen_v1_folder_imports_converted_under_a_dotted_name(tmp_path_factory, paths) -> None:
    source = shared_tiny_qwen_v1(tmp_path_factory)
    imported = qwen_tui("import", str(source), "--name", "qwen-v1-1.8b")  # no consent needed
    assert imported.returncode == 0, imported.stderr
    assert "context is 2048 tokens" in imported.stderr
    model = find_installed(paths.models_dir, "qwen-v1-1.8b")
    assert model.manifest.chat_format == "qwen-v1" and not model.manifest.trust_remote_code
    answer = qwen_tui("ask", "--model", "qwen-v1-1.8b", "--max-tokens", "4", "你好")
    assert answer.returncode == 0, answer.stderr


@pytest.mark.parametrize(
    ("name", "why"),
    [("a/b", "slash"), (".hidden", "dot"), ("  ", "empty"), ("x.partial", ".partial")],
)
def test_names_that_cannot_be_a_folder_are_refused_in_words(tiny_checkpoint, name, why) -> None:
    result = qwen_tui("import", str(tiny_checkpoint("qwen2")), "--name", name)
    assert result.returncode != 0
    assert why in result.stderr and "Traceback" not in result.stderr
