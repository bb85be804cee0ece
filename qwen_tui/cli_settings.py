"""config.toml and the paths, as a headless command reads them: a config error is a usage
error (exit 2) and warnings go to stderr before the command runs."""

from __future__ import annotations

from qwen_tui.config import Config, ConfigError
from qwen_tui.config_file import load_config
from qwen_tui.console import say
from qwen_tui.exit_codes import EXIT_USAGE, CliError
from qwen_tui.paths import Paths, get_paths


def load_settings() -> tuple[Config, Paths]:
    paths = get_paths()
    try:
        config = load_config(paths.config_file)
    except ConfigError as error:
        raise CliError(str(error), EXIT_USAGE) from None
    for warning in config.warnings:
        say(f"warning: {warning}")
    return config, paths
