"""load_config against real files: defaults, the example file, and every kind of mistake."""

from __future__ import annotations

import re
from dataclasses import fields
from pathlib import Path

import pytest

from qwen_tui.actions import DEFAULT_KEYS
from qwen_tui.config import (
    Config,
    ConfigError,
    HubConfig,
    ModelConfig,
    RemoteConfig,
    UIConfig,
)
from qwen_tui.config_file import load_config
from qwen_tui.conversation import DEFAULT_SYSTEM_PROMPT, GenerationSettings

EXAMPLE = Path(__file__).resolve().parents[2] / "config.example.toml"
SECTIONS = {
    "model": ModelConfig,
    "generation": GenerationSettings,
    "hub": HubConfig,
    "ui": UIConfig,
}
TABLE_ARRAYS = {"remotes": RemoteConfig}


def write(tmp_path: Path, text: str | bytes, mode: int = 0o600) -> Path:
    path = tmp_path / "config.toml"
    if isinstance(text, str):
        text = text.encode()
    path.write_bytes(text)
    path.chmod(mode)
    return path


def config_error(tmp_path: Path, text: str | bytes) -> str:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, text))
    message = str(caught.value)
    assert "\n" not in message
    assert message.startswith(str(tmp_path / "config.toml"))
    return message


# ---------------------------------------------------------------- defaults and the example


def test_missing_file_gives_defaults(tmp_path: Path) -> None:
    config = load_config(tmp_path / "config.toml")
    assert config == Config()
    assert config.path is None and config.warnings == ()
    assert config.system_prompt == DEFAULT_SYSTEM_PROMPT
    assert config.generation == GenerationSettings()
    assert config.keys == {}


def test_empty_file_gives_defaults(tmp_path: Path) -> None:
    path = write(tmp_path, "# nothing yet\n")
    config = load_config(path)
    assert config == Config() and config.path == path


def test_example_file_loads_and_equals_the_defaults() -> None:
    config = load_config(EXAMPLE)
    assert config == Config()
    assert config.model == ModelConfig() and config.hub == HubConfig() and config.ui == UIConfig()
    assert config.generation == GenerationSettings()
    assert config.warnings == ()


def example_keys_by_section() -> dict[str, set[str]]:
    """Keys written in the example, commented out or not, under their section header
    ([[remotes]] is commented out as a whole: the example must load to the defaults)."""
    found: dict[str, set[str]] = {}
    section = ""
    for line in EXAMPLE.read_text().splitlines():
        header = re.match(r"\s*\[(\w+)\]|\s*#?\s*\[\[(\w+)\]\]", line)
        if header:
            section = header.group(1) or header.group(2)
            continue
        key = re.match(r'\s*#?\s*"?([\w.]+)"?\s*=', line)
        if key:
            found.setdefault(section, set()).add(key.group(1))
    return found


def test_example_file_documents_every_field() -> None:
    documented = example_keys_by_section()
    assert set(documented) == {*SECTIONS, *TABLE_ARRAYS, "keys"}
    for section, cls in (SECTIONS | TABLE_ARRAYS).items():
        names = {f.name for f in fields(cls)}
        assert names <= documented[section], f"[{section}] lacks {names - documented[section]}"
    assert "system_prompt" in documented["generation"]
    assert documented["keys"] == set(DEFAULT_KEYS)


def test_example_key_bindings_are_the_defaults(tmp_path: Path) -> None:
    # Uncommenting the [keys] examples must give exactly the default bindings.
    text = EXAMPLE.read_text()
    head, keys = text.split("[keys]")
    keys = re.sub(r'^# ("[\w.]+" = )', r"\1", keys, flags=re.M)
    config = load_config(write(tmp_path, head + "[keys]" + keys))
    assert config.keys == DEFAULT_KEYS


