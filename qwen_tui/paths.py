"""Every on-disk location qwen-tui uses, in one place.

`QWEN_TUI_HOME` overrides all of them (tests and shared servers use it); otherwise the
per-OS folders from platformdirs.
"""

from __future__ import annotations

import contextlib
import os
import stat
from dataclasses import dataclass
from pathlib import Path

HOME_ENV = "QWEN_TUI_HOME"
APP_NAME = "qwen-tui"


@dataclass(frozen=True)
class Paths:
    config_file: Path
    """The user's config.toml: read, never rewritten by the app."""
    data_dir: Path
    """Sessions and models live under here."""
    state_dir: Path
    """What the app writes for itself: state.toml, logs."""
    cache_dir: Path
    """Downloads in progress and other re-creatable files."""

    @property
    def sessions_dir(self) -> Path:
        return self.data_dir / "sessions"

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def downloads_dir(self) -> Path:
        return self.cache_dir / "downloads"

    @property
    def state_file(self) -> Path:
        return self.state_dir / "state.toml"

    @property
    def presets_file(self) -> Path:
        """Named presets and the defaults saved from the settings dialog (store/presets.py)."""
        return self.state_dir / "presets.toml"

    @property
    def log_dir(self) -> Path:
        return self.state_dir / "logs"

    def as_dict(self) -> dict[str, Path]:
        return {
            "config": self.config_file,
            "data": self.data_dir,
            "sessions": self.sessions_dir,
            "models": self.models_dir,
            "downloads": self.downloads_dir,
            "state": self.state_dir,
            "presets": self.presets_file,
            "logs": self.log_dir,
        }


def get_paths() -> Paths:
    home = os.environ.get(HOME_ENV)
    if home:
        root = Path(home).expanduser().resolve()
        return Paths(
            config_file=root / "config.toml",
            data_dir=root / "data",
            state_dir=root / "state",
            cache_dir=root / "cache",
        )
    import platformdirs

    return Paths(
        config_file=Path(platformdirs.user_config_dir(APP_NAME)) / "config.toml",
        data_dir=Path(platformdirs.user_data_dir(APP_NAME)),
        state_dir=Path(platformdirs.user_state_dir(APP_NAME)),
        cache_dir=Path(platformdirs.user_cache_dir(APP_NAME)),
    )


def ensure_private_dir(path: Path) -> Path:
    """Create `path` (and parents) readable by the owner only: sessions hold private text.

    Parents this call creates are private too (mkdir(parents=True) gives them the umask's
    mode, e.g. 0755); folders that already existed are left as they are.
    """
    created = [p for p in path.parents if not p.exists()]
    path.mkdir(parents=True, exist_ok=True, mode=0o700)
    # Not ours to change on e.g. a shared mount: the files inside are still 0600.
    for folder in (path, *created):
        with contextlib.suppress(OSError):
            os.chmod(folder, 0o700)
    return path


PRIVATE_UMASK = 0o077
"""Files this process creates are 0600, folders 0700, whoever writes them (our code,
transformers' save_pretrained, huggingface_hub's downloads): models and caches hold what
the user chose to run, sessions what they wrote."""


def make_private(paths: Paths) -> None:
    """Set PRIVATE_UMASK for this process and close the top folders an older release left
    open (0755): a 0700 folder keeps others out of everything under it, whatever the
    modes inside. Best effort: a folder we do not own is not ours to change."""
    os.umask(PRIVATE_UMASK)
    folders = (paths.data_dir, paths.models_dir, paths.cache_dir, paths.downloads_dir)
    for folder in (*folders, paths.state_dir):
        with contextlib.suppress(OSError):
            info = folder.lstat()
            if stat.S_ISDIR(info.st_mode) and info.st_uid == os.getuid():
                os.chmod(folder, 0o700)
