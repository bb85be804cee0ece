"""The headless commands behind `qwen-tui ask|models|sessions|import|rm|doctor`.

No UI here: the entry point (cli.py) is the one module that imports both these and the app.
"""

from __future__ import annotations

import argparse
import math
import sys
import threading
import time
from typing import TYPE_CHECKING

from qwen_tui.cli_settings import load_settings
from qwen_tui.cli_signals import hangup_interrupts, stop_on_signals
from qwen_tui.config import REMOTE_PREFIX, Config, ConfigError, RemoteConfig
from qwen_tui.config_file import load_config
from qwen_tui.console import say, show, stage_printer
from qwen_tui.conversation import GenerationSettings, GenerationStats, Message, Session, StopReason
from qwen_tui.exit_codes import EXIT_INTERRUPTED, EXIT_NO_MODEL, EXIT_OK, CliError
from qwen_tui.model_files import (
    InstalledModel,
    ModelNotFoundError,
    find_installed,
    list_installed,
    upgrade_hint,
)
from qwen_tui.model_setup.installed import remove_installed
from qwen_tui.paths import Paths, get_paths
from qwen_tui.stats_text import full_stats_line
from qwen_tui.units import human_bytes
from qwen_tui.visible_text import terminal_line, terminal_text
from qwen_tui.well_formed import decode_input, well_formed

if TYPE_CHECKING:
    from qwen_tui.attachment import Attachment
    from qwen_tui.engine.base import Engine
    from qwen_tui.store import OpenSession, SessionStore, SessionSummary
    from qwen_tui.store.presets import Preset, Presets


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


def read_prompt(prompt: str | None) -> str:
    """The prompt from the argument or stdin; bytes that are not UTF-8 become U+FFFD (one
    rule for invalid text, well_formed.REPLACEMENT), so the session stays writable and
    sendable."""
    if prompt is None and sys.stdin.isatty():
        raise CliError("no prompt: give one as an argument or pipe it on stdin")
    if prompt in (None, "-"):
        stdin = getattr(sys.stdin, "buffer", None)
        text = decode_input(stdin.read()) if stdin is not None else well_formed(sys.stdin.read())
    else:
        text = well_formed(prompt)  # argv: undecodable bytes arrive as lone surrogates
    if not text.strip():
        raise CliError("the prompt is empty")
    return text.strip("\n")


def chosen_preset(name: str | None, presets: Presets) -> Preset | None:
    """`--preset NAME`, or exit 2 naming the presets there are."""
    if name is None:
        return None
    if name in presets.named:
        return presets.named[name]
    known = ", ".join(repr(n) for n in presets.named) or "none yet (the settings dialog saves them)"
    raise CliError(f"no preset {name!r}; saved presets: {known}")


def open_session(
    args: argparse.Namespace, new: Session, store: SessionStore, preset: Preset | None = None
) -> OpenSession:
    """The session to add to, locked for writing: `--session ID`, or `new`; a `--preset`
    then gives it its system prompt and sampling settings (`--system` wins over it).

    A session another qwen-tui is writing is left alone (exit 2, naming that process):
    adding a turn would race its saves, and quietly starting a copy would leave the user
    with two diverging histories.
    """
    from qwen_tui.store import SessionLockedError, StoreError

    try:
        opened = store.open(args.ask_session) if args.ask_session else store.open_new(new)
    except StoreError as error:
        raise CliError(str(error)) from None
    if opened.writer is not None:
        opened.close()
        busy = SessionLockedError(args.ask_session, opened.writer)
        raise CliError(f"{busy}: not adding to it; try again when it is done, or use --new-session")
    if opened.notice:
        say(f"warning: {opened.notice}")
    if preset is not None:
        opened.session.system_prompt = preset.system_prompt
        opened.session.settings = preset.settings
    if args.system is not None:
        opened.session.system_prompt = well_formed(args.system)
    return opened


class SessionSaver:
    """Saves `ask`'s session at each save point. A failure is told once; the conversation
    stays in memory and the next save point tries again (and says when it worked)."""

    def __init__(self, store: SessionStore, session: Session) -> None:
        self.store = store
        self.session = session
        self.error: str | None = None
        """Why the last save failed; None once a save worked."""

    def save(self) -> bool:
        from qwen_tui.store import StoreError

        try:
            self.store.save(self.session)
        except StoreError as error:
            if self.error is None:
                say(f"{error} (will retry; the conversation is kept in memory)")
            self.error = str(error)
            return False
        if self.error is not None:
            say(f"saved session {self.session.id} after all")
            self.error = None
        return True

    def save_last(self, attempts: int = 3, pause_s: float = 0.5) -> bool:
        """The save after the reply: no later save point will retry it, so retry here."""
        for attempt in range(attempts):
            if attempt:
                time.sleep(pause_s)
            if self.save():
                return True
        return False


