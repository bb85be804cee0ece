"""One setup job as the setup screen runs it: what to set up, running it, and its outcome.

The screen offers three kinds of job (a hub repo, a local import, the bundled demo) and runs
each in a worker thread. Everything but the widgets lives here, UI-free: building the job's
request (shared with `qwen-tui setup` through `setup_flow.request_for`), running it one at a
time, turning *every* failure into a `SetupOutcome` the screen shows (expected ones in the
model_setup's words, anything else logged with its traceback), whether a stopped hub job is
waiting for consent to run the repo's code, throttling progress, and the machine's free room.
"""

from __future__ import annotations

import logging
import shutil
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

import psutil

from qwen_tui.config import Config
from qwen_tui.model_files import InstalledModel
from qwen_tui.model_setup.catalog import find_entry
from qwen_tui.model_setup.download_errors import DownloadError
from qwen_tui.model_setup.download_progress import DownloadProgress
from qwen_tui.model_setup.hub_settings import resolve_endpoint, resolve_token
from qwen_tui.model_setup.importer import ensure_demo_model, import_model
from qwen_tui.model_setup.quantize import QuantizeError, needs_remote_code, read_config
from qwen_tui.model_setup.setup_flow import SetupError, download_folder, request_for, run_setup
from qwen_tui.paths import Paths

log = logging.getLogger("qwen_tui.screens.setup_screen")  # where the screen's log always went

REDRAW_EVERY_S = 0.25
"""Progress reaches the screen at most this often (a new file or step always does)."""

# huggingface_hub switches module-wide constants around each file it fetches: two downloads
# in one process would flip them under each other. A cancelled job still winding down holds
# this until it has, so a new one waits rather than overlapping it.
ONE_SETUP_AT_A_TIME = threading.Lock()

JobKind = Literal["hub", "import", "demo"]
EXPECTED_ERRORS = (DownloadError, QuantizeError, SetupError)
"""Failures model_setup words for users; anything else is a bug and goes to the log."""


@dataclass(frozen=True)
class SetupJob:
    """One thing to set up, with the settings it runs with."""

    kind: JobKind
    target: str = ""
    """Repo id (hub) or path (import); empty for the demo."""
    endpoint: str = ""
    token: str | None = None
    trust_remote_code: bool = False
    """The user confirmed running this repo's or folder's own code."""

    @property
    def title(self) -> str:
        if self.kind == "demo":
            return "Preparing the demo model"
        if self.kind == "import":
            return f"Importing {self.target}"
        return f"Downloading {self.target} from {self.endpoint}"


def hub_job(repo_id: str, config: Config, endpoint: str = "", token: str = "") -> SetupJob:
    """A hub job with what the user typed (empty: config.toml, then the environment)."""
    return SetupJob(
        "hub",
        repo_id,
        endpoint=resolve_endpoint(endpoint or None, config.hub.endpoint),
        token=token or resolve_token(config.hub.token),
    )


@dataclass(frozen=True)
class SetupOutcome:
    """What the worker returns: the model, or the failure to show (never both)."""

    job: SetupJob
    model: InstalledModel | None = None
    error: Exception | None = None


def failed(job: SetupJob, error: BaseException) -> SetupOutcome:
    """The one place a setup failure becomes an outcome; the unexpected ones are logged."""
    if not isinstance(error, EXPECTED_ERRORS):
        # Not a failure model_setup words for users: a bug, or a library's surprise.
        log.error("setting up %s failed", job.target, exc_info=error)
    return SetupOutcome(job, error=error if isinstance(error, Exception) else RuntimeError(error))


def run_job(
    job: SetupJob,
    paths: Paths,
    config: Config,
    on_download: Callable[[DownloadProgress], None],
    on_stage: Callable[[str, float | None], None],
    cancel: threading.Event,
) -> SetupOutcome:
    """Run `job` to the end, one job at a time. Blocking: call it from a worker thread."""
    with ONE_SETUP_AT_A_TIME:
        try:
            model = _perform(job, paths, config, on_download, on_stage, cancel)
        except Exception as error:
            return failed(job, error)
    return SetupOutcome(job, model=model)


def _perform(
    job: SetupJob,
    paths: Paths,
    config: Config,
    on_download: Callable[[DownloadProgress], None],
    on_stage: Callable[[str, float | None], None],
    cancel: threading.Event,
) -> InstalledModel:
    if job.kind == "demo":
        return ensure_demo_model(paths, on_stage)
    if job.kind == "import":
        return import_model(
            Path(job.target),
            paths,
            low_bit=config.model.low_bit,
            trust_remote_code=job.trust_remote_code,
            progress=on_stage,
        )
    request = request_for(
        job.target,
        config,
        endpoint=job.endpoint,
        token=job.token,
        trust_remote_code=job.trust_remote_code,
    )
    result = run_setup(request, paths, on_download=on_download, on_stage=on_stage, cancel=cancel)
    return result.model


def needs_consent(job: SetupJob, paths: Paths) -> bool:
    """`run_setup` stopped because a repo outside the catalog needs its own code to load."""
    if job.kind != "hub" or job.trust_remote_code or find_entry(job.target) is not None:
        return False
    folder = download_folder(paths, job.target)
    try:
        return needs_remote_code(folder, read_config(folder))
    except QuantizeError:
        return False


class ProgressThrottle:
    """The worker's progress callbacks, passed on at most every `every_s` seconds.

    Downloads report ten times a second; over a slow SSH link every redraw costs, so most are
    dropped here, in the worker thread, before they reach the UI. A new file or step and the
    end of the download are always passed on.
    """

    def __init__(
        self,
        on_download: Callable[[DownloadProgress], None],
        on_stage: Callable[[str, float | None], None],
        every_s: float = REDRAW_EVERY_S,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self._on_download, self._on_stage = on_download, on_stage
        self._every_s = every_s
        self._clock = clock
        self._last_post = float("-inf")
        self._last_file: str | None = None
        self._last_stage: str | None = None

    def _due(self, now: float) -> bool:
        return now - self._last_post >= self._every_s

    def download(self, progress: DownloadProgress) -> None:
        now = self._clock()
        new_file = progress.filename != self._last_file
        finished = progress.done_bytes >= progress.total_bytes
        if new_file or finished or self._due(now):
            self._last_file, self._last_post = progress.filename, now
            self._on_download(progress)

    def stage(self, stage: str, fraction: float | None) -> None:
        now = self._clock()
        if stage != self._last_stage or self._due(now):
            self._last_stage, self._last_post = stage, now
            self._on_stage(stage, fraction)


def free_resources(paths: Paths) -> tuple[int, int]:
    """(RAM available now, free disk space where downloads go), in bytes."""
    folder = paths.cache_dir.absolute()
    while not folder.exists() and folder != folder.parent:
        folder = folder.parent
    return psutil.virtual_memory().available, shutil.disk_usage(folder).free
