"""Benchmark models and baselines; `qwen_tui.bench` imports them from a source checkout."""
