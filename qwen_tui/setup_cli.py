"""`qwen-tui setup` and `qwen-tui models --available`: the model-setup flow in a terminal."""

from __future__ import annotations

import argparse
import sys
import threading
from collections.abc import Callable
from typing import TextIO

from qwen_tui.cli_settings import load_settings
from qwen_tui.cli_signals import stop_on_signals
from qwen_tui.console import stage_printer
from qwen_tui.exit_codes import EXIT_INTERRUPTED, EXIT_OK, EXIT_SETUP_FAILED, EXIT_USAGE, CliError
from qwen_tui.model_setup.catalog import CATALOG, entry_for
from qwen_tui.model_setup.download_errors import DownloadError
from qwen_tui.model_setup.download_progress import DownloadProgress
from qwen_tui.model_setup.quantize import QuantizeError
from qwen_tui.model_setup.setup_flow import SetupError, installed_from, request_for, run_setup
from qwen_tui.units import MB, clock_text, human_bytes


def download_printer(stream: TextIO = sys.stderr) -> Callable[[DownloadProgress], None]:
    """One line updated in place: file, bytes, speed, ETA (a line per file when not a tty)."""
    interactive = stream.isatty()
    last = {"file": ""}

    def show(p: DownloadProgress) -> None:
        eta = "" if p.eta_s is None else f" ETA {clock_text(p.eta_s)}"
        line = (
            f"{p.filename[:30]:<30} {human_bytes(p.done_bytes)}/{human_bytes(p.total_bytes)}"
            f" {human_bytes(p.bytes_per_s)}/s{eta} [{p.files_done}/{p.files_total} files]"
        )
        if interactive:
            stream.write("\r" + line[:100].ljust(100))
        elif p.filename != last["file"]:
            stream.write(line + "\n")
        last["file"] = p.filename
        stream.flush()

    return show


def confirm(question: str) -> bool:
    if not sys.stdin.isatty():
        return False
    return input(f"{question} [y/N] ").strip().lower() in ("y", "yes")


def setup(args: argparse.Namespace) -> int:
    config, paths = load_settings()
    existing = installed_from(paths, args.repo_id)
    if existing is not None:
        print(f"{existing.name} is ready: qwen-tui --model {existing.name}")
        return EXIT_OK
    entry = entry_for(args.repo_id, allow_remote_code=args.trust_remote_code)
    if not entry.tested:
        print(f"qwen-tui: warning: {args.repo_id}: {entry.notes}", file=sys.stderr)
        if not args.yes and not confirm("Try it anyway?"):
            raise CliError("not confirmed (pass --yes to skip this question)", EXIT_USAGE)
    request = request_for(
        args.repo_id,
        config,
        endpoint=args.endpoint,
        revision=args.revision,
        low_bit=args.low_bit,
        trust_remote_code=args.trust_remote_code,
        delete_original=args.delete_original,
    )
    print(f"setting up {entry.display_name} from {request.endpoint}", file=sys.stderr)
    cancel = threading.Event()
    try:
        # ctrl-c, SIGTERM and SIGHUP (SSH gone) stop the download between chunks, keeping
        # what arrived; handlers of our own, so it works even where SIGINT came in ignored.
        with stop_on_signals(cancel):
            result = run_setup(
                request,
                paths,
                on_download=download_printer(),
                on_stage=stage_printer(),
                cancel=cancel,
            )
    except KeyboardInterrupt:  # a second ctrl-c, e.g. while quantizing
        print("\nqwen-tui: interrupted: run the same command again to resume", file=sys.stderr)
        return EXIT_INTERRUPTED
    except SetupError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    except DownloadError as error:
        if error.kind == "cancelled":
            print("\nqwen-tui: interrupted: run the same command again to resume", file=sys.stderr)
            return EXIT_INTERRUPTED
        print(file=sys.stderr)
        raise CliError(str(error), EXIT_SETUP_FAILED) from None
    except QuantizeError as error:
        print(file=sys.stderr)
        raise CliError(str(error), EXIT_SETUP_FAILED) from None
    model = result.model
    print(
        f"\n{model.name} is ready ({human_bytes(model.manifest.size_bytes)}, "
        f"{model.manifest.low_bit}): qwen-tui --model {model.name}"
    )
    return EXIT_OK


def print_catalog(stream: TextIO = sys.stdout) -> None:
    """The catalog, each entry marked installed or not."""
    _config, paths = load_settings()
    for entry in CATALOG:
        installed = installed_from(paths, entry.repo_id)
        mark = f"installed as {installed.name}" if installed else "not installed"
        code = ", remote code" if entry.trust_remote_code else ""
        stream.write(
            f"{entry.repo_id:<28} {entry.params:>4}  "
            f"{human_bytes(entry.download_mb * MB, 'GB', digits=1):>7} download  "
            f"{entry.run_ram_gb:.1f} GB RAM  {entry.license}{code}  [{mark}]\n"
        )
