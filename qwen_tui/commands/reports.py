"""`qwen-tui models|sessions|doctor`: what is installed, saved and here, printed."""

from __future__ import annotations

import argparse
import sys
import time
from typing import TYPE_CHECKING

from qwen_tui.cli_settings import load_settings
from qwen_tui.config import ConfigError
from qwen_tui.config_file import load_config
from qwen_tui.console import say
from qwen_tui.exit_codes import EXIT_OK, CliError
from qwen_tui.model_files import list_installed
from qwen_tui.paths import get_paths
from qwen_tui.units import human_bytes
from qwen_tui.visible_text import terminal_line, terminal_text

if TYPE_CHECKING:
    from qwen_tui.store import SessionStore, SessionSummary


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
                    f"{title}{fork_mark(summary)}{reply_mark(store, summary)}"
                )
            )
    except StoreError as error:  # the folder itself is unreadable
        raise CliError(str(error)) from None
    finally:  # files moved aside are told even when listing the rest failed
        for problem in store.problems:
            say(str(problem))
    return EXIT_OK


def fork_mark(summary: SessionSummary) -> str:
    """'  [fork of ID]': a fork keeps its parent's title, so the listing tells them apart
    (the sidebar marks it "⑂ fork") and names the session to `--session` for the original."""
    return f"  [fork of {summary.forked_from}]" if summary.forked_from else ""


def reply_mark(store: SessionStore, summary: SessionSummary) -> str:
    """'  [interrupted reply]' when a reply was left incomplete by a process that is gone."""
    if not summary.incomplete:
        return ""
    writer = store.holder(summary.id)
    if writer is None:
        return "  [interrupted reply]"
    return f"  [reply being written by {writer.describe()}]"


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