def test_example_remote_uncommented_gives_the_remote_defaults(tmp_path: Path) -> None:
    text = EXAMPLE.read_text()
    head, remote = text.split("# [[remotes]]")
    remote = re.sub(r"^# (\w+ = )", r"\1", remote, flags=re.M)
    config = load_config(write(tmp_path, head + "[[remotes]]" + remote))
    assert config.remotes == (
        RemoteConfig("lab", "http://127.0.0.1:8080/v1", "qwen2.5-7b-instruct"),
    )


def test_every_field_has_a_docstring() -> None:
    source = Path(__file__).resolve().parents[2].joinpath("qwen_tui", "config.py").read_text()
    for cls in (ModelConfig, HubConfig, UIConfig, RemoteConfig, Config):
        for f in fields(cls):
            assert re.search(rf"\n    {f.name}: .*\n    \"\"\"", source), f"{cls.__name__}.{f.name}"


def test_all_values_read(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[model]
default = "qwen1.5-0.5b-chat"
threads = 4
low_bit = "nf4"

[generation]
system_prompt = '''You are terse.
Answer in one line.'''
temperature = 0      # an int is fine for a float
top_p = 1
top_k = 0
repetition_penalty = 1.1
max_new_tokens = 1
seed = 3

[hub]
endpoint = "http://127.0.0.1:8080/"
hf_transfer = true

[ui]
theme = "nord"
show_stats = false
sidebar = false

[keys]
"session.new" = "ctrl+t,f3"
"app.quit" = "ctrl+c"
""",
    )
    config = load_config(path)
    assert config.model == ModelConfig("qwen1.5-0.5b-chat", 4, "nf4")
    assert config.system_prompt == "You are terse.\nAnswer in one line."
    assert config.generation == GenerationSettings(0.0, 1.0, 0, 1.1, 1, 3)
    assert isinstance(config.generation.temperature, float)
    assert isinstance(config.generation.top_p, float)
    assert config.hub == HubConfig("http://127.0.0.1:8080/", "", True)
    assert config.ui == UIConfig("nord", False, False)
    assert config.keys == {"session.new": "ctrl+t,f3", "app.quit": "ctrl+c"}
    assert config.path == path


def test_dotted_keys_and_inline_tables(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, 'model.threads = 2\nui = { theme = "nord" }\n'))
    assert config.model.threads == 2 and config.ui.theme == "nord"


def test_byte_order_mark_is_tolerated(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, "\ufeff[model]\nthreads = 3\n".encode()))
    assert config.model.threads == 3


def test_remotes_read_in_order(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[model]
threads = 2

[[remotes]]
name = "lab"
base_url = "https://gpu.example.org/v1"
model = "Qwen/Qwen2.5-7B-Instruct"
api_key_env = "LAB_KEY"
context_length = 32768
connect_timeout = 3
read_timeout = 600
extended_sampling = false

[[remotes]]
name = "ollama"
base_url = "http://127.0.0.1:11434/v1"
model = "qwen2.5:0.5b"
""",
    )
    config = load_config(path)
    assert config.remotes == (
        RemoteConfig(
            "lab",
            "https://gpu.example.org/v1",
            "Qwen/Qwen2.5-7B-Instruct",
            "LAB_KEY",
            32768,
            3.0,
            600.0,
            False,
        ),
        RemoteConfig("ollama", "http://127.0.0.1:11434/v1", "qwen2.5:0.5b"),
    )
    assert isinstance(config.remotes[0].connect_timeout, float)
    assert config.model.threads == 2


def test_default_model_may_be_a_remote(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, '[model]\ndefault = "remote:lab"\n' + REMOTE))
    assert config.model.default == "remote:lab"
    assert config.remotes[0].model_name == "remote:lab"


def test_remotes_as_inline_array(tmp_path: Path) -> None:
    text = 'remotes = [{ name = "a", base_url = "http://127.0.0.1:1/v1", model = "m" }]\n'
    assert load_config(write(tmp_path, text)).remotes == (
        RemoteConfig("a", "http://127.0.0.1:1/v1", "m"),
    )


