"""The chat's model, for the app: which one it starts with, loading one in a worker (the old
engine freed first), and the state the chat screen shows. Where loading stands is the chat
layer's ModelSlot (`app.models`); this is the part that needs the app (workers, screens,
notifications)."""

from __future__ import annotations

import asyncio
import threading
from concurrent.futures import Future
from typing import TYPE_CHECKING

from textual import work

from qwen_tui.chat.model_slot import (
    ChatModel,
    LoadInProgressError,
    available_models,
    find_model,
)
from qwen_tui.config import RemoteConfig
from qwen_tui.engine.base import Engine, EngineError
from qwen_tui.messages import ModelStateChanged
from qwen_tui.model_files import (
    InstalledModel,
    ModelNotFoundError,
    list_installed,
    upgrade_hint,
)

if TYPE_CHECKING:
    from qwen_tui.app import QwenTuiApp


class ModelLoading:
    """Mixed into QwenTuiApp (only): choosing, loading and reporting the chat's model."""

    def _start_first_model(self: QwenTuiApp) -> None:
        name = self._model_name or self.config.model.default
        try:
            model = find_model(self.config, self.paths, name) if name else None
        except (ModelNotFoundError, EngineError) as error:  # a RemoteError: no such remote
            self.models.not_found(str(error))
            self.model_state_changed()
            self.notify(str(error), title="Model", severity="error", timeout=15)
            return
        model = model or next(iter(self.installed_models()), None)
        if model is None:
            self.show_no_model()
            return
        self.switch_model(model, after_first_frame=True)

    def show_no_model(self: QwenTuiApp) -> None:
        """Nothing is installed: the setup screen opens over the chat, which says how to
        get a model should the user close it."""
        self.models.nothing_installed()
        self.model_state_changed()
        self.open_setup()

    def no_model_message(self: QwenTuiApp) -> str:
        return (
            "No model is installed yet. Open the command palette "
            f"({self.COMMAND_PALETTE_BINDING}) and choose “Set up a model…” to download one, "
            "import a local model or use the demo model. "
            f"Or quit ({self.effective_key('app.quit')}) and run `qwen-tui setup` or "
            "`qwen-tui import PATH`."
        )

    def open_setup(self: QwenTuiApp) -> None:
        """The setup screen; the model it sets up opens in the chat."""
        from qwen_tui.screens.setup_screen import SetupScreen  # not needed to draw the chat

        if not isinstance(self.screen, SetupScreen):
            self.push_screen(SetupScreen(), self._setup_finished)

    def _setup_finished(self: QwenTuiApp, model: InstalledModel | None) -> None:
        if model is not None and self.models.needs_loading(model):
            self.switch_model(model)

    def installed_models(self: QwenTuiApp) -> list[InstalledModel]:
        return list_installed(self.paths.models_dir)

    def available_models(self: QwenTuiApp) -> list[ChatModel]:
        """What the model picker offers: the installed models, then the config's remotes."""
        return available_models(self.config, self.paths)

    def switch_model(
        self: QwenTuiApp, model: ChatModel, *, after_first_frame: bool = False
    ) -> None:
        """Load `model` in the background; the old engine is freed first (RAM is scarce).
        At start-up the load waits until the first frame is laid out: importing torch is
        seconds of Python in the worker, sharing the GIL with the layout and paint of the
        prompt (tests/tui/test_first_frame.py)."""
        try:
            old = self.models.begin_loading(model)
        except LoadInProgressError:
            self.notify("A model is already loading; try again when it is ready.")
            return
        self.model_state_changed()
        hint = upgrade_hint(model) if isinstance(model, InstalledModel) else None
        if hint:  # it still chats, slower: say how to fix it, as `ask` does
            self.notify(hint, title="Old Qwen v1 install", severity="warning", timeout=30)
        if after_first_frame:
            self.call_after_refresh(self._load_model, model, old)
        else:
            self._load_model(model, old)

    def _load_engine(self: QwenTuiApp, model: InstalledModel) -> Engine:
        from qwen_tui.engine.loader import load_engine  # pulls in torch: only in the worker

        return load_engine(model, threads=self.config.model.threads)

    _loading: threading.Thread | None = None
    """The thread loading a model, if one is (see `_load_model`)."""

    @work(exclusive=True, group="model", exit_on_error=False)
    async def _load_model(self: QwenTuiApp, model: ChatModel, old: Engine | None) -> Engine:
        """The load runs in a daemon thread of its own, awaited here. A thread worker would
        run it in the event loop's executor, which asyncio joins at exit: ctrl+q during a
        load then kept the process (and the session's lock) alive until the load ended,
        seconds after the terminal was back. `load_in_progress` lets run_app leave without it.
        """
        loaded: Future[Engine] = Future()

        def load() -> None:
            try:
                loaded.set_result(self._load_now(model, old))
            except BaseException as error:  # the worker's failure, reported by the app
                loaded.set_exception(error)

        self._loading = threading.Thread(target=load, name="qwen-tui-load-model", daemon=True)
        self._loading.start()
        return await asyncio.wrap_future(loaded)

    def load_in_progress(self: QwenTuiApp) -> bool:
        return self._loading is not None and self._loading.is_alive()

    def _load_now(self: QwenTuiApp, model: ChatModel, old: Engine | None) -> Engine:
        if old is not None:
            with self._engine_lock:
                old.close()
        if isinstance(model, RemoteConfig):
            from qwen_tui.engine.remote import load_remote

            return load_remote(model)  # asks the server once: a RemoteError says what is wrong
        return self._engine_factory(model)

    @property
    def engine(self: QwenTuiApp) -> Engine | None:
        return self.models.engine

    @property
    def model(self: QwenTuiApp) -> ChatModel | None:
        return self.models.model

    @property
    def model_state(self: QwenTuiApp) -> str:
        """none (nothing installed) / loading / ready / error."""
        return self.models.state

    def model_state_changed(self: QwenTuiApp) -> None:
        if self.chat_screen is not None:
            self.chat_screen.post_message(self.model_state_message())

    def model_state_message(self: QwenTuiApp) -> ModelStateChanged:
        models = self.models
        return ModelStateChanged(models.state, models.info, models.error)

    def _model_loaded(self: QwenTuiApp, engine: Engine) -> None:
        self.models.loaded(engine)
        self.model_state_changed()
