"""Textual widgets of the chat screen, one class per file (plus `visible_text`)."""
