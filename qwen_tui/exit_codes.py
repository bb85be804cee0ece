"""What a `qwen-tui` process exits with, and the error that carries it.

Its own module so that the entry point (which prints a CliError and returns its status) and
the commands (which raise it) both import it from below, instead of each other.
"""

from __future__ import annotations

EXIT_OK = 0
EXIT_FAILED = 1
"""Generation failed, or the answer could not be saved."""
EXIT_USAGE = 2
"""Bad arguments or config, or the session is open elsewhere."""
EXIT_NO_MODEL = 3
"""The model is missing or damaged."""
EXIT_SETUP_FAILED = 4
"""Download or quantize failed."""
EXIT_INTERRUPTED = 130


class CliError(Exception):
    """A message for stderr and an exit status; raised by commands, printed by main()."""

    def __init__(self, message: str, status: int = EXIT_USAGE) -> None:
        super().__init__(message)
        self.status = status
