"""The sessions folder listed: each file's summary, re-read only when the file changed."""

from __future__ import annotations

import builtins
import os
import stat
from dataclasses import dataclass
from pathlib import Path

from qwen_tui.store.atomic import describe_os_error
from qwen_tui.store.bad_files import BadFiles
from qwen_tui.store.errors import StoreError, StoreProblem
from qwen_tui.store.leftovers import remove_orphan_lock_files, remove_stale_temp_files
from qwen_tui.store.schema import NewerSchemaError
from qwen_tui.store.session_files import (
    SAFE_ID,
    SUFFIX,
    NotAFileError,
    not_a_file,
    read_regular_file,
    stat_key,
)
from qwen_tui.store.session_reading import SessionSummary, loads, summary_from_dict


@dataclass(frozen=True)
class _CachedSummary:
    stat_key: tuple[int, int, int]
    summary: SessionSummary


class SessionListing:
    """Summaries of the session files in one folder; bad files go to `bad_files`.

    The store lists after every save; re-reading only changed files keeps that cheap.
    """

    def __init__(self, sessions_dir: Path, bad_files: BadFiles) -> None:
        self.dir = sessions_dir
        self.bad_files = bad_files
        self._summaries: dict[Path, _CachedSummary] = {}

    def list(self) -> builtins.list[SessionSummary]:
        """Every readable session, newest `updated` first; bad files go to `problems`."""
        summaries = []
        seen = set()
        for path in self._session_files():
            seen.add(path)
            summary = self._summary(path)
            if summary is not None:
                summaries.append(summary)
        for gone in self._summaries.keys() - seen:
            self._summaries.pop(gone, None)  # pop: a save in another worker may race us
        remove_stale_temp_files(self.dir)
        remove_orphan_lock_files(self.dir)
        return _newest_first(summaries)

    def forget(self, path: Path) -> None:
        """Read `path` again at the next list() (it was written, deleted or moved aside)."""
        self._summaries.pop(path, None)

    def _session_files(self) -> builtins.list[Path]:
        try:
            with os.scandir(self.dir) as scan:
                entries = builtins.list(scan)
        except FileNotFoundError:
            return []
        except OSError as error:
            raise StoreError(
                f"could not read the sessions folder {self.dir}: {describe_os_error(error)}"
            ) from error
        return [
            Path(entry.path)
            for entry in entries
            if entry.name.endswith(SUFFIX) and not entry.name.startswith(".")
        ]

    def _summary(self, path: Path) -> SessionSummary | None:
        """The summary of one file, from cache if unchanged; None (and a problem) if bad."""
        session_id = path.name.removesuffix(SUFFIX)
        if not SAFE_ID.fullmatch(session_id):
            self.bad_files.record(StoreProblem(path, "file name is not a session id", None))
            return None
        try:
            info = path.lstat()
            key = stat_key(info)
            cached = self._summaries.get(path)
            if cached is not None and cached.stat_key == key:
                return cached.summary
            if not stat.S_ISREG(info.st_mode):
                # A link, folder, FIFO or device named *.json: not ours to move or judge,
                # but the user should know why it is not listed.
                self.bad_files.record(StoreProblem(path, not_a_file(path, info), None))
                return None
            raw, key = read_regular_file(path)
        except FileNotFoundError:
            return None  # deleted (or moved aside) by another instance since the scan
        except NotAFileError as error:
            self.bad_files.record(StoreProblem(path, str(error), None))
            return None
        except OSError as error:
            problem = StoreProblem(path, f"unreadable: {describe_os_error(error)}", None)
            self.bad_files.record(problem)
            return None
        try:
            summary = summary_from_dict(loads(raw), path)
        except NewerSchemaError as error:
            # Not damage: the qwen-tui that wrote it opens it; moving it aside would hide it.
            self.bad_files.record(StoreProblem(path, str(error), None))
            return None
        except ValueError as error:
            self.forget(path)
            self.bad_files.move_aside(path, str(error))
            return None
        self._summaries[path] = _CachedSummary(key, summary)
        return summary


def _newest_first(summaries: builtins.list[SessionSummary]) -> builtins.list[SessionSummary]:
    # id breaks ties so the order is stable between calls
    return sorted(summaries, key=lambda s: (s.updated, s.id), reverse=True)
