"""Set up a model: a catalog model, another hub repo, a local folder or GGUF file, or the demo.

Opens at start when nothing is installed, and from the command palette ("Set up a model…").
The work itself is UI-free (model_setup/setup_job.py: the job, running it, its outcome),
blocking, so it runs in one thread worker; its progress callbacks fire in that thread and
reach the screen as messages, at most a few a second (each redraw may cross a slow SSH link).
Every failure comes back as data (`SetupOutcome.error`) and is shown in words with what to do
about it here (setup_words.py); the list's rows and details are setup_choices.py's; this file
keeps the widgets and the flow: choosing, running the job, its outcome. The screen dismisses
with the installed model, which the app then loads in the chat, or with None when the user leaves.
"""

from __future__ import annotations

import re
import threading
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from textual import on, work
from textual.app import ComposeResult
from textual.binding import Binding, BindingType
from textual.containers import Horizontal
from textual.screen import Screen
from textual.widgets import Input, Label, OptionList, Static
from textual.worker import Worker, WorkerState

from qwen_tui.config import Config
from qwen_tui.model_files import InstalledModel
from qwen_tui.model_setup.download_errors import DownloadError
from qwen_tui.model_setup.hub_settings import resolve_endpoint
from qwen_tui.model_setup.quantize import QuantizeError, needs_remote_code, read_config
from qwen_tui.model_setup.setup_flow import SetupError
from qwen_tui.model_setup.setup_job import (
    SetupJob,
    SetupOutcome,
    failed,
    hub_job,
    needs_consent,
    run_job,
)
from qwen_tui.paths import Paths
from qwen_tui.screens.confirm_dialog import ConfirmDialog
from qwen_tui.screens.setup_choices import DEMO, IMPORT, OTHER, choice_details, choice_options
from qwen_tui.screens.setup_relay import DownloadProgressed, ProgressRelay, StageChanged
from qwen_tui.screens.setup_words import describe_model, failure_text
from qwen_tui.visible_text import visible_text
from qwen_tui.widgets.setup_progress import SetupProgress

if TYPE_CHECKING:
    from qwen_tui.app import QwenTuiApp

REPO_ID = re.compile(r"[\w.-]+/[\w.-]+")


