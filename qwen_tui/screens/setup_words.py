"""What the setup screen says: list rows, the "ready" notice, and failures with what to do.

model_setup words its errors for the command line ("set HF_ENDPOINT", "re-run"); here the
advice names this screen's fields and keys instead. Kept apart from the widgets so the
wording can be read (and tested) on its own.
"""

from __future__ import annotations

from rich.text import Text

from qwen_tui.model_files import InstalledModel
from qwen_tui.model_setup.catalog import CatalogEntry
from qwen_tui.model_setup.download_errors import DownloadError
from qwen_tui.model_setup.hub_settings import MIRROR_HINT
from qwen_tui.model_setup.setup_job import EXPECTED_ERRORS, SetupJob
from qwen_tui.units import human_bytes
from qwen_tui.visible_text import one_line


def failure_text(error: Exception, job: SetupJob) -> tuple[str, str]:
    """(what went wrong, what to do about it on this screen).

    model_setup's messages are written for the command line ("set HF_ENDPOINT", "re-run");
    for the errors this screen has a field for, the advice names the field instead.
    """
    message = str(error) or type(error).__name__
    if not isinstance(error, EXPECTED_ERRORS):
        return f"{type(error).__name__}: {message}", "The log has the details."
    if not isinstance(error, DownloadError):
        return message, ""
    if error.kind == "cancelled":
        return "Download cancelled.", "Press enter on the same model to resume where it stopped."
    if error.kind == "unreachable":
        first_sentence = message.split(". ", 1)[0].rstrip(".") + "."  # "Cannot reach X (why)."
        return first_sentence, (
            "Check the network. If the hub is blocked where you are, use a mirror: type "
            f"{MIRROR_HINT} (or another) in Endpoint and press enter."
        )
    if error.kind == "unauthorized":
        what = (
            f"{job.endpoint} refused the token for {job.target}."
            if job.token
            else f"{job.target} is gated or private on {job.endpoint}."
        )
        return what, (
            "Accept the model's licence on its page, create an access token with read access, "
            "paste it in Token and press enter."
        )
    hints = {
        "interrupted": "Press enter on the same model to resume; finished files are kept.",
        "disk_full": "Free some space, then press enter on the same model to resume.",
        "not_found": "Check the repo id and the endpoint.",
    }
    return message, hints.get(error.kind, "")


def describe_model(model: InstalledModel) -> str:
    """`name (1.2 GB, sym_int4)`, for the notification when it is ready."""
    manifest = model.manifest
    return f"{one_line(model.name)} ({human_bytes(manifest.size_bytes)}, {manifest.low_bit})"


def catalog_label(entry: CatalogEntry, state: str) -> Text:
    """One row: mark, name, size, download, RAM to chat, licence (cut at the edge)."""
    mark = {"installed": "✓ ", "partial": "◐ "}.get(state, "  ")
    text = Text(mark)
    text.append(f"{entry.display_name:<24}", style="bold")
    text.append(f"  {entry.params:>4}  {entry.download_mb / 1024:3.1f} GB download  ")
    text.append(f"{entry.run_ram_gb:.1f} GB RAM  ")
    text.append(entry.license, style="dim")
    return text


def extra_label(mark: str, name: str, note: str) -> Text:
    text = Text(mark)
    text.append(name, style="bold")
    text.append(f"  {note}", style="dim")
    return text
