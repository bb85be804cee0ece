"""Textual widgets of the chat screen, one class per file."""