class SetupScreen(Screen[InstalledModel | None]):
    """Choose a model and set it up; dismisses with the installed model (or None)."""

    BINDINGS: ClassVar[list[BindingType]] = [
        Binding("escape", "back", "Cancel / back", id="setup.back"),
    ]

    app: QwenTuiApp

    def __init__(self) -> None:
        super().__init__()
        self._cancel: threading.Event | None = None
        """Set to stop the running job; None while nothing runs."""
        self._job: SetupJob | None = None
        self._worker: Worker[SetupOutcome] | None = None
        self._stage = ""
        self._source_kind: str | None = None
        """IMPORT or OTHER while the source field asks for a path or a repo id."""

    @property
    def running(self) -> bool:
        return self._cancel is not None

    # ------------------------------------------------------------ layout

    def compose(self) -> ComposeResult:
        yield Static("Set up a model", id="setup-title")
        choices = OptionList(*choice_options(self.app.paths), id="setup-choices")
        choices.border_title = "Models"
        choices.border_subtitle = "✓ installed  ◐ partly downloaded"
        yield choices
        yield Static("", id="setup-details", markup=False)
        with Horizontal(classes="setup-row"):
            yield Label("Endpoint", classes="setup-label")
            yield Input(self._default_endpoint(), id="setup-endpoint", compact=True)
        with Horizontal(classes="setup-row", id="setup-source-row"):
            yield Label("", classes="setup-label", id="setup-source-label")
            yield Input(id="setup-source", compact=True)
        with Horizontal(classes="setup-row", id="setup-token-row"):
            yield Label("Token", classes="setup-label")
            yield Input(
                id="setup-token",
                compact=True,
                password=True,
                placeholder="hf_… (an access token with read access)",
            )
        yield SetupProgress(id="setup-progress")
        yield Static("", id="setup-message", markup=False)
        yield Static(
            "↑↓ choose · enter set up · tab next field · escape cancel / back",
            id="setup-hint",
        )

    def on_mount(self) -> None:
        self.query_one("#setup-source-row").display = False
        self.query_one("#setup-token-row").display = False
        self.query_one("#setup-message").display = False
        self.choices.highlighted = 0
        self.choices.focus()

    def on_unmount(self) -> None:
        # Quitting mid-download: stop the worker thread, or the exit would wait for it.
        if self._cancel is not None:
            self._cancel.set()

    @property
    def choices(self) -> OptionList:
        return self.query_one("#setup-choices", OptionList)

    def _default_endpoint(self) -> str:
        return resolve_endpoint(None, self.app.config.hub.endpoint)

    def _refresh_options(self) -> None:
        """Marks change after a job (installed, partly downloaded); keep the highlight."""
        highlighted = self.choices.highlighted
        self.choices.set_options(choice_options(self.app.paths))
        self.choices.highlighted = highlighted

    # ------------------------------------------------------------ details of the highlight

    @on(OptionList.OptionHighlighted, "#setup-choices")
    def _highlighted(self, event: OptionList.OptionHighlighted) -> None:
        details = choice_details(
            event.option.id or "", self.app.paths, self.app.config.model.low_bit
        )
        self.query_one("#setup-details", Static).update(details)

    # ------------------------------------------------------------ choosing

    @on(OptionList.OptionSelected, "#setup-choices")
    def _selected(self, event: OptionList.OptionSelected) -> None:
        self._choose(event.option.id or "")

    @on(Input.Submitted)
    def _submitted(self, event: Input.Submitted) -> None:
        """Enter in a field (endpoint, path, token) sets up the highlighted choice."""
        option = self.choices.highlighted_option
        if option is not None:
            self._choose(option.id or "", from_field=True)

    def _choose(self, option_id: str, from_field: bool = False) -> None:
        if self.running:
            keys = self.app.effective_key("setup.back")
            self.notify(f"Setting up already: wait, or press {keys} to cancel a download.")
            return
        if option_id in (IMPORT, OTHER):
            self._choose_source(option_id, submit=from_field)
        elif option_id == DEMO:
            self._start(SetupJob("demo"))
        elif option_id.startswith("repo:"):
            self._start(self._hub_job(option_id.removeprefix("repo:")))

    def _choose_source(self, kind: str, submit: bool) -> None:
        """Import and other repos need a path or a repo id: ask for it, then start."""
        source = self.query_one("#setup-source", Input)
        if kind != self._source_kind:
            self._source_kind = kind
            importing = kind == IMPORT
            self.query_one("#setup-source-label", Label).update("Path" if importing else "Repo id")
            source.placeholder = (
                "/path/to/model-folder or /path/to/model.gguf"
                if importing
                else "org/name, e.g. Qwen/Qwen2.5-0.5B-Instruct"
            )
            source.value = ""
            submit = False
        self.query_one("#setup-source-row").display = True
        text = source.value.strip()
        if not submit or not text:
            source.focus()
            return
        if kind == IMPORT:
            self._start_import(Path(text).expanduser())
        elif REPO_ID.fullmatch(text):
            self._start(self._hub_job(text))
        else:
            self._show_message(f"{text!r} is not a repo id: it looks like org/name.", "")
            source.focus()

    def _hub_job(self, repo_id: str) -> SetupJob:
        endpoint = self.query_one("#setup-endpoint", Input).value.strip()
        token = self.query_one("#setup-token", Input).value.strip()
        return hub_job(repo_id, self.app.config, endpoint, token)

    def _start_import(self, path: Path) -> None:
        if not path.exists():
            self._show_message(
                f"{path} does not exist.", "Type the path of a folder or a .gguf file."
            )
            return
        job = SetupJob("import", str(path))
        try:
            code = path.is_dir() and needs_remote_code(path, read_config(path))
        except QuantizeError as error:
            self._show_message(str(error), "")
            return
        if code:
            self._ask_remote_code(job, f"The model in {path}")
        else:
            self._start(job)

    # ------------------------------------------------------------ running

    def _start(self, job: SetupJob) -> None:
        self._job, self._stage = job, ""
        self._cancel = threading.Event()
        self._hide_message()
        self.query_one(SetupProgress).start(job.title)
        self._worker = self._run(job, self.app.paths, self.app.config, self._cancel)

    @work(thread=True, exclusive=True, group="setup", exit_on_error=False)
    def _run(
        self, job: SetupJob, paths: Paths, config: Config, cancel: threading.Event
    ) -> SetupOutcome:
        relay = ProgressRelay(self)
        return run_job(job, paths, config, relay.download, relay.stage, cancel)

    def on_download_progressed(self, message: DownloadProgressed) -> None:
        cancel = self._cancel
        if cancel is not None and not cancel.is_set():  # else "Cancelling…" stays shown
            self.query_one(SetupProgress).download(message.progress)

    def on_stage_changed(self, message: StageChanged) -> None:
        if not self.running:
            return
        self._stage = message.stage
        progress = self.query_one(SetupProgress)
        if message.stage == "downloading" and self._job is not None:
            progress.stage(self._job.title, None)
        elif message.stage == "quantizing":
            low_bit = self.app.config.model.low_bit
            progress.stage(f"Quantizing to {low_bit} (a minute or more for big models)", None)
        else:
            stage = message.stage
            progress.stage(stage[:1].upper() + stage[1:], message.fraction)

    def on_worker_state_changed(self, event: Worker.StateChanged) -> None:
        worker, job = event.worker, self._job
        if worker is not self._worker or job is None:
            return
        if event.state is WorkerState.SUCCESS:
            self._finished(worker.result)
        elif event.state is WorkerState.CANCELLED:
            # Textual cancels the screen's workers when it closes (the app quitting), but it
            # cannot stop a thread: the event does, or quitting would wait for the download.
            if self._cancel is not None:
                self._cancel.set()
        elif event.state is WorkerState.ERROR:  # run_job returns failures: this is a last resort
            self._finished(failed(job, worker.error or RuntimeError("setup failed")))

    def _finished(self, outcome: SetupOutcome) -> None:
        self._cancel, self._worker = None, None
        self.query_one(SetupProgress).hide()
        self._refresh_options()
        if outcome.model is not None:
            self.app.notify(f"{describe_model(outcome.model)} is ready.", title="Model set up")
            self.dismiss(outcome.model)
            return
        error = outcome.error or RuntimeError("no model")
        if isinstance(error, SetupError) and needs_consent(outcome.job, self.app.paths):
            self._ask_remote_code(outcome.job, outcome.job.target)
            return
        self._show_failure(error, outcome.job)

    def _show_failure(self, error: Exception, job: SetupJob) -> None:
        message, hint = failure_text(error, job)
        cancelled = isinstance(error, DownloadError) and error.kind == "cancelled"
        self._show_message(message, hint, stopped=cancelled)
        kind = error.kind if isinstance(error, DownloadError) else ""
        if kind == "unreachable":
            self.query_one("#setup-endpoint", Input).focus()
        elif kind == "unauthorized":
            self.query_one("#setup-token-row").display = True
            self.query_one("#setup-token", Input).focus()
        elif job.kind == "import":
            self.query_one("#setup-source", Input).focus()
        else:
            self.choices.focus()

    # ------------------------------------------------------------ remote code

    def _ask_remote_code(self, job: SetupJob, what: str) -> None:
        question = (
            f"{what} needs its own Python code to load (trust_remote_code). That code runs on "
            "this computer with your permissions, and nobody has checked it for qwen-tui. "
            "Run it only if you trust where it comes from."
        )

        def answer(trusted: bool | None) -> None:
            if trusted:
                self._start(replace(job, trust_remote_code=True))
            else:
                self._show_message(
                    f"Not set up: {job.target} needs to run its own code.",
                    "Choose another model, or choose this one again to be asked again.",
                    stopped=True,
                )

        dialog = ConfirmDialog("Run this model's own code?", question, "Trust and run")
        self.app.push_screen(dialog, answer)

    # ------------------------------------------------------------ messages, escape

    def _show_message(self, message: str, hint: str, stopped: bool = False) -> None:
        """A failure (or, `stopped`, the user's own cancel) and what to do next.

        The box's title says which in words, not only in colour (NO_COLOR).
        """
        box = self.query_one("#setup-message", Static)
        box.update(visible_text(f"{message}\n{hint}" if hint else message))
        box.border_title = "Stopped" if stopped else "Could not set up"
        box.set_class(stopped, "-notice")
        box.display = True

    def _hide_message(self) -> None:
        self.query_one("#setup-message").display = False

    def action_back(self) -> None:
        """Cancel a download; else leave a field for the list; else close the screen."""
        if self._cancel is not None:
            self._cancel_job(self._cancel)
        elif not self.choices.has_focus:
            self.choices.focus()
        else:
            self.dismiss(None)

    def _cancel_job(self, cancel: threading.Event) -> None:
        job = self._job
        downloading = job is not None and job.kind == "hub" and self._stage in ("", "downloading")
        if not downloading:
            self.notify(
                "This step cannot be interrupted; it ends on its own (see the elapsed time).",
                title="Setting up",
            )
            return
        cancel.set()
        self.query_one(SetupProgress).stage("Cancelling…", None)