def ask(args: argparse.Namespace) -> int:
    """Answer one prompt on stdout, adding the turn to a session.

    Exit codes: 0 answered and saved, 1 generation failed or the answer could not be saved
    (it is still printed), 2 usage (or the session is open elsewhere), 3 no model,
    130 stopped (ctrl-c, SIGTERM, SIGHUP, output gone).
    """
    from qwen_tui.store import SessionStore
    from qwen_tui.store.presets import load_presets, new_session

    config, paths = load_settings()
    store = SessionStore(paths.sessions_dir)
    presets = load_presets(paths.presets_file)
    for problem in presets.problems:
        say(f"warning: {problem}")
    preset = chosen_preset(args.preset, presets)
    new = new_session(config, presets)
    with hangup_interrupts() as last_words, open_session(args, new, store, preset) as opened:
        session = opened.session
        prompt = read_prompt(args.prompt)
        settings = session.settings.with_changes(
            **{
                k: v
                for k, v in (("max_new_tokens", args.max_tokens), ("temperature", args.temperature))
                if v is not None
            }
        )
        model = resolve_model(args.ask_model, config, paths)
        if opened.settle_interrupted():
            say(f"note: a reply in session {session.id} was interrupted earlier; its text is kept")
        session.add("user", prompt)
        session.model = model.model_name if isinstance(model, RemoteConfig) else model.name
        saver = SessionSaver(store, session)
        saver.save()  # the question is on disk before any slow step
        if wants_session_line(args):
            last_words.append(session_line(session))
        engine = load_model(model, config)
        reply = stream_reply(engine, session, settings, saver)
    return finish_ask(args, reply, saver)


def stream_reply(
    engine: Engine, session: Session, settings: GenerationSettings, saver: SessionSaver
) -> Message:
    """Print the reply as it streams and save it: at the first token and every ~2 s while
    partial (marked incomplete, so a killed process keeps most of it), then once done."""
    from qwen_tui.engine.base import TextChunk
    from qwen_tui.visible_text import visible_text

    reply = session.add("assistant", "")
    reply.incomplete = True
    chunks = 0
    final: GenerationStats | None = None
    cancel = threading.Event()
    out = sys.stdout
    # A pipe gets the reply's characters as they are (a script may want them); a terminal
    # only visible ones.
    clean = visible_text if out.isatty() else well_formed
    last_save = -math.inf  # saved at the first token: from then on it shows as in progress
    # Signals stay caught until the reply is saved: a ctrl-c right after the last token
    # must not lose it.
    with stop_on_signals(cancel):
        for event in engine.generate(session.chat_messages()[:-1], settings, cancel):
            if isinstance(event, TextChunk):
                reply.content += event.text
                chunks += 1
                if not show(out, clean(event.text)):
                    cancel.set()  # nobody is reading: stop, and keep what there is
                if time.monotonic() - last_save > 2.0:
                    # Progress so far: a reply killed now is later shown with its count.
                    reply.stats = GenerationStats(generated_tokens=chunks)
                    saver.save()
                    last_save = time.monotonic()
            else:
                final = event.stats
        reply.stats = final
        reply.incomplete = False
        saver.save_last()
    return reply


def wants_session_line(args: argparse.Namespace) -> bool:
    return bool(args.new_session or (sys.stderr.isatty() and not args.ask_session))


def session_line(session: Session) -> str:
    return f"session {session.id} (continue: qwen-tui ask --session {session.id})"


def finish_ask(args: argparse.Namespace, reply: Message, saver: SessionSaver) -> int:
    session = saver.session
    show(sys.stdout, "\n")
    stats = reply.stats or GenerationStats(stop_reason=StopReason.ERROR, error="no result")
    if args.stats:
        say(full_stats_line(stats), prefix="")
    if wants_session_line(args):
        say(session_line(session), prefix="")
    status = EXIT_INTERRUPTED if stats.stop_reason is StopReason.STOPPED else EXIT_OK
    if stats.stop_reason is StopReason.ERROR:
        say(f"{stats.error}")
        status = 1
    if saver.error is not None:
        say(
            f"the reply above was NOT saved to {saver.store.path_for(session.id)} "
            f"({saver.error}); copy it from here if you need it"
        )
        status = 1
    return status


