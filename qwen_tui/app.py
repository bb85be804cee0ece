"""The Textual app: owns the engine, runs the workers, handles their failures in one place.

The chat screen shows one session and asks the app for work (load a model, generate a reply,
list sessions, count context tokens); each runs in a thread worker and reports back to the
screen with messages. `on_worker_state_changed` is the single place a worker failure turns into
a notification and a log entry (worker_failures.py says what the user sees). The command
palette and the keys are in palette_commands.py, saving presets in preset_saving.py, choosing
and loading the model in model_loading.py, and leaving when the terminal goes away in
terminal_gone.py.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, ClassVar

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

from qwen_tui import STARTED_BY, startup_gc
from qwen_tui.actions import default_key, help_text
from qwen_tui.attachment import Attachment
from qwen_tui.chat.left_off import LeftOff
from qwen_tui.chat.model_slot import ModelSlot
from qwen_tui.chat.state import ChatState, open_new_session
from qwen_tui.config import Config
from qwen_tui.conversation import GenerationSettings, GenerationStats, Message, Session, StopReason
from qwen_tui.engine.base import Engine, TextChunk
from qwen_tui.messages import (
    ContextCounted,
    GenerationFinished,
    SessionsListed,
    StreamedText,
    TokenReceived,
)
from qwen_tui.model_files import InstalledModel
from qwen_tui.model_loading import ModelLoading
from qwen_tui.palette_commands import declared_bindings, effective_key, palette_commands
from qwen_tui.paths import Paths
from qwen_tui.preset_saving import keep_settings
from qwen_tui.screens.chat_screen import ChatScreen
from qwen_tui.store import OpenSession, SessionStore, StoreError
from qwen_tui.store.presets import load_presets
from qwen_tui.terminal_driver import HangUpSafeDriver
from qwen_tui.terminal_gone import TerminalGone, leave_now
from qwen_tui.visible_text import one_line, visible_text
from qwen_tui.worker_failures import report_failure

if TYPE_CHECKING:
    import psutil

    from qwen_tui.screens.settings_dialog import SessionSettings

EngineFactory = Callable[[InstalledModel], Engine]

NATIVE_WAIT_S = 2.0
"""At quit, how long a stopped reply's thread may take to leave the model (it stops at the
end of the token or prefill chunk it is computing) before the process leaves without it."""


class QwenTuiApp(ModelLoading, App[int]):
    """qwen-tui's terminal UI."""

    CSS_PATH = "app.tcss"
    TITLE = "qwen-tui"
    BINDINGS: ClassVar[list[BindingType]] = [
        Binding(default_key("app.quit"), "quit", "Quit", id="app.quit", priority=True),
        Binding(default_key("app.help"), "help", "Help", id="app.help"),
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
        self.presets = load_presets(paths.presets_file)
        """Named presets (the command palette offers them) and the saved defaults."""
        self.left_off = LeftOff(self.store, paths.state_file)
        """The session last shown and its unsent draft (state.toml)."""
        self._handle_signals = handle_signals
        """Save and exit on SIGTERM/SIGHUP, a hang-up or the parent going away (the real app;
        tests run in pytest's process)."""
        self.terminal_gone = TerminalGone(self, STARTED_BY)
        """Saves and exits when the user's terminal goes away (with handle_signals)."""
        self.models = ModelSlot()
        """The model the chat uses, its engine, and where loading it stands."""
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
        opened, error = self.left_off.first_session(
            self.open_new_session, self._session_id, self._new_session
        )
        if error is not None:
            self.call_later(self.notify, str(error), title="Session", severity="error")
        self.chat_screen = ChatScreen(ChatState(self.store, opened))
        return self.chat_screen

    # ------------------------------------------------------------ where the user left off

    def draft_for(self, session: Session) -> str:
        """The prompt left unsent in `session` when the app last ran."""
        return self.left_off.draft_for(session)

    def remember_session(self, session: Session) -> None:
        """`session` is the one to reopen next time (written only when that changes)."""
        self.left_off.remember(session)

    def remember_on_leaving(self) -> None:
        """The session shown now and the prompt's unsent text, for the next start."""
        screen = self.chat_screen
        try:
            draft = screen.prompt.text if screen is not None else None
        except NoMatches:  # not drawn yet: the state read at start still holds
            draft = None
        if screen is not None and draft is not None:
            self.left_off.leaving(screen.session, draft)

    def open_new_session(self) -> OpenSession:
        """An empty session with the user's defaults (saved in the app, else config.toml's).
        Not locked (nor saved) yet: the chat locks it when its first message saves it, so
        sessions never used leave no files."""
        return open_new_session(self.config, self.presets)

    def keep_settings(self, result: SessionSettings) -> str | None:
        """Save the settings dialog's values as the defaults or as a preset too, if asked;
        what to tell the user (None: nothing more was asked)."""
        return keep_settings(self, result)

    def on_mount(self) -> None:
        for warning in self.config.warnings:
            self.notify(warning, title="config.toml", severity="warning", timeout=15)
        for problem in self.presets.problems:
            self.notify(problem, title="presets.toml", severity="warning", timeout=15)
        if self.config.ui.theme not in self.available_themes:
            self.notify(f"unknown theme {self.config.ui.theme!r}", title="config.toml")
        if self._handle_signals:
            self.terminal_gone.watch()
        self.call_after_refresh(startup_gc.release)  # the first frame is drawn
        self._start_first_model()

    @property
    def left_with_the_terminal(self) -> bool:
        """A hang-up, SIGHUP/SIGTERM or the parent's end is making the app exit."""
        return self.terminal_gone.happened

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
            report_failure(self, worker)

    # ------------------------------------------------------------ keys, help, palette

    def effective_key(self, binding_id: str) -> str:
        """The key(s) bound to `binding_id` after the config's [keys] table."""
        return effective_key(declared_bindings(self.BINDINGS), self.config.keys, binding_id)

    def help_rows(self) -> list[tuple[str, str, str]]:
        return [
            (self.effective_key(b.id), help_text(b.id, b.description), b.id)
            for b in declared_bindings(self.BINDINGS)
        ]

    def action_help(self) -> None:
        from qwen_tui.screens.help_screen import HelpScreen

        if not isinstance(self.screen, HelpScreen):
            self.push_screen(HelpScreen(self.help_rows()))

    def get_system_commands(self, screen: Screen) -> Iterable[SystemCommand]:
        yield from super().get_system_commands(screen)
        yield from palette_commands(self, screen)

    # ------------------------------------------------------------ status, quitting

    def process_rss(self) -> int:
        """Resident memory of this process, for the status bar."""
        if self._process is None:
            import psutil  # 40 ms of imports: after the first frame

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

    def native_work_ended(self, timeout: float) -> bool:
        """After the app has exited: whether no thread is left inside the model's native
        code, waiting up to `timeout` s for a stopped reply's last step to end. A model
        still loading is not waited for (it can take a minute; nothing of it is kept)."""
        if self.load_in_progress():
            return False
        engine = self.engine
        return engine is None or engine.wait_idle(timeout)

    async def action_quit(self) -> None:
        # A session that could not be saved is not given up without asking.
        if self.chat_screen is None or self.chat_screen.ready_to_quit():
            self.remember_on_leaving()
            self.exit(0)


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
        leave_now(status)
    if not app.native_work_ended(NATIVE_WAIT_S):
        # Everything is saved. Finalizing now would stop the generation or loading thread
        # (a daemon) inside torch/bigdl and abort the process ("terminate called without an
        # active exception", SIGABRT: 8 of 10 quits during a long prompt's prefill did).
        leave_now(status)
    return status
