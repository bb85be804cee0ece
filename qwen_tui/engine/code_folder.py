"""A model folder whose own code must run (trust_remote_code), under a name Python can import.

transformers imports a local folder's model code as `transformers_modules.<folder name>.<file>`
(dynamic_module_utils.get_cached_module_file). A folder named `qwen-v1-1.8b` becomes the
package path `transformers_modules.qwen-v1-1` + `8b`, and every load dies with
ModuleNotFoundError. Model names may hold dots, spaces or any script, so such folders are
loaded through a symlink with a plain name derived from the real path.
"""

from __future__ import annotations

import hashlib
import re
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

_PLAIN_NAME = re.compile(r"[A-Za-z0-9_-]+")


@contextmanager
def importable_folder(folder: Path, *, runs_code: bool) -> Iterator[Path]:
    """`folder` itself when its name is plain or no code runs from it; else a symlink to it
    named `model_<hash of the path>`, alive while the context lasts (loading imports the code
    into sys.modules; nothing reads the folder's code files after that)."""
    if not runs_code or _PLAIN_NAME.fullmatch(folder.name):
        yield folder
        return
    digest = hashlib.sha256(str(folder.resolve()).encode()).hexdigest()[:16]
    with tempfile.TemporaryDirectory(prefix="qwen-tui-code-") as scratch:
        link = Path(scratch) / f"model_{digest}"
        link.symlink_to(folder.resolve(), target_is_directory=True)
        yield link