def models(args: argparse.Namespace) -> int:
    if args.available:
        from qwen_tui.setup_cli import print_catalog  # the setup stack: only when asked

        print_catalog()
        return EXIT_OK
    config, paths = load_settings()
    installed = list_installed(paths.models_dir)
    if not installed and not config.remotes:
        print(
            "no models installed: `qwen-tui setup` downloads one, "
            "`qwen-tui import PATH` imports a local one",
            file=sys.stderr,
        )
    for model in installed:
        m = model.manifest
        size = human_bytes(m.size_bytes, "MB", digits=0)
        line = f"{m.name:<24} {m.low_bit:<10} {size:>11}  {m.source}"
        print(terminal_line(line))
    for remote in config.remotes:
        key = f"  (key from ${remote.api_key_env})" if remote.api_key_env else ""
        line = f"{remote.model_name:<24} {'remote':<10} {'':>11}  {remote.model} at "
        print(terminal_line(f"{line}{remote.base_url}{key}"))
    return EXIT_OK


def sessions(args: argparse.Namespace) -> int:
    from qwen_tui.store import SessionStore, StoreError
    from qwen_tui.visible_text import one_line

    _config, paths = load_settings()
    store = SessionStore(paths.sessions_dir)
    try:
        for summary in store.list():
            updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(summary.updated))
            title = one_line(summary.title) or "(untitled)"
            print(
                terminal_line(
                    f"{summary.id}  {updated}  {summary.message_count:4d} msgs  "
                    f"{title}{reply_mark(store, summary)}"
                )
            )
    except StoreError as error:  # the folder itself is unreadable
        raise CliError(str(error)) from None
    finally:  # files moved aside are told even when listing the rest failed
        for problem in store.problems:
            say(str(problem))
    return EXIT_OK


def reply_mark(store: SessionStore, summary: SessionSummary) -> str:
    """'  [interrupted reply]' when a reply was left incomplete by a process that is gone."""
    if not summary.incomplete:
        return ""
    writer = store.holder(summary.id)
    if writer is None:
        return "  [interrupted reply]"
    return f"  [reply being written by {writer.describe()}]"


def import_model(args: argparse.Namespace) -> int:
    from pathlib import Path

    from qwen_tui.model_setup.importer import import_model as run_import
    from qwen_tui.model_setup.quantize import QuantizeError

    config, paths = load_settings()
    try:
        model = run_import(
            Path(args.path),
            paths,
            name=args.name,
            low_bit=args.low_bit or config.model.low_bit,
            trust_remote_code=args.trust_remote_code,
            progress=stage_printer(),
        )
    except QuantizeError as error:
        raise CliError(str(error), EXIT_NO_MODEL) from None
    print(
        terminal_line(
            f"installed {model.name} ({human_bytes(model.manifest.size_bytes, 'MB', digits=0)}): "
            f'qwen-tui ask --model {model.name} "hello"'
        )
    )
    return EXIT_OK


def remove_model(args: argparse.Namespace) -> int:
    _config, paths = load_settings()
    try:
        model = find_installed(paths.models_dir, args.name)
    except ModelNotFoundError as error:
        raise CliError(str(error), EXIT_NO_MODEL) from None
    remove_installed(model)
    print(terminal_line(f"removed {model.name}"))
    return EXIT_OK


def doctor(args: argparse.Namespace) -> int:
    from qwen_tui.doctor import report

    paths = get_paths()
    try:
        config = load_config(paths.config_file)
        endpoint = config.hub.endpoint
        problem = None
    except ConfigError as error:  # doctor still reports everything else
        endpoint, problem = "", str(error)
    from qwen_tui.model_setup.hub_settings import resolve_endpoint

    print(terminal_text("\n".join(report(paths, resolve_endpoint(None, endpoint)))))
    if problem:
        print(f"config: {terminal_line(problem)}")
    return EXIT_OK


def read_piped_stdin() -> Attachment | None:
    """`some-command | qwen-tui`: read the pipe to its end before anything is drawn, then
    take keys from the controlling terminal (fd 0 becomes /dev/tty)."""
    from qwen_tui.context_sources import AttachError, read_piped, take_terminal_for_keys

    if sys.stdin is None or sys.stdin.isatty():
        return None
    try:
        piped = read_piped(sys.stdin.buffer)
    except AttachError as error:
        raise CliError(str(error)) from None
    try:
        take_terminal_for_keys()
    except AttachError as error:
        if piped is not None:  # (with nothing piped, start as before)
            raise CliError(str(error)) from None
    return piped


def check_session_exists(paths: Paths, session_id: str) -> None:
    """Exit 2 with a message for a `--session` that names no saved session."""
    from qwen_tui.store import SessionStore, StoreError

    try:
        path = SessionStore(paths.sessions_dir).path_for(session_id)
    except StoreError as error:  # not a session id at all
        raise CliError(str(error)) from None
    if not path.exists():
        raise CliError(f"no session {session_id}: `qwen-tui sessions` lists the saved ones")
