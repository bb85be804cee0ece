"""The headless commands behind `qwen-tui ask|models|sessions|import|rm|doctor`."""

from __future__ import annotations

import argparse
import contextlib
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, TextIO

from qwen_tui.cli import EXIT_INTERRUPTED, EXIT_NO_MODEL, EXIT_OK, EXIT_USAGE, CliError
from qwen_tui.config import Config, ConfigError, load_config
from qwen_tui.conversation import GenerationStats, Session, StopReason
from qwen_tui.model_setup.installed import (
    InstalledModel,
    ModelNotFoundError,
    find_installed,
    list_installed,
    remove_installed,
)
from qwen_tui.paths import Paths, get_paths

if TYPE_CHECKING:
    from qwen_tui.engine.base import Engine
    from qwen_tui.store import SessionStore


def load_settings() -> tuple[Config, Paths]:
    paths = get_paths()
    try:
        config = load_config(paths.config_file)
    except ConfigError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    for warning in config.warnings:
        print(f"qwen-tui: warning: {warning}", file=sys.stderr)
    return config, paths


def stage_printer(stream: TextIO = sys.stderr) -> Callable[[str, float | None], None]:
    """A progress callback for slow set-up steps: a line per stage, a percentage updated in
    place on a terminal (whole percents only: slow SSH links), stage lines only otherwise."""
    interactive = stream.isatty()
    shown = {"stage": "", "percent": -1}

    def show(stage: str, fraction: float | None) -> None:
        percent = -1 if fraction is None else int(fraction * 100)
        if stage == shown["stage"] and (not interactive or percent == shown["percent"]):
            return
        if stage != shown["stage"]:
            if shown["stage"] and interactive:
                stream.write("\n")
            if not interactive:
                stream.write(f"{stage}\n")
        shown.update(stage=stage, percent=percent)
        if interactive:
            stream.write(f"\r{stage}" + (f" {percent:3d}%" if percent >= 0 else ""))
        stream.flush()

    return show


def resolve_model(name: str | None, config: Config, paths: Paths) -> InstalledModel:
    """The model to use: named, configured, the only installed one, or the demo (prepared once)."""
    from qwen_tui.model_setup.importer import DEMO_NAME, ensure_demo_model
    from qwen_tui.model_setup.quantize import QuantizeError

    wanted = name or config.model.default
    installed = list_installed(paths.models_dir)
    try:
        if wanted and wanted != DEMO_NAME:
            return find_installed(paths.models_dir, wanted)
        if not wanted and installed:
            return installed[0]
        return ensure_demo_model(paths, progress=stage_printer())
    except (ModelNotFoundError, QuantizeError) as error:
        raise CliError(str(error), EXIT_NO_MODEL) from None


def load_model(model: InstalledModel, config: Config) -> Engine:
    from qwen_tui.engine.base import EngineError
    from qwen_tui.engine.loader import load_engine

    try:
        return load_engine(model, threads=config.model.threads)
    except EngineError as error:
        raise CliError(str(error), EXIT_NO_MODEL) from None


def read_prompt(prompt: str | None) -> str:
    if prompt is None and sys.stdin.isatty():
        raise CliError("no prompt: give one as an argument or pipe it on stdin")
    text = sys.stdin.read() if prompt in (None, "-") else prompt
    if not text.strip():
        raise CliError("the prompt is empty")
    return text.strip("\n")


def open_session(args: argparse.Namespace, config: Config, store: SessionStore) -> Session:
    from qwen_tui.store import StoreError

    if args.ask_session:
        try:
            session = store.load(args.ask_session)
        except StoreError as error:
            raise CliError(str(error)) from None
        if args.system is not None:
            session.system_prompt = args.system
        return session
    return Session(
        system_prompt=config.system_prompt if args.system is None else args.system,
        settings=config.generation,
    )


def save_or_warn(store: SessionStore, session: Session) -> bool:
    """Save; on failure say so and carry on (the text is still on screen)."""
    from qwen_tui.store import StoreError

    try:
        store.save(session)
        return True
    except StoreError as error:
        print(f"qwen-tui: {error}", file=sys.stderr)
        return False


@contextlib.contextmanager
def stop_on_signals(cancel: threading.Event) -> Iterator[None]:
    """ctrl-c, SIGTERM and SIGHUP (SSH gone) stop the reply cleanly so the partial is saved."""
    caught = (signal.SIGINT, signal.SIGTERM, signal.SIGHUP)
    previous = {sig: signal.getsignal(sig) for sig in caught}

    def handle(signum: int, _frame: object) -> None:
        if cancel.is_set() and signum == signal.SIGINT:
            raise KeyboardInterrupt  # a second ctrl-c: the user really wants out
        cancel.set()

    for sig in caught:
        signal.signal(sig, handle)
    try:
        yield
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


