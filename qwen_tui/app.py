"""The Textual app: owns the engine, runs the workers, handles their failures in one place.

The chat screen shows one session and asks the app for work (load a model, generate a reply,
list sessions, count context tokens); each runs in a thread worker and reports back to the
screen with messages. `on_worker_state_changed` is the single place a worker failure turns into
a notification and a log entry.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import ClassVar

import psutil
from textual import work
from textual.app import App, SystemCommand
from textual.binding import Binding, BindingType
from textual.css.query import NoMatches
from textual.driver import Driver
from textual.drivers.linux_driver import LinuxDriver
from textual.message_pump import MessagePump
from textual.notifications import SeverityLevel
from textual.screen import Screen
from textual.worker import Worker, WorkerState

from qwen_tui import STARTED_BY
from qwen_tui.attachment import Attachment
from qwen_tui.config import REMOTE_PREFIX, Config, RemoteConfig
from qwen_tui.conversation import GenerationSettings, GenerationStats, Message, Session, StopReason
from qwen_tui.engine.base import Engine, EngineError, ModelInfo, TextChunk
from qwen_tui.engine.remote import RemoteError, find_remote, load_remote, remote_info
from qwen_tui.messages import (
    ContextCounted,
    GenerationFinished,
    ModelStateChanged,
    SessionsListed,
    StreamedText,
    TokenReceived,
)
from qwen_tui.model_setup.installed import (
    InstalledModel,
    ModelNotFoundError,
    find_installed,
    list_installed,
)
from qwen_tui.paths import Paths
from qwen_tui.screens.chat_screen import ChatScreen
from qwen_tui.screens.help_screen import HelpScreen
from qwen_tui.screens.model_picker import ChatModel, model_key
from qwen_tui.screens.setup_screen import SetupScreen
from qwen_tui.store import OpenSession, SessionStore, StoreError
from qwen_tui.store.state import AppState, load_state, save_state
from qwen_tui.terminal_driver import HangUpSafeDriver
from qwen_tui.visible_text import one_line, visible_text
from qwen_tui.widgets.session_sidebar import SessionList

log = logging.getLogger(__name__)

EngineFactory = Callable[[InstalledModel], Engine]

EXIT_DEADLINE_S = 1.0
"""After a hang-up or SIGTERM has saved the session, the process is gone this long after even
if something holds up the exit (a model load in a worker thread cannot be interrupted, and
Python waits for worker threads at exit): nothing is left running on a shared server."""
PARENT_CHECK_S = 0.25
"""How often to check that the process that started the app is still there."""

# What each rebindable action is called in the help screen and the command palette.
ACTION_HELP: dict[str, str] = {
    "app.quit": "Quit (asks first if something could not be saved)",
    "app.help": "Show the keys",
    "session.new": "Start a new session",
    "session.regenerate": "Regenerate the last answer",
    "sidebar.toggle": "Show or hide the sessions sidebar",
    "generation.stop": "Stop the reply being generated (keeps the partial answer)",
    "session.settings": "Edit this session's system prompt and generation settings",
    "session.export": "Export this session as a Markdown file",
    "message.copy": "Copy the last answer (or the focused message)",
    "model.switch": "Switch to another model (installed or a [[remotes]] server)",
    "sidebar.rename": "Sidebar: rename the highlighted session",
    "sidebar.delete": "Sidebar: delete the highlighted session",
    "sidebar.new": "Sidebar: start a new session",
    "sidebar.search": "Sidebar: search titles and messages",
    "setup.back": "Setup: cancel the download, or go back (field -> list -> chat)",
}


def error_text(error: BaseException | None) -> str:
    """EngineError/StoreError messages are written for users; others get their type."""
    if error is None:
        return "unknown error"
    if isinstance(error, EngineError | StoreError | ModelNotFoundError):
        return str(error)
    return f"{type(error).__name__}: {error}"


def info_before_loading(model: ChatModel) -> ModelInfo:
    """What the status bar can show before the model has loaded."""
    if isinstance(model, RemoteConfig):
        return remote_info(model)
    manifest = model.manifest
    return ModelInfo(
        name=model.name,
        arch=manifest.arch,
        low_bit=manifest.low_bit,
        context_length=manifest.context_length,
        source=manifest.source,
    )


class QwenTuiApp(App[int]):
    """qwen-tui's terminal UI."""

    CSS_PATH = "app.tcss"
    TITLE = "qwen-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("ctrl+q", "quit", "Quit", id="app.quit", priority=True),
        Binding("f1", "help", "Help", id="app.help"),
    ]

    def __init__(
        self,
        config: Config,
        paths: Paths,
        *,
        model_name: str | None = None,
        session_id: str | None = None,
        new_session: bool = False,
        engine_factory: EngineFactory | None = None,
        clock: Callable[[], float] = time.time,
        handle_signals: bool = False,
        piped: Attachment | None = None,
    ) -> None:
        super().__init__()
        self._piped = piped
        """`some-command | qwen-tui`: the text read from stdin, for the first draft."""
        self.config = config
        self.paths = paths
        self.clock = clock
        """Wall clock for relative times in the sidebar (tests freeze it)."""
        self.store = SessionStore(paths.sessions_dir)
        # list/search run in a worker: they get their own store (its cache is not thread-safe)
        self._listing_store = SessionStore(paths.sessions_dir)
        self._listing_lock = threading.Lock()
        self._engine_factory = engine_factory or self._load_engine
        self._model_name = model_name
        self._session_id = session_id
        self._new_session = new_session
        """--new: start with a new session instead of the one last shown."""
        self._state = AppState()
        """What state.toml says (the session last shown, its draft), as last read or written."""
        self._handle_signals = handle_signals
        """Save and exit on SIGTERM/SIGHUP, a hang-up or the parent going away (the real app;
        tests run in pytest's process)."""
        self._parent_pid = STARTED_BY
        self.left_with_the_terminal = False
        """A hang-up, SIGHUP/SIGTERM or the parent's end is making the app exit."""
        self.engine: Engine | None = None
        self.model: ChatModel | None = None
        self.model_state = "none"
        """none (nothing installed) / loading / ready / error."""
        self._model_error = ""
        self._model_info: ModelInfo | None = None
        # One user of the engine at a time: tokenizers fail when used from two threads.
        self._engine_lock = threading.Lock()
        self._process: psutil.Process | None = None
        self.chat_screen: ChatScreen | None = None
        self.set_keymap(config.keys)
        if config.ui.theme in self.available_themes:
            self.theme = config.ui.theme

    # ------------------------------------------------------------ start-up

    def get_driver_class(self) -> type[Driver]:
        driver = super().get_driver_class()
        return HangUpSafeDriver if driver is LinuxDriver else driver

    def get_default_screen(self) -> Screen:
        self.chat_screen = ChatScreen(self._first_session())
        return self.chat_screen

    def _first_session(self) -> OpenSession:
        """The --session one if given (read-only if another qwen-tui writes it), a new one
        with --new, else the one shown when the app last ran (new if it is gone)."""
        if not self._new_session:
            self._state = load_state(self.paths.state_file)
        if self._session_id:
            try:
                return self.store.open(self._session_id)
            except StoreError as error:
                self.call_later(self.notify, str(error), title="Session", severity="error")
        elif not self._new_session and self._state.last_session:
            reopened = self._reopen(self._state.last_session)
            if reopened is not None:
                return reopened
        return self.open_new_session()

    def _reopen(self, session_id: str) -> OpenSession | None:
        try:
            opened = self.store.open(session_id)
        except StoreError as error:  # deleted, damaged: start afresh (the sidebar lists it)
            log.info("not reopening the last session: %s", error)
            return None
        if opened.read_only:  # another qwen-tui is in it: a new one rather than a view
            opened.close()
            return None
        return opened

    # ------------------------------------------------------------ where the user left off

    def _state_key(self, session: Session) -> str:
        """How state.toml names `session`: its id once saved, empty while it is new."""
        return session.id if self.store.path_for(session.id).exists() else ""

    def draft_for(self, session: Session) -> str:
        """The prompt left unsent in `session` when the app last ran."""
        state = self._state
        return state.draft if state.last_session == self._state_key(session) else ""

    def remember_session(self, session: Session) -> None:
        """`session` is the one to reopen next time (written only when that changes)."""
        key = self._state_key(session)
        if key != self._state.last_session:
            self._write_state(AppState(last_session=key))

    def _remember_on_leaving(self) -> None:
        """The session shown now and the prompt's unsent text, for the next start."""
        screen = self.chat_screen
        try:
            draft = screen.prompt.text if screen is not None else None
        except NoMatches:  # not drawn yet: the state read at start still holds
            draft = None
        if screen is not None and draft is not None:
            self._write_state(AppState(self._state_key(screen.session), draft))

    def _write_state(self, state: AppState) -> None:
        try:
            save_state(self.paths.state_file, state)
        except (OSError, ValueError) as error:  # costs the next start a click, no more
            log.warning("could not save %s: %s", self.paths.state_file, error)
        self._state = state

    def open_new_session(self) -> OpenSession:
        """An empty session with the config's defaults. Not locked (nor saved) yet: the chat
        locks it when its first message saves it, so sessions never used leave no files."""
        session = Session(system_prompt=self.config.system_prompt, settings=self.config.generation)
        return OpenSession(session, None)

    def on_mount(self) -> None:
        for warning in self.config.warnings:
            self.notify(warning, title="config.toml", severity="warning", timeout=15)
        if self.config.ui.theme not in self.available_themes:
            self.notify(f"unknown theme {self.config.ui.theme!r}", title="config.toml")
        if self._handle_signals:
            self._leave_with_the_terminal()
        self._start_first_model()

    def _leave_with_the_terminal(self) -> None:
        """Save and exit when the user can no longer reach the app: SIGTERM, SIGHUP, the
        terminal read or written after a hang-up (tmux kill-session or a dropped SSH link
        need not send SIGHUP), or the parent process gone (re-parented to PID 1)."""
        loop = asyncio.get_running_loop()
        for signum in (signal.SIGTERM, signal.SIGHUP):
            loop.add_signal_handler(signum, self._save_and_exit)
        if isinstance(self._driver, HangUpSafeDriver):
            self._driver.call_on_hang_up(self._save_and_exit)
        self.set_interval(PARENT_CHECK_S, self._check_parent)

    def _check_parent(self) -> None:
        if os.getppid() != self._parent_pid:
            self._save_and_exit()

    def _save_and_exit(self) -> None:
        """Keep the partial reply, marked stopped, and leave as ctrl+c leaves `qwen-tui ask`
        (status 130), within EXIT_DEADLINE_S."""
        if self.left_with_the_terminal:
            return
        self.left_with_the_terminal = True
        try:
            if self.chat_screen is not None:
                self.chat_screen.stop_and_save()
            self._remember_on_leaving()
        except Exception:  # whatever went wrong, the process must not stay behind
            log.exception("saving before leaving failed")
        driver = self._driver
        if isinstance(driver, HangUpSafeDriver) and driver.terminal_gone():
            _leave_now(130)  # nothing left to restore on a terminal nobody sees
        _exit_anyway_after(EXIT_DEADLINE_S, 130)
        self.exit(130)

    def _start_first_model(self) -> None:
        name = self._model_name or self.config.model.default
        try:
            model = self._find_model(name) if name else None
        except (ModelNotFoundError, RemoteError) as error:
            self._set_model_state("error", None, str(error))
            self.notify(str(error), title="Model", severity="error", timeout=15)
            return
        model = model or next(iter(self.installed_models()), None)
        if model is None:
            self.show_no_model()
            return
        self.switch_model(model)

    def _find_model(self, name: str) -> ChatModel:
        if name.startswith(REMOTE_PREFIX):
            return find_remote(self.config, name)
        return find_installed(self.paths.models_dir, name)

    def show_no_model(self) -> None:
        """Nothing is installed: the setup screen opens over the chat, which says how to
        get a model should the user close it."""
        self._set_model_state("none", None)
        self.open_setup()

    def no_model_message(self) -> str:
        return (
            "No model is installed yet. Open the command palette "
            f"({self.COMMAND_PALETTE_BINDING}) and choose “Set up a model…” to download one, "
            "import a local model or use the demo model. "
            f"Or quit ({self.effective_key('app.quit')}) and run `qwen-tui setup` or "
            "`qwen-tui import PATH`."
        )

    def open_setup(self) -> None:
        """The setup screen; the model it sets up opens in the chat."""
        if not isinstance(self.screen, SetupScreen):
            self.push_screen(SetupScreen(), self._setup_finished)

    def _setup_finished(self, model: InstalledModel | None) -> None:
        if model is None:
            return
        current = self.model is not None and model_key(self.model) == model.name
        if not (current and self.model_state in ("loading", "ready")):
            self.switch_model(model)

    def installed_models(self) -> list[InstalledModel]:
        return list_installed(self.paths.models_dir)

    def available_models(self) -> list[ChatModel]:
        """What the model picker offers: the installed models, then the config's remotes."""
        return [*self.installed_models(), *self.config.remotes]

    # ------------------------------------------------------------ the model

    def switch_model(self, model: ChatModel) -> None:
        """Load `model` in the background; the old engine is freed first (RAM is scarce)."""
        if self.model_state == "loading":
            self.notify("A model is already loading; try again when it is ready.")
            return
        old, self.engine = self.engine, None
        self.model = model
        self._set_model_state("loading", info_before_loading(model))
        self._load_model(model, old)

    def _load_engine(self, model: InstalledModel) -> Engine:
        from qwen_tui.engine.loader import load_engine  # pulls in torch: only in the worker

        return load_engine(model, threads=self.config.model.threads)

    @work(thread=True, exclusive=True, group="model", exit_on_error=False)
    def _load_model(self, model: ChatModel, old: Engine | None) -> Engine:
        if old is not None:
            with self._engine_lock:
                old.close()
        if isinstance(model, RemoteConfig):
            return load_remote(model)  # asks the server once: a RemoteError says what is wrong
        return self._engine_factory(model)

    def _set_model_state(self, state: str, info: ModelInfo | None, error: str = "") -> None:
        self.model_state = state
        self._model_error = error
        self._model_info = info
        if self.chat_screen is not None:
            self.chat_screen.post_message(self.model_state_message())

    def model_state_message(self) -> ModelStateChanged:
        return ModelStateChanged(self.model_state, self._model_info, self._model_error)

    # ------------------------------------------------------------ workers

    @work(thread=True, exclusive=True, group="generate", exit_on_error=False)
    def generate_reply(
        self,
        engine: Engine,
        messages: Sequence[Message],
        settings: GenerationSettings,
        cancel: threading.Event,
        target: MessagePump,
        waiting: StreamedText,
    ) -> None:
        """Stream one reply to `target` through `waiting` (a TokenReceived says there is
        text to take), then GenerationFinished."""
        with self._engine_lock:
            for event in engine.generate(messages, settings, cancel):
                if isinstance(event, TextChunk):
                    if waiting.put(event.text):
                        target.post_message(TokenReceived(waiting))
                else:
                    target.post_message(GenerationFinished(event.stats))
                    return
        # The protocol promises a ReplyDone; an engine that forgets it still ends the reply.
        reason = StopReason.STOPPED if cancel.is_set() else StopReason.EOS
        target.post_message(GenerationFinished(GenerationStats(stop_reason=reason)))

    @work(thread=True, exclusive=True, group="sessions", exit_on_error=False)
    def list_sessions(self, query: str, target: MessagePump) -> None:
        """All sessions (or those matching `query`), newest first, to `target`."""
        with self._listing_lock:
            store = self._listing_store
            summaries = store.search(query) if query else store.list()
            problems = [str(p) for p in store.problems]
            store.problems.clear()
        target.post_message(SessionsListed(summaries, query, problems))

    def take_piped(self) -> Attachment | None:
        """The piped text, once: the first chat screen attaches it to its draft."""
        piped, self._piped = self._piped, None
        return piped

    def count_tokens_if_free(self, engine: Engine, messages: Sequence[Message]) -> int | None:
        """From a worker: the tokens of `messages`, or None while the engine is busy (a
        reply is being generated), rather than wait for it."""
        if not self._engine_lock.acquire(blocking=False):
            return None
        try:
            return engine.count_tokens(messages)
        finally:
            self._engine_lock.release()

    def count_context(self, target: ChatScreen) -> None:
        """Count the tokens `target`'s conversation takes, in the background."""
        if self.engine is not None and target.reply is None:
            self._count_context(self.engine, target.session.chat_messages(), target)

    @work(thread=True, exclusive=True, group="context", exit_on_error=False)
    def _count_context(self, engine: Engine, messages: list[Message], target: MessagePump) -> None:
        with self._engine_lock:
            tokens = engine.count_tokens(messages)
        target.post_message(ContextCounted(tokens))

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker = event.worker
        if event.state is WorkerState.SUCCESS and worker.group == "model":
            self._model_loaded(worker.result)
        elif event.state is WorkerState.ERROR:
            self._worker_failed(worker)

    def _model_loaded(self, engine: Engine) -> None:
        self.engine = engine
        self._set_model_state("ready", engine.info)

    def _worker_failed(self, worker: Worker) -> None:
        error = worker.error
        log.error("worker %s failed", worker.name, exc_info=error)
        message = error_text(error)
        if worker.group == "model":
            name = model_key(self.model) if self.model else "the model"
            self._set_model_state("error", self._model_info, message)
            self.notify(message, title=f"Could not load {name}", severity="error", timeout=15)
        elif worker.group == "generate" and self.chat_screen is not None:
            stats = GenerationStats(stop_reason=StopReason.ERROR, error=message)
            self.chat_screen.post_message(GenerationFinished(stats))
        elif worker.group == "sessions":
            self.notify(message, title="Could not list the sessions", severity="error")
        # "context" failures only cost the status bar its token count: the log has them.

    # ------------------------------------------------------------ keys, help, palette

    def effective_key(self, binding_id: str) -> str:
        """The key(s) bound to `binding_id` after the config's [keys] table."""
        for binding in self._declared_bindings():
            if binding.id == binding_id:
                return self.config.keys.get(binding_id, binding.key)
        return ""

    @staticmethod
    def _declared_bindings() -> list[Binding]:
        declared = [
            *QwenTuiApp.BINDINGS,
            *ChatScreen.BINDINGS,
            *SessionList.BINDINGS,
            *SetupScreen.BINDINGS,
        ]
        return [b for b in declared if isinstance(b, Binding) and b.id]

    def help_rows(self) -> list[tuple[str, str, str]]:
        return [
            (self.effective_key(b.id), ACTION_HELP.get(b.id, b.description), b.id)
            for b in self._declared_bindings()
            if b.id
        ]

    def action_help(self) -> None:
        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_rows()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield SystemCommand(
            "Help",
            f"{ACTION_HELP['app.help']} ({self.effective_key('app.help')})",
            self.action_help,
        )
        if not isinstance(screen, SetupScreen):
            yield SystemCommand(
                "Set up a model…",
                "Download a model, import a local one or prepare the demo model",
                self.open_setup,
            )
        if not isinstance(screen, ChatScreen):
            return
        for binding in ChatScreen.BINDINGS:
            assert isinstance(binding, Binding) and binding.id
            if binding.action == "stop" and not screen.generating:
                continue
            keys = self.effective_key(binding.id)
            yield SystemCommand(
                binding.description,
                f"{ACTION_HELP[binding.id]} ({keys})",
                self._screen_action(screen, binding.action),
            )

    @staticmethod
    def _screen_action(screen: Screen, action: str) -> Callable[[], object]:
        return lambda: screen.run_action(action)

    # ------------------------------------------------------------ status, quitting

    def process_rss(self) -> int:
        """Resident memory of this process, for the status bar."""
        if self._process is None:
            self._process = psutil.Process()
        return self._process.memory_info().rss

    def notify(
        self,
        message: str,
        *,
        title: str = "",
        severity: SeverityLevel = "information",
        timeout: float | None = None,
        markup: bool = True,
    ) -> None:
        """Every notification is plain text: messages carry paths, titles and model errors,
        and `[...]` in them must not be read as markup (nor escapes reach the terminal)."""
        super().notify(
            visible_text(message),
            title=one_line(title),
            severity=severity,
            timeout=timeout,
            markup=False,
        )

    def action_help_quit(self) -> None:
        # Textual's version uses markup in its message, which notify() shows literally.
        self.notify(f"Press {self.effective_key('app.quit')} to quit.", title="Quit?")

    async def action_quit(self) -> None:
        # A session that could not be saved is not given up without asking.
        if self.chat_screen is None or self.chat_screen.ready_to_quit():
            self._remember_on_leaving()
            self.exit(0)


