"""Download a hub model and quantize it once: what `qwen-tui setup` and the setup screen run.

The steps are the tutorial's (huggingface-cli download through a mirror, then load with
`load_in_low_bit` and `save_low_bit`), with the parts a tutorial skips: resuming, a disk
check up front, remote code only with consent, and a self-contained result that loads
with the hub unreachable.
"""

from __future__ import annotations

import shutil
import threading
from dataclasses import dataclass
from pathlib import Path

from qwen_tui.config import Config
from qwen_tui.model_files import InstalledModel, list_installed, runs_qwen_v1_code
from qwen_tui.model_setup.catalog import CatalogEntry, entry_for
from qwen_tui.model_setup.download import download_model
from qwen_tui.model_setup.download_errors import DownloadError
from qwen_tui.model_setup.download_progress import ProgressCallback
from qwen_tui.model_setup.hub_settings import resolve_endpoint, resolve_token
from qwen_tui.model_setup.installed import model_name_for
from qwen_tui.model_setup.quantize import (
    Progress,
    needs_remote_code,
    quantize_model,
    read_config,
)
from qwen_tui.paths import Paths
from qwen_tui.units import MB

# INT4 weights plus the bf16 embedding come to about 0.4x the bf16 download (1.8B: 3.7 -> 1.4 GB).
_QUANTIZED_FRACTION = 0.4


class SetupError(Exception):
    """Setup cannot go on; the message says what to do about it."""


@dataclass(frozen=True)
class SetupRequest:
    repo_id: str
    endpoint: str
    token: str | None = None
    revision: str | None = None
    low_bit: str = "sym_int4"
    trust_remote_code: bool = False
    """The user's explicit consent to run this repo's code (catalog entries carry their own)."""
    delete_original: bool = False
    use_hf_transfer: bool = False


def request_for(
    repo_id: str,
    config: Config,
    *,
    endpoint: str | None = None,
    token: str | None = None,
    revision: str | None = None,
    low_bit: str | None = None,
    trust_remote_code: bool = False,
    delete_original: bool = False,
) -> SetupRequest:
    """A request with what the user typed (`--endpoint`, a field) over config.toml's settings.

    `setup` on the command line and the setup screen both build theirs here, so the endpoint,
    token, low-bit format and hf_transfer choice come from the same places in the same order.
    """
    return SetupRequest(
        repo_id=repo_id,
        endpoint=resolve_endpoint(endpoint, config.hub.endpoint),
        token=token or resolve_token(config.hub.token),
        revision=revision,
        low_bit=low_bit or config.model.low_bit,
        trust_remote_code=trust_remote_code,
        delete_original=delete_original,
        use_hf_transfer=config.hub.hf_transfer,
    )


@dataclass(frozen=True)
class SetupResult:
    model: InstalledModel
    already_installed: bool
    downloaded_bytes: int = 0


def installed_from(paths: Paths, repo_id: str) -> InstalledModel | None:
    """The model installed from `repo_id`; an old Qwen v1 install running its own code counts
    as not installed, so that setup converts it (it replaces the folder of the same name)."""
    wanted = repo_id.strip().strip("/").lower()
    return next(
        (
            m
            for m in list_installed(paths.models_dir)
            if m.manifest.source.lower() == wanted and not runs_qwen_v1_code(m.manifest)
        ),
        None,
    )


def download_folder(paths: Paths, repo_id: str) -> Path:
    """Stable per repo, so that running setup again resumes the same files."""
    return paths.downloads_dir / model_name_for(repo_id)


def run_setup(
    request: SetupRequest,
    paths: Paths,
    *,
    on_download: ProgressCallback | None = None,
    on_stage: Progress | None = None,
    cancel: threading.Event | None = None,
) -> SetupResult:
    """Download (resuming) and quantize `request.repo_id`; a no-op when it is installed."""
    existing = installed_from(paths, request.repo_id)
    if existing is not None:
        return SetupResult(existing, already_installed=True)
    entry = entry_for(request.repo_id, allow_remote_code=request.trust_remote_code)
    stage: Progress = on_stage or (lambda _stage, _fraction: None)
    folder = download_folder(paths, entry.repo_id)
    stage("downloading", None)
    result = download_model(
        entry.repo_id,
        folder,
        endpoint=request.endpoint,
        token=request.token,
        revision=request.revision or entry.revision,
        allow_patterns=entry.allow_patterns,
        use_hf_transfer=request.use_hf_transfer,
        progress=on_download,
        cancel=cancel,
        extra_bytes_needed=int(entry.download_mb * MB * _room_factor(entry)),
    )
    trusted = _remote_code_consent(entry, folder, request)
    if cancel is not None and cancel.is_set():
        raise DownloadError("cancelled", "setup cancelled before quantizing; run it again to go on")
    model = quantize_model(
        folder,
        paths.models_dir,
        name=model_name_for(entry.repo_id),
        source=entry.repo_id,
        low_bit=request.low_bit,
        trust_remote_code=trusted,
        revision=result.revision,
        progress=stage,
    )
    if request.delete_original:
        shutil.rmtree(folder, ignore_errors=True)
    return SetupResult(model, already_installed=False, downloaded_bytes=result.fetched_bytes)


def _room_factor(entry: CatalogEntry) -> float:
    """Disk beyond the download, as a fraction of it: the INT4 model, and for Qwen v1 the
    converted checkpoint, which lives in the staging folder while quantizing."""
    return _QUANTIZED_FRACTION + (1.0 if entry.qwen_v1 else 0.0)


def _remote_code_consent(entry: CatalogEntry, folder: Path, request: SetupRequest) -> bool:
    """Whether quantizing may run the repo's code: catalog entries, or the user said so."""
    if entry.trust_remote_code:
        return True
    if needs_remote_code(folder, read_config(folder)):
        raise SetupError(
            f"{entry.repo_id} needs its own Python code to load (trust_remote_code), which "
            "would run on this machine. If you trust it, run setup again with "
            "--trust-remote-code (nothing is downloaded twice)."
        )
    return False
