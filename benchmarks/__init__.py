"""`make bench` and the other measurements: dev-only, never shipped, never imported by qwen_tui."""
