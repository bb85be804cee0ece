"""The chat's model: which one, its engine, and where loading it stands.

none (nothing installed) -> loading -> ready or error; a switch frees the old engine first
(RAM is scarce) and is refused while a load runs (a load cannot be interrupted).
"""

from __future__ import annotations

from dataclasses import dataclass

from qwen_tui.config import REMOTE_PREFIX, Config, RemoteConfig
from qwen_tui.engine.base import Engine, ModelInfo
from qwen_tui.model_setup.installed import InstalledModel, find_installed, list_installed
from qwen_tui.paths import Paths

ChatModel = InstalledModel | RemoteConfig
"""What the chat can talk to: a model on this machine or one a server runs."""


def model_key(model: ChatModel) -> str:
    """The name `--model`, the picker and sessions use: `remote:NAME` or the folder name."""
    return model.model_name if isinstance(model, RemoteConfig) else model.name


def find_model(config: Config, paths: Paths, name: str) -> ChatModel:
    """The model called `name`. Raises ModelNotFoundError or RemoteError (they say why)."""
    if name.startswith(REMOTE_PREFIX):
        # The remote engine's HTTP stack is not needed to draw the chat: only for remotes.
        from qwen_tui.engine.remote import find_remote

        return find_remote(config, name)
    return find_installed(paths.models_dir, name)


def available_models(config: Config, paths: Paths) -> list[ChatModel]:
    """What the model picker offers: the installed models, then the config's remotes."""
    return [*list_installed(paths.models_dir), *config.remotes]


def info_before_loading(model: ChatModel) -> ModelInfo:
    """What the status bar can show before the model has loaded."""
    if isinstance(model, RemoteConfig):
        from qwen_tui.engine.remote import remote_info

        return remote_info(model)
    manifest = model.manifest
    return ModelInfo(
        name=model.name,
        arch=manifest.arch,
        low_bit=manifest.low_bit,
        context_length=manifest.context_length,
        source=manifest.source,
    )


class LoadInProgressError(Exception):
    """A model is loading already: a second load would have to wait for it to end."""


@dataclass
class ModelSlot:
    """The one model the chat uses at a time."""

    state: str = "none"
    """none (nothing installed) / loading / ready / error."""
    model: ChatModel | None = None
    engine: Engine | None = None
    """Set once `model` has loaded."""
    info: ModelInfo | None = None
    error: str = ""

    def begin_loading(self, model: ChatModel) -> Engine | None:
        """`model` is loading now; returns the old engine, for the loader to close first.
        Raises LoadInProgressError while another load runs."""
        if self.state == "loading":
            raise LoadInProgressError
        old, self.engine = self.engine, None
        self.model = model
        self._set("loading", info_before_loading(model))
        return old

    def loaded(self, engine: Engine) -> None:
        self.engine = engine
        self._set("ready", engine.info)

    def failed(self, error: str) -> None:
        """The load failed; what is known of the model stays for the status bar."""
        self._set("error", self.info, error)

    def not_found(self, error: str) -> None:
        """The model asked for does not exist (nothing was loading)."""
        self._set("error", None, error)

    def nothing_installed(self) -> None:
        self._set("none", None)

    def name(self) -> str:
        return model_key(self.model) if self.model else "the model"

    def needs_loading(self, model: InstalledModel) -> bool:
        """After setup: load `model` unless it is the one loading or loaded already."""
        current = self.model is not None and model_key(self.model) == model.name
        return not (current and self.state in ("loading", "ready"))

    def _set(self, state: str, info: ModelInfo | None, error: str = "") -> None:
        self.state, self.info, self.error = state, info, error