REMOTE = '[[remotes]]\nname = "lab"\nbase_url = "http://127.0.0.1:8080/v1"\nmodel = "m"\n'


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        (
            '[[remotes]]\nname = "lab"\nmodel = "m"',
            ":1: [[remotes]] #1: missing base_url (required)",
        ),
        ("[[remotes]]\n", "[[remotes]] #1: missing name, base_url, model (required)"),
        (
            REMOTE + REMOTE.replace("lab", "gpu") + "\n[[remotes]]\nbase_url = 5",
            ":11: [[remotes]] #3.base_url: expected a string, got 5",
        ),
        (REMOTE + REMOTE, ':6: [[remotes]] #2.name: "lab" already names [[remotes]] #1'),
        (
            REMOTE + 'api_key = "sk-abc"',
            ":5: [[remotes]] #1.api_key: qwen-tui does not read API keys from files: put the key "
            "in an environment variable and name that variable in api_key_env",
        ),
        (
            REMOTE + 'api_key_env = "sk-abc123"',
            ":5: [[remotes]] #1.api_key_env: expected the NAME of an environment variable",
        ),
        (REMOTE + 'api_key_env = "sk-abc123"', "not the key itself"),
        (
            REMOTE.replace("http://127.0.0.1:8080/v1", "127.0.0.1:8080"),
            ':3: [[remotes]] #1.base_url: expected an http:// or https:// URL, got "127.0.0.1:80',
        ),
        (REMOTE.replace('"lab"', '"my lab"'), ":2: [[remotes]] #1.name: expected a short name"),
        (REMOTE.replace('"lab"', '"remote:lab"'), "[[remotes]] #1.name: expected a short name"),
        (REMOTE.replace('"m"', '" "'), ":4: [[remotes]] #1.model: expected the model id"),
        (REMOTE + "context_length = 0", ":5: [[remotes]] #1.context_length: expected an integer"),
        (REMOTE + "read_timeout = 0", ":5: [[remotes]] #1.read_timeout: expected a number of s"),
        (REMOTE + "connect_timeout = -1", "[[remotes]] #1.connect_timeout: expected a number"),
        (REMOTE + "extended_sampling = 1", "[[remotes]] #1.extended_sampling: expected true or"),
        (REMOTE + "base_ur = 1", ":5: [[remotes]] #1.base_ur: unknown key, did you mean base_url?"),
        ('[remotes]\nname = "x"', ":1: [remotes]: expected [[remotes]] entries (an array of tab"),
        ("remotes = 3", ":1: [remotes]: expected [[remotes]] entries (an array of tables), got 3"),
        ('base_url = "x"', ":1: base_url: unknown top-level key, put it under [[remotes]]"),
        (
            '[model]\ndefault = "remote:gpu"\n' + REMOTE,
            ':2: [model].default: no [[remotes]] entry is named "gpu"; known: remote:lab',
        ),
        (
            '[model]\ndefault = "remote:gpu"',
            '[model].default: no [[remotes]] entry is named "gpu"; add',
        ),
    ],
)
def test_remote_mistakes(tmp_path: Path, text: str, expected: str) -> None:
    message = config_error(tmp_path, text)
    assert expected in message, message


