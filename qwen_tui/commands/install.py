"""`qwen-tui import|rm`: a local model quantized into the installed ones, or one removed."""

from __future__ import annotations

import argparse

from qwen_tui.cli_settings import load_settings
from qwen_tui.console import stage_printer
from qwen_tui.exit_codes import EXIT_NO_MODEL, EXIT_OK, CliError
from qwen_tui.model_files import ModelNotFoundError, find_installed
from qwen_tui.model_setup.installed import remove_installed
from qwen_tui.units import human_bytes
from qwen_tui.visible_text import terminal_line


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
