"""Shared fixtures: an isolated QWEN_TUI_HOME per test, tiny real models built once per run."""

from __future__ import annotations

import errno
import os
from collections.abc import Callable
from pathlib import Path

import pytest

from qwen_tui.model_files import InstalledModel
from qwen_tui.paths import Paths, get_paths
from tests.fixtures.tiny_models import TINY_BUILDERS

TINY_KINDS = tuple(TINY_BUILDERS)

# What the kernel answers when the machine has no thread or process left to give.
_REFUSED_ERRNOS = {errno.EAGAIN: "process or thread", errno.ENOMEM: "memory", errno.EMFILE: "file"}


def _refusal(error: BaseException) -> str | None:
    """Why the machine refused a thread, process or file, if that is what `error` is."""
    seen: BaseException | None = error
    while seen is not None:
        if isinstance(seen, RuntimeError) and "can't start new thread" in str(seen):
            return "a new thread"
        if isinstance(seen, OSError) and seen.errno in _REFUSED_ERRNOS:
            return f"a new {_REFUSED_ERRNOS[seen.errno]}"
        seen = seen.__cause__ or seen.__context__
    return None


def _thread_counts() -> str:
    import threading

    try:
        tasks = len(os.listdir("/proc/self/task"))
        limit = Path("/proc/sys/kernel/threads-max").read_text().strip()
        running = Path("/proc/loadavg").read_text().split()[3]  # runnable/total tasks
    except OSError:
        return f"this process runs {threading.active_count()} Python threads"
    return (
        f"this process has {tasks} threads; the machine runs {running.split('/')[1]} tasks "
        f"(threads-max {limit})"
    )


@pytest.hookimpl(wrapper=True)
def pytest_runtest_call(item: pytest.Item):
    """A machine that refuses threads or processes fails a test with that sentence, not with
    whatever error it causes three frames later (seen once on a machine where another
    program held thousands of threads)."""
    try:
        return (yield)
    except Exception as error:
        refused = _refusal(error)
        if refused is None:
            raise
        pytest.fail(
            f"the machine refused {refused} ({type(error).__name__}: {error}); "
            f"{_thread_counts()}. Something else on the machine holds its resources: "
            "rerun when it is gone.",
            pytrace=False,
        )


@pytest.hookimpl(tryfirst=True)  # before xdist's own hook reads the groups
def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under pytest-xdist (make test), every test of the demo model runs on one worker, so the
    run imports the demo model once (demo_home, ~half a minute of CPU) instead of per worker."""
    group = pytest.mark.xdist_group("demo-home")
    for item in items:
        if "demo_home" in getattr(item, "fixturenames", ()):
            item.add_marker(group)


@pytest.fixture(autouse=True)
def isolated_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Every test gets its own QWEN_TUI_HOME: no test reads or writes the user's data."""
    home = tmp_path / "qwen-home"
    monkeypatch.setenv("QWEN_TUI_HOME", str(home))
    monkeypatch.delenv("HF_ENDPOINT", raising=False)
    monkeypatch.delenv("HF_TOKEN", raising=False)
    return home


@pytest.fixture
def paths(isolated_home: Path) -> Paths:
    return get_paths()


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory: pytest.TempPathFactory) -> Callable[[str], Path]:
    """Full-precision tiny checkpoint folders (built once per kind, then reused)."""
    root = tmp_path_factory.mktemp("tiny-checkpoints")
    built: dict[str, Path] = {}

    def get(kind: str) -> Path:
        if kind not in built:
            built[kind] = TINY_BUILDERS[kind](root / kind)
        return built[kind]

    return get


@pytest.fixture(scope="session")
def tiny_quantized(
    tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Callable[[str], Path]
) -> Callable[[str], InstalledModel]:
    """Tiny models quantized to sym_int4 by our own setup code, once per kind."""
    from qwen_tui.model_setup.quantize import quantize_model

    models_dir = tmp_path_factory.mktemp("tiny-models")
    built: dict[str, InstalledModel] = {}

    def get(kind: str) -> InstalledModel:
        if kind not in built:
            checkpoint = tiny_checkpoint(kind)
            built[kind] = quantize_model(
                checkpoint,
                models_dir,
                name=f"tiny-{kind}",
                source=str(checkpoint),
                trust_remote_code=kind == "remote",
            )
        return built[kind]

    return get


@pytest.fixture(scope="session")
def tiny_engine(tiny_quantized: Callable[[str], InstalledModel]):
    """Loaded engines for the tiny models, shared by the tests of one run (loading costs ~1 s)."""
    from qwen_tui.engine.loader import load_engine

    loaded = {}

    def get(kind: str):
        if kind not in loaded:
            loaded[kind] = load_engine(tiny_quantized(kind), threads=2)
        return loaded[kind]

    return get


@pytest.fixture
def install_into_home(paths: Paths) -> Callable[[InstalledModel], InstalledModel]:
    """Make a session-built model appear installed in this test's home (a symlink, no copy)."""

    def install(model: InstalledModel) -> InstalledModel:
        paths.models_dir.mkdir(parents=True, exist_ok=True)
        link = paths.models_dir / model.name
        if not link.exists():
            os.symlink(model.path, link, target_is_directory=True)
        return InstalledModel(link, model.manifest)

    return install


def _refuse_whole_model_quantize(*args: object, **kwargs: object) -> None:
    raise AssertionError("quantized through bigdl's whole-model from_pretrained")


@pytest.fixture(scope="session")
def demo_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A QWEN_TUI_HOME with the real demo model (SmolLM2-135M) imported: slow, built once.

    The import runs with bigdl's whole-model quantize path refused, so building this home is
    also the check that the demo model installs tensor by tensor
    (tests/engine/test_streamed_quantize.py): one import of the model per run, not two."""
    from qwen_tui.engine import bigdl
    from qwen_tui.model_setup.importer import ensure_demo_model

    home = tmp_path_factory.mktemp("demo-home")
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("QWEN_TUI_HOME", str(home))
        patch.setattr(bigdl, "quantize_checkpoint", _refuse_whole_model_quantize)
        ensure_demo_model(get_paths())
    return home