# ---------------------------------------------------------------- mistakes


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        # wrong types
        ('[model]\nthreads = "4"', ':2: [model].threads: expected an integer, got "4"'),
        ("\n[model]\nthreads = true", ":3: [model].threads: expected an integer, got true"),
        ("[generation]\ntop_k = 2.5", ":2: [generation].top_k: expected an integer, got 2.5"),
        ("[generation]\nseed = 1.5", ":2: [generation].seed: expected an integer, got 1.5"),
        ("[generation]\ntemperature = false", "[generation].temperature: expected a number"),
        ("[generation]\ntemperature = nan", "[generation].temperature: expected a number"),
        ("[generation]\nsystem_prompt = 5", ":2: [generation].system_prompt: expected a string"),
        ("[ui]\nsidebar = 1", ":2: [ui].sidebar: expected true or false, got 1"),
        ("[ui]\ntheme = [1, 2]", ":2: [ui].theme: expected a string, got [1, 2]"),
        ("[hub]\nhf_transfer = 'yes'", ':2: [hub].hf_transfer: expected true or false, got "yes"'),
        ("[hub]\ntoken = { a = 1 }", ":2: [hub].token: expected a string, got a table"),
        ('model = "qwen"', ':1: [model]: expected a table [model], got "qwen"'),
        # values out of range
        (
            "[generation]\ntemperature = -0.1",
            ":2: [generation].temperature: expected a number from 0 to 5 (0 = greedy), got -0.1",
        ),
        (
            "[generation]\ntop_p = 0",
            ":2: [generation].top_p: expected a number above 0, at most 1, got 0",
        ),
        (
            "[generation]\ntop_p = 1.5",
            "[generation].top_p: expected a number above 0, at most 1, got 1.5",
        ),
        (
            "[generation]\ntop_k = -1",
            ":2: [generation].top_k: expected an integer from 0 to 1000000 (0 = no limit), got -1",
        ),
        (
            "[generation]\nmax_new_tokens = 0",
            "[generation].max_new_tokens: expected an integer from 1 to 1000000, got 0",
        ),
        (
            "[generation]\nrepetition_penalty = 0",
            "[generation].repetition_penalty: expected a number above 0, at most 5, got 0",
        ),
        (
            "[model]\nthreads = -2",
            ":2: [model].threads: expected an integer from 0 (one per physical core) to",
        ),
        ("[model]\nthreads = 100000", ":2: [model].threads: expected an integer from 0 (one per"),
        ("[generation]\ntemperature = 1e308", "[generation].temperature: expected a number from 0"),
        ("[generation]\ntemperature = inf", "[generation].temperature: expected a number"),
        ("[generation]\nmax_new_tokens = -5", "[generation].max_new_tokens: expected an integer"),
        ("[generation]\ntop_k = 10000000", "[generation].top_k: expected an integer from 0"),
        ("[generation]\nseed = -1", ":2: [generation].seed: expected an integer from 0 to 1844"),
        (
            "[generation]\nseed = 18446744073709551616",
            "[generation].seed: expected an integer from 0 to 18446744073709551615, or none",
        ),
        (
            '[model]\nlow_bit = "int3"',
            ':2: [model].low_bit: expected one of sym_int4, asym_int4, sym_int8, nf4, got "int3"',
        ),
        (
            '[hub]\nendpoint = "ftp://x.org"',
            ":2: [hub].endpoint: expected an http:// or https:// URL",
        ),
        (
            '[hub]\nendpoint = "huggingface.co"',
            "[hub].endpoint: expected an http:// or https:// URL",
        ),
        # unknown names
        ("[model]\nthread = 2", ":2: [model].thread: unknown key, did you mean threads?"),
        (
            "[ui]\n\ncolour = 'x'",
            ":3: [ui].colour: unknown key, known keys: theme, show_stats, sidebar, cursor_blink",
        ),
        ("[modle]\nthreads = 2", ":1: [modle]: unknown section, did you mean [model]?"),
        (
            "[zzz]",
            ":1: [zzz]: unknown section, known sections: model, generation, hub, ui, keys, remotes",
        ),
        ("temperature = 0.5", ":1: temperature: unknown top-level key, put it under [generation]"),
        ("[model.extra]\na = 1", ":1: [model].extra: unknown key"),
        (
            '[keys]\n"session.nwe" = "ctrl+n"',
            ':2: [keys]."session.nwe": unknown binding id, did you mean "session.new"?',
        ),
        ('[keys]\n"session.new" = 5', ':2: [keys]."session.new": expected a key such as "ctrl+n"'),
        ('[keys]\n"session.new" = ""', ':2: [keys]."session.new": expected a key'),
        ('[keys]\n"session.new" = "ctrl+n,"', ':2: [keys]."session.new": expected a key'),
        # two actions on one key, and list commands on keys that type text
        (
            '[keys]\n"session.new" = "f2"',
            ':2: [keys]."session.new": "f2" is also bound to "sidebar.rename": one key, one action',
        ),
        (
            '[keys]\n"app.help" = "f3"\n"session.export" = "ctrl+n,f3"',
            ':3: [keys]."session.export": "ctrl+n" is also bound to "session.new"',
        ),
        ('[keys]\n"sidebar.delete" = "d"', ':2: [keys]."sidebar.delete": "d" types text'),
        # the setup screen's back key shares a screen with the app's keys only
        (
            '[keys]\n"setup.back" = "f1"',
            ':2: [keys]."setup.back": "f1" is also bound to "app.help"',
        ),
        # the line of the key in its own section, not a same-named one earlier
        (
            '[generation]\nsystem_prompt = """\nendpoint = 1\n"""\n[hub]\nendpoint = "ftp://x"',
            ":6: [hub].endpoint",
        ),
        (
            '# model.threads = 1\nmodel.threads = "2"\n[ui]\ntheme = "x"',
            ':2: [model].threads: expected an integer, got "2"',
        ),
        # TOML syntax
        ("[model]\nthreads = \n[ui]", ":2: TOML syntax error: Invalid value (column 11)"),
        ("[model]\nthreads = ", ":2: TOML syntax error: Invalid value (at end of document)"),
        ('[model]\ndefault = "unclosed\n', ":2: TOML syntax error"),
        ("[model]\n[model]", ":2: TOML syntax error"),
    ],
)
def test_mistakes_give_one_line_with_file_line_and_key(
    tmp_path: Path, text: str, expected: str
) -> None:
    message = config_error(tmp_path, text)
    assert expected in message, message