def format_stats(stats: GenerationStats) -> str:
    parts = []
    if stats.ttft_s is not None:
        parts.append(f"TTFT {stats.ttft_s:.2f} s")
    if stats.decode_tok_s is not None:
        parts.append(f"{stats.decode_tok_s:.1f} tok/s")
    parts.append(f"{stats.prompt_tokens} prompt + {stats.generated_tokens} generated tokens")
    parts.append(str(stats.stop_reason))
    if stats.dropped_turns:
        parts.append(f"{stats.dropped_turns} oldest turns left out (context full)")
    return " · ".join(parts)


def ask(args: argparse.Namespace) -> int:
    from qwen_tui.engine.base import TextChunk
    from qwen_tui.store import SessionStore
    from qwen_tui.widgets.visible_text import visible_text

    config, paths = load_settings()
    store = SessionStore(paths.sessions_dir)
    session = open_session(args, config, store)
    prompt = read_prompt(args.prompt)
    settings = session.settings.with_changes(
        **{
            k: v
            for k, v in (("max_new_tokens", args.max_tokens), ("temperature", args.temperature))
            if v is not None
        }
    )
    model = resolve_model(args.ask_model, config, paths)
    session.add("user", prompt)
    session.model = model.name
    save_or_warn(store, session)  # the question is on disk before any slow step
    engine = load_model(model, config)
    reply = session.add("assistant", "")
    reply.incomplete = True
    cancel = threading.Event()
    out = sys.stdout
    clean = visible_text if out.isatty() else (lambda text: text)
    last_save = time.monotonic()
    # Signals stay caught until the reply is saved: a ctrl-c right after the last token
    # must not lose it.
    with stop_on_signals(cancel):
        for event in engine.generate(session.chat_messages()[:-1], settings, cancel):
            if isinstance(event, TextChunk):
                reply.content += event.text
                out.write(clean(event.text))
                out.flush()
                if time.monotonic() - last_save > 2.0:  # a killed process keeps most of it
                    save_or_warn(store, session)
                    last_save = time.monotonic()
            else:
                reply.stats = event.stats
        reply.incomplete = False
        save_or_warn(store, session)
    out.write("\n")
    out.flush()
    stats = reply.stats or GenerationStats(stop_reason=StopReason.ERROR, error="no result")
    if args.stats:
        print(format_stats(stats), file=sys.stderr)
    if args.new_session or (sys.stderr.isatty() and not args.ask_session):
        print(
            f"session {session.id} (continue: qwen-tui ask --session {session.id})", file=sys.stderr
        )
    if stats.stop_reason is StopReason.ERROR:
        print(f"qwen-tui: {stats.error}", file=sys.stderr)
        return 1
    return EXIT_INTERRUPTED if stats.stop_reason is StopReason.STOPPED else EXIT_OK


def models(args: argparse.Namespace) -> int:
    _config, paths = load_settings()
    installed = list_installed(paths.models_dir)
    if not installed:
        print(
            "no models installed: `qwen-tui setup` downloads one, "
            "`qwen-tui import PATH` imports a local one",
            file=sys.stderr,
        )
    for model in installed:
        m = model.manifest
        print(f"{m.name:<24} {m.low_bit:<10} {m.size_bytes / 2**20:8.0f} MB  {m.source}")
    return EXIT_OK


def sessions(args: argparse.Namespace) -> int:
    from qwen_tui.store import SessionStore
    from qwen_tui.widgets.visible_text import one_line

    _config, paths = load_settings()
    store = SessionStore(paths.sessions_dir)
    for summary in store.list():
        updated = time.strftime("%Y-%m-%d %H:%M", time.localtime(summary.updated))
        print(
            f"{summary.id}  {updated}  {summary.message_count:4d} msgs  "
            f"{one_line(summary.title) or '(untitled)'}"
        )
    for problem in store.problems:
        print(f"qwen-tui: {problem}", file=sys.stderr)
    return EXIT_OK


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
        f"installed {model.name} ({model.manifest.size_bytes / 2**20:.0f} MB): "
        f'qwen-tui ask --model {model.name} "hello"'
    )
    return EXIT_OK


def remove_model(args: argparse.Namespace) -> int:
    _config, paths = load_settings()
    try:
        model = find_installed(paths.models_dir, args.name)
    except ModelNotFoundError as error:
        raise CliError(str(error), EXIT_NO_MODEL) from None
    remove_installed(model)
    print(f"removed {model.name}")
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
    from qwen_tui.model_setup.download import resolve_endpoint

    print("\n".join(report(paths, resolve_endpoint(None, endpoint))))
    if problem:
        print(f"config: {problem}")
    return EXIT_OK


def run_app(args: argparse.Namespace) -> int:
    from qwen_tui.app import run_app as start

    config, paths = load_settings()
    if not list_installed(paths.models_dir) and not args.model:
        with contextlib.suppress(CliError):  # the app explains what to do without a model
            resolve_model(None, config, paths)
    return start(config, paths, model_name=args.model, session_id=args.session)
