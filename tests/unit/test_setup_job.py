"""The setup screen's work without the screen: every failure comes back as an outcome."""

from __future__ import annotations

import logging
import threading
from pathlib import Path

import pytest

from qwen_tui.config import Config
from qwen_tui.model_setup.download_errors import DownloadError
from qwen_tui.model_setup.quantize import QuantizeError
from qwen_tui.model_setup.setup_job import SetupJob, hub_job, run_job
from qwen_tui.paths import Paths


def _run(job: SetupJob, paths: Paths, on_stage=lambda _s, _f: None):
    return run_job(job, paths, Config(), lambda _p: None, on_stage, threading.Event())


def test_an_expected_failure_is_an_outcome_in_words_and_not_logged(
    paths: Paths, tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    not_a_model = tmp_path / "empty"
    not_a_model.mkdir()
    outcome = _run(SetupJob("import", str(not_a_model)), paths)
    assert outcome.model is None and isinstance(outcome.error, QuantizeError)
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]


def test_a_surprise_is_an_outcome_too_and_its_traceback_goes_to_the_log(
    paths: Paths, caplog: pytest.LogCaptureFixture
) -> None:
    def broken_stage(stage: str, fraction: float | None) -> None:
        raise KeyError(stage)

    job = hub_job("Qwen/Qwen2.5-0.5B-Instruct", Config(), endpoint="http://127.0.0.1:9")
    outcome = _run(job, paths, broken_stage)
    assert isinstance(outcome.error, KeyError)
    (record,) = [r for r in caplog.records if r.levelno >= logging.ERROR]
    assert "Qwen/Qwen2.5-0.5B-Instruct" in record.getMessage() and record.exc_info


def test_a_hub_job_takes_the_typed_endpoint_over_the_config(paths: Paths) -> None:
    job = hub_job("org/name", Config(), endpoint="127.0.0.1:9/")
    assert job.endpoint == "https://127.0.0.1:9"
    outcome = _run(job, paths)  # nothing listens there: unreachable, in words
    assert isinstance(outcome.error, DownloadError) and outcome.error.kind == "unreachable"