def test_non_utf8_bytes(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[ui]\n\ntheme = "caf\xe9"\n'.encode("latin-1"))
    assert (
        message
        == f"{tmp_path / 'config.toml'}:3: not UTF-8 text (byte 0xe9); save the file as UTF-8"
    )


def test_directory_instead_of_file(tmp_path: Path) -> None:
    folder = tmp_path / "config.toml"
    folder.mkdir()
    with pytest.raises(ConfigError, match=r"config\.toml: is a folder, expected a TOML file"):
        load_config(folder)


def test_control_characters_in_values_stay_on_one_line(tmp_path: Path) -> None:
    message = config_error(tmp_path, '[ui]\ntheme = 5\n[model]\nlow_bit = "a\\nb\\u001b[31m"')
    assert "[ui].theme" in message  # the first mistake is reported
    message = config_error(tmp_path, '[model]\nlow_bit = "a\\nb\\u001b[31m"')
    assert '"a\\nb\\u001b[31m"' in message and "\x1b" not in message


def test_config_error_records_file_and_line(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as caught:
        load_config(write(tmp_path, "[model]\n\nthreads = -1"))
    assert caught.value.path == tmp_path / "config.toml" and caught.value.line == 3


# ---------------------------------------------------------------- warnings


@pytest.mark.parametrize(
    ("mode", "token", "warned"),
    [(0o644, "hf_x", True), (0o640, "hf_x", True), (0o600, "hf_x", False), (0o644, "", False)],
)
def test_warns_when_others_can_read_a_token(
    tmp_path: Path, mode: int, token: str, warned: bool
) -> None:
    path = write(tmp_path, f'[hub]\ntoken = "{token}"\n', mode)
    config = load_config(path)
    assert config.hub.token == token
    assert bool(config.warnings) == warned
    if warned:
        assert str(path) in config.warnings[0] and "chmod 600" in config.warnings[0]
        assert "hf_x" not in config.warnings[0]  # never echo the secret


def test_the_setup_screens_back_key_can_be_rebound(tmp_path: Path) -> None:
    """`setup.back` is a binding id of the app, so [keys] takes it (it once rejected it);
    the chat's keys are not active on the setup screen, so it may share one with them."""
    config = load_config(write(tmp_path, '[keys]\n"setup.back" = "ctrl+n"'))
    assert config.keys == {"setup.back": "ctrl+n"}
