"""The setup screen's list of models: its rows, their marks, the details of the highlighted one."""

from __future__ import annotations

from textual.widgets.option_list import Option

from qwen_tui.model_setup.catalog import CATALOG, CatalogEntry, find_entry
from qwen_tui.model_setup.importer import demo_installed
from qwen_tui.model_setup.setup_flow import download_folder, installed_from
from qwen_tui.model_setup.setup_job import free_resources
from qwen_tui.paths import Paths
from qwen_tui.screens.setup_words import catalog_label, extra_label
from qwen_tui.units import GB, human_bytes

DEMO, IMPORT, OTHER = "demo", "import", "other"
"""The ids of the rows after the catalog's (a catalog row's id is `repo:<repo id>`)."""


def _gb(n: float) -> str:
    return human_bytes(n, "GB", digits=1)


def _option_id(entry: CatalogEntry) -> str:
    return f"repo:{entry.repo_id}"


def choice_options(paths: Paths) -> list[Option]:
    """The catalog's models, then the demo, an import and another hub repo, each marked."""
    options = [
        Option(catalog_label(entry, entry_state(paths, entry)), id=_option_id(entry))
        for entry in CATALOG
    ]
    demo_mark = "✓ " if demo_installed(paths) else "  "
    extras = [
        (demo_mark, "Demo model", "SmolLM2 135M, bundled: no download", DEMO),
        ("  ", "Import a local model…", "a folder or a .gguf file", IMPORT),
        ("  ", "Another hub model…", "any repo id, untested", OTHER),
    ]
    options += [Option(extra_label(m, name, note), id=i) for m, name, note, i in extras]
    return options


def entry_state(paths: Paths, entry: CatalogEntry) -> str:
    """ "installed", "partial" (partly downloaded) or ""."""
    if installed_from(paths, entry.repo_id) is not None:
        return "installed"
    return "partial" if download_folder(paths, entry.repo_id).is_dir() else ""


def choice_details(option_id: str, paths: Paths, low_bit: str) -> str:
    """What the row `option_id` sets up, in a few lines for the details box."""
    if option_id == DEMO:
        return (
            "SmolLM2 135M Instruct, shipped with qwen-tui: works with no network.\n"
            "Prepared once, in about half a minute.\n"
            "Small and quick; its answers are basic."
        )
    if option_id == IMPORT:
        return (
            "A transformers model folder (config.json, weights, tokenizer)\n"
            "or a .gguf file (Llama architecture),\n"
            f"quantized once to {low_bit}."
        )
    if option_id == OTHER:
        return (
            "Any hub repo id (org/name). Not in the catalog, so untested:\n"
            "it may fail to quantize or to chat.\n"
            "A repo that ships its own code asks before running it."
        )
    entry = find_entry(option_id.removeprefix("repo:"))
    return entry_details(entry, paths) if entry else ""


def entry_details(entry: CatalogEntry, paths: Paths) -> str:
    """Four lines: repo and licence, what it needs, what is free, its state or notes."""
    ram, disk = free_resources(paths)
    free = f"Free now: {_gb(disk)} disk, {_gb(ram)} RAM"
    if entry.quantize_ram_gb * GB > ram:
        free += ": not enough RAM to quantize this one"
    state = entry_state(paths, entry)
    last = {
        "installed": "Installed: enter opens it.",
        "partial": "Partly downloaded: enter resumes where it stopped.",
    }.get(state, entry.notes)
    return "\n".join(
        [
            f"{entry.repo_id} · licence: {entry.license}",
            f"Needs {entry.download_mb / 1024:.1f} GB disk, "
            f"{entry.quantize_ram_gb:.1f} GB RAM to quantize, "
            f"{entry.run_ram_gb:.1f} GB RAM to chat",
            free,
            last,
        ]
    )
