"""Entry point: argument parsing, then hand over to the app or a headless command.

The top of the layers: the only module that imports both the app (the UI) and the commands
(the CLI); neither of those imports the other.

Exit codes: 0 ok, 1 generation failed, 2 usage or config error, 3 model missing or damaged,
4 setup (download or quantize) failed, 130 interrupted.
"""

from __future__ import annotations

import argparse
import contextlib
import sys
from collections.abc import Callable, Sequence

from qwen_tui import __version__, startup_gc
from qwen_tui.exit_codes import EXIT_FAILED, EXIT_INTERRUPTED, EXIT_OK, CliError
from qwen_tui.low_bit import LOW_BIT_FORMATS
from qwen_tui.model_setup.catalog import DEFAULT_REPO
from qwen_tui.visible_text import terminal_text


def setting_value(name: str) -> Callable[[str], object]:
    """An argparse type for a GenerationSettings field: its bound (the one config.toml and
    the settings dialog check) or a usage error naming what is expected."""
    from qwen_tui.conversation import SETTING_BOUNDS

    bound = SETTING_BOUNDS[name]

    def parse(text: str) -> object:
        try:
            return bound.parse(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(terminal_text(error)) from None

    parse.__name__ = name  # argparse names the type in some messages
    return parse


def session_id(text: str) -> str:
    """An argparse type for --session: a session id, never "" (which would silently start
    a new session) nor a path."""
    from qwen_tui.store import InvalidSessionIdError, check_session_id

    try:
        return check_session_id(text)
    except InvalidSessionIdError as error:
        raise argparse.ArgumentTypeError(terminal_text(error)) from None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="qwen-tui",
        description="Chat with local INT4 Qwen models in the terminal. "
        "Without a command, opens the chat app.",
    )
    parser.add_argument("--version", action="version", version=f"qwen-tui {__version__}")
    parser.add_argument("--model", help="installed model name, repo id, or remote:NAME to open")
    start = parser.add_mutually_exclusive_group()
    start.add_argument(
        "--session",
        metavar="ID",
        type=session_id,
        help="open this saved session (default: the last one shown)",
    )
    start.add_argument("--new", action="store_true", help="start with a new session")
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")

    ask = commands.add_parser("ask", help="answer one prompt on stdout (headless)")
    ask.add_argument("prompt", nargs="?", help="the prompt; '-' or absent reads stdin")
    ask.add_argument(
        "--model", dest="ask_model", metavar="NAME", help="installed model or remote:NAME"
    )
    ask.add_argument("--system", metavar="TEXT", help="system prompt (new sessions)")
    ask.add_argument(
        "--preset", metavar="NAME", help="a preset saved in the app: its system prompt and sampling"
    )
    where = ask.add_mutually_exclusive_group()
    where.add_argument(
        "--session", dest="ask_session", metavar="ID", type=session_id, help="continue a session"
    )
    where.add_argument("--new-session", action="store_true", help="print the new session's id")
    ask.add_argument(
        "--max-tokens", type=setting_value("max_new_tokens"), metavar="N", help="reply length limit"
    )
    ask.add_argument(
        "--temperature", type=setting_value("temperature"), metavar="T", help="0 = greedy"
    )
    ask.add_argument("--stats", action="store_true", help="print TTFT, tok/s, tokens to stderr")

    models = commands.add_parser("models", help="list installed models")
    models.add_argument("--available", action="store_true", help="also list the catalog")
    commands.add_parser("sessions", help="list saved sessions")

    imp = commands.add_parser("import", help="quantize a local .gguf file or model folder")
    imp.add_argument("path", help="a Llama-architecture .gguf file or a transformers folder")
    imp.add_argument("--name", help="installed name (default: from the file name)")
    imp.add_argument("--low-bit", default=None, help="sym_int4 (default), asym_int4, sym_int8, nf4")
    imp.add_argument("--trust-remote-code", action="store_true", help="allow the folder's code")

    setup = commands.add_parser("setup", help="download a model from the hub and quantize it")
    setup.add_argument(
        "repo_id", nargs="?", default=DEFAULT_REPO, help=f"hub repo id (default {DEFAULT_REPO})"
    )
    setup.add_argument("--low-bit", choices=LOW_BIT_FORMATS, help="default: [model] low_bit")
    setup.add_argument("--endpoint", metavar="URL", help="hub or mirror (default: HF_ENDPOINT)")
    setup.add_argument("--revision", metavar="R", help="branch, tag or commit")
    setup.add_argument(
        "--trust-remote-code",
        action="store_true",
        help="allow the repo's own Python code (some repos outside the catalog)",
    )
    setup.add_argument(
        "--delete-original",
        action="store_true",
        help="remove the downloaded full-precision files afterwards",
    )
    setup.add_argument("--yes", action="store_true", help="do not ask before untested repos")

    rm = commands.add_parser("rm", help="remove an installed model")
    rm.add_argument("name")
    commands.add_parser("doctor", help="versions, CPU, kernels, paths: paste into bug reports")
    bench = commands.add_parser("bench", help="measure an installed model's speed and memory")
    bench.add_argument("--model", metavar="NAME", help="default: the configured model")
    bench.add_argument("--quick", action="store_true", help="a short run: 32 tokens, 1 prompt")
    bench.add_argument("--json", action="store_true", help="print one JSON object on stdout")
    bench.add_argument("--threads", type=int, default=0, help="default: [model] threads")
    return parser


