"""One home for the bounds of every number setting (conversation.SETTING_BOUNDS and
config_rules.threads_bound), checked alike by config.toml, the command line and the dialog."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from qwen_tui.config import ConfigError
from qwen_tui.config_file import load_config
from qwen_tui.config_rules import threads_bound
from qwen_tui.conversation import SEED_LIMIT, SETTING_BOUNDS, GenerationSettings

BAD = {
    "temperature": ["-1", "nan", "inf", "-inf", "1e308", "5.01", "hot", ""],
    "top_p": ["0", "-0.1", "1.5", "nan", ""],
    "top_k": ["-1", "2.5", "10000001", ""],
    "repetition_penalty": ["0", "-1", "5.5", "inf"],
    "max_new_tokens": ["0", "-5", "1e3", "1000001", ""],
    "seed": ["-1", str(SEED_LIMIT + 1), "1.5", "x"],
}
GOOD = {
    "temperature": ["0", "0.7", "5"],
    "top_p": ["0.01", "1"],
    "top_k": ["0", "20"],
    "repetition_penalty": ["0.5", "1.05", "5"],
    "max_new_tokens": ["1", "512", "1000000"],
    "seed": ["", "0", str(SEED_LIMIT)],
}


def test_every_setting_has_a_bound() -> None:
    assert set(SETTING_BOUNDS) == set(GenerationSettings().to_dict())
    assert set(BAD) == set(GOOD) == set(SETTING_BOUNDS)


@pytest.mark.parametrize(("name", "text"), [(n, t) for n, ts in BAD.items() for t in ts])
def test_bad_values_are_refused_with_what_is_expected(name: str, text: str) -> None:
    bound = SETTING_BOUNDS[name]
    with pytest.raises(ValueError, match=re.escape(f"expected {bound.words}")):
        bound.parse(text)


@pytest.mark.parametrize(("name", "text"), [(n, t) for n, ts in GOOD.items() for t in ts])
def test_good_values_are_taken(name: str, text: str) -> None:
    value = SETTING_BOUNDS[name].parse(text)
    assert value is None if text == "" else float(value) == float(text)


def test_huge_integers_are_out_of_range_not_an_overflow() -> None:
    assert not SETTING_BOUNDS["temperature"].allows(10**400)
    assert not SETTING_BOUNDS["seed"].allows(2**64)


def write_config(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(text)
    return path


def test_threads_up_to_twice_the_cpus() -> None:
    cpus = os.cpu_count() or 1
    bound = threads_bound()
    assert bound.allows(0) and bound.allows(2 * cpus) and not bound.allows(2 * cpus + 1)
    assert f"to {2 * cpus} (twice this machine's {cpus} CPUs)" in bound.words


def test_config_threads_beyond_the_bound(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r":2: \[model\]\.threads: expected an integer from 0"):
        load_config(write_config(tmp_path, "[model]\nthreads = 100000\n"))


def qwen_tui(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "qwen_tui", *args], capture_output=True, text=True, timeout=60
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["--temperature", "-1"], "argument --temperature: expected a number from 0 to 5"),
        (["--temperature", "nan"], "argument --temperature: expected a number from 0 to 5"),
        (["--temperature", "1e308"], "argument --temperature: expected a number from 0 to 5"),
        (["--max-tokens", "0"], "argument --max-tokens: expected an integer from 1 to"),
        (["--max-tokens", "-5"], "argument --max-tokens: expected an integer from 1 to"),
        (["--session", ""], "argument --session: invalid session id ''"),
        (["--session", "../x"], "argument --session: invalid session id '../x'"),
    ],
)
def test_cli_refuses_out_of_bound_values_before_doing_anything(
    paths, args: list[str], expected: str
) -> None:
    result = qwen_tui("ask", *args, "hi")
    assert result.returncode == 2 and expected in result.stderr, result.stderr
    assert not paths.sessions_dir.exists() or not list(paths.sessions_dir.iterdir())


def test_app_refuses_an_empty_session_id(paths) -> None:
    result = qwen_tui("--session", "")
    assert result.returncode == 2 and "invalid session id ''" in result.stderr
