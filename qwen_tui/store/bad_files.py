"""Session files that cannot be read: moved aside (never over another file), reported once."""

from __future__ import annotations

from pathlib import Path

from qwen_tui.store.atomic import describe_os_error
from qwen_tui.store.errors import StoreProblem
from qwen_tui.store.session_files import corrupt_name, rename_no_overwrite


class BadFiles:
    """The bad files a store has seen so far; the UI may clear() `problems` once told."""

    def __init__(self) -> None:
        self.problems: list[StoreProblem] = []

    def move_aside(self, path: Path, reason: str) -> StoreProblem:
        """Rename a bad file out of the way, never over another file; record the problem."""
        try:
            moved_to = rename_no_overwrite(path, corrupt_name(path))
        except OSError as error:
            failed = f"{reason}; moving it aside failed: {describe_os_error(error)}"
            problem = StoreProblem(path, failed, None)
        else:
            problem = StoreProblem(path, reason, moved_to)
        self.record(problem)
        return problem

    def record(self, problem: StoreProblem) -> None:
        # A file left in place is seen again by every list(): report it once.
        if problem.moved_to is None and any(
            p.path == problem.path and p.moved_to is None for p in self.problems
        ):
            return
        self.problems.append(problem)
