"""The headless commands behind `qwen-tui ask|models|sessions|import|rm|doctor`, one module each.

No UI here: the entry point (cli.py) is the one module that imports both these and the app.
"""
