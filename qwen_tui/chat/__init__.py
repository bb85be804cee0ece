"""The chat's rules without its widgets: which session is shown, when it is saved, the reply
being streamed, the model slot, where the user left off. No textual here (tests/unit/
test_layers.py checks it), so these rules are tested without a terminal."""
