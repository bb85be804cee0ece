"""qwen-tui: keyboard-driven terminal chat with local INT4 Qwen models on x86 CPUs."""

__version__ = "0.1.0"