def run_setup(args: argparse.Namespace) -> int:
    from qwen_tui import setup_cli  # the download/quantize stack: not for the chat's start

    return setup_cli.setup(args)


def run_bench(args: argparse.Namespace) -> int:
    from qwen_tui import bench

    return bench.run(args)


def run_app(args: argparse.Namespace) -> int:
    """No command: the chat app. Textual loads only here, so headless commands start fast."""
    from qwen_tui.app import run_app as start
    from qwen_tui.cli_settings import load_settings
    from qwen_tui.commands.app_start import check_session_exists, read_piped_stdin
    from qwen_tui.commands.model_choice import resolve_model
    from qwen_tui.model_files import list_installed

    config, paths = load_settings()
    if args.session is not None:
        check_session_exists(paths, args.session)  # before anything is drawn
    if not list_installed(paths.models_dir) and not args.model:
        with contextlib.suppress(CliError):  # the app explains what to do without a model
            resolve_model(None, config, paths)
    piped = read_piped_stdin()
    return start(
        config,
        paths,
        model_name=args.model,
        session_id=args.session,
        new_session=args.new or piped is not None,  # piped text starts a conversation
        piped=piped,
    )


def main(argv: Sequence[str] | None = None) -> int:
    startup_gc.hold()  # until the app's first frame or the command's start (startup_gc.py)
    try:
        return run_command(argv)
    finally:
        startup_gc.release()


def run_command(argv: Sequence[str] | None) -> int:
    from qwen_tui.commands import ask, install, reports
    from qwen_tui.logs import setup_logging
    from qwen_tui.paths import get_paths, make_private

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(argv)
    handlers: dict[str | None, Callable[[argparse.Namespace], int]] = {
        None: run_app,
        "ask": ask.ask,
        "models": reports.models,
        "sessions": reports.sessions,
        "import": install.import_model,
        "setup": run_setup,
        "rm": install.remove_model,
        "doctor": reports.doctor,
        "bench": run_bench,
    }
    if args.command is not None:
        startup_gc.release()  # only the app's launch is worth the wait
    try:
        make_private(get_paths())
        setup_logging()
        return handlers[args.command](args)
    except CliError as error:
        print(f"qwen-tui: {terminal_text(error)}", file=sys.stderr)
        return error.status
    except KeyboardInterrupt:
        print("\nqwen-tui: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:
        # `qwen-tui doctor | head`: the reader left; nothing to report. Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception:
        # A bug: the traceback is for the bug report, but its messages quote outside text
        # (file names, server answers), so it reaches the terminal with controls visible.
        import traceback

        print(terminal_text(traceback.format_exc()), file=sys.stderr, end="")
        return EXIT_FAILED
