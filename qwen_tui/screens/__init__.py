"""Textual screens of the app: the chat and its dialogs, one class per file."""
