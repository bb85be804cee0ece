"""Which model a command runs, and loading it: every failure is exit 3 with a sentence."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

from qwen_tui.config import REMOTE_PREFIX, Config, RemoteConfig
from qwen_tui.console import stage_printer
from qwen_tui.exit_codes import EXIT_NO_MODEL, CliError
from qwen_tui.model_files import (
    InstalledModel,
    ModelNotFoundError,
    find_installed,
    list_installed,
    upgrade_hint,
)
from qwen_tui.paths import Paths

if TYPE_CHECKING:
    from qwen_tui.engine.base import Engine


def resolve_model(name: str | None, config: Config, paths: Paths) -> InstalledModel | RemoteConfig:
    """The model to use: named, configured, the only installed one, or the demo (prepared once).

    `remote:NAME` picks a `[[remotes]]` entry of the config: a model served elsewhere.
    """
    from qwen_tui.model_setup.importer import DEMO_NAME, ensure_demo_model
    from qwen_tui.model_setup.quantize import QuantizeError

    wanted = name or config.model.default
    if wanted.startswith(REMOTE_PREFIX):
        from qwen_tui.engine.remote import RemoteError, find_remote

        try:
            return find_remote(config, wanted)
        except RemoteError as error:
            raise CliError(str(error), EXIT_NO_MODEL) from None
    installed = list_installed(paths.models_dir)
    try:
        if wanted and wanted != DEMO_NAME:
            return find_installed(paths.models_dir, wanted)
        if not wanted and installed:
            return installed[0]
        return ensure_demo_model(paths, progress=stage_printer())
    except (ModelNotFoundError, QuantizeError) as error:
        raise CliError(str(error), EXIT_NO_MODEL) from None


def load_model(model: InstalledModel | RemoteConfig, config: Config) -> Engine:
    from qwen_tui.engine.base import EngineError
    from qwen_tui.engine.loader import load_engine
    from qwen_tui.engine.remote import load_remote

    try:
        if isinstance(model, RemoteConfig):
            return load_remote(model)
        hint = upgrade_hint(model)
        if hint:
            print(f"qwen-tui: note: {hint}", file=sys.stderr)
        return load_engine(model, threads=config.model.threads)
    except EngineError as error:
        raise CliError(str(error), EXIT_NO_MODEL) from None