def _leave_now(status: int) -> None:
    """End the process without Textual's shutdown or Python's finalization (the session is
    saved already; the kernel releases the session lock with the process)."""
    logging.shutdown()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):
            stream.flush()
    os._exit(status)


def _exit_anyway_after(seconds: float, status: int) -> None:
    """End the process in `seconds` if it is still running then (see EXIT_DEADLINE_S)."""

    def leave() -> None:
        log.warning("exit took longer than %.1f s: leaving without waiting", seconds)
        _leave_now(status)

    timer = threading.Timer(seconds, leave)
    timer.daemon = True
    timer.start()


def run_app(
    config: Config,
    paths: Paths,
    *,
    model_name: str | None = None,
    session_id: str | None = None,
    new_session: bool = False,
    piped: Attachment | None = None,
) -> int:
    """Run the chat UI until the user quits; the exit status for the CLI."""
    try:
        app = QwenTuiApp(
            config,
            paths,
            model_name=model_name,
            session_id=session_id,
            new_session=new_session,
            handle_signals=True,
            piped=piped,
        )
    except StoreError as error:
        print(f"qwen-tui: {error}", file=sys.stderr)
        return 1
    result = app.run()
    status = result if isinstance(result, int) else (app.return_code or 0)
    if app.left_with_the_terminal:
        # Python's own finalization tears down torch/bigdl for seconds (measured 2-5 s with
        # a reply in flight), and a daemon watchdog cannot run during it: leave now.
        _leave_now(status)
    return status
