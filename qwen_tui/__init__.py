"""qwen-tui: keyboard-driven terminal chat with local INT4 Qwen models on x86 CPUs."""

import os

__version__ = "0.1.0"

STARTED_BY = os.getppid()
"""The process that started this one, noted before anything slow is imported: the app
leaves when it is gone, and one that died while textual and torch loaded must count too."""
