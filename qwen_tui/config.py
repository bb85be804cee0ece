"""User settings: what config.toml can hold, as frozen dataclasses with their defaults.

The file is the user's: qwen-tui reads it and never rewrites it. A missing file means all
defaults. Reading and checking it is config_file.py (with config_rules.py for what a good
value is and config_lines.py for where in the file a mistake is); this module is only the
shape, so that everything that takes a Config imports no TOML code.
`config.example.toml` documents every key; a test keeps it equal to the defaults here.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from qwen_tui.conversation import DEFAULT_SYSTEM_PROMPT, GenerationSettings

REMOTE_PREFIX = "remote:"
"""Model names starting with this open a [[remotes]] entry: `--model remote:lab`."""


class ConfigError(Exception):
    """config.toml cannot be used; str() is one line naming the file, line and key."""

    def __init__(self, message: str, path: Path, line: int | None = None) -> None:
        where = f"{path}:{line}" if line else str(path)
        super().__init__(f"{where}: {message}")
        self.path = path
        self.line = line


@dataclass(frozen=True)
class ModelConfig:
    default: str = ""
    """Installed model name, repo id or `remote:NAME` to open; "" = the only/first installed
    model (demo)."""
    threads: int = 0
    """CPU threads for generation; 0 = number of physical cores."""
    low_bit: str = "sym_int4"
    """Format for newly quantized models: sym_int4, asym_int4, sym_int8 or nf4."""


@dataclass(frozen=True)
class HubConfig:
    endpoint: str = ""
    """Model hub URL; "" = the HF_ENDPOINT env var, else https://huggingface.co."""
    token: str = ""
    """Hub access token for gated repos; prefer the HF_TOKEN env var over storing it here."""
    hf_transfer: bool = False
    """Download large files with hf_transfer (faster on fast links)."""


@dataclass(frozen=True)
class UIConfig:
    theme: str = "textual-dark"
    """Textual theme name."""
    show_stats: bool = True
    """Show tokens, TTFT and tok/s under each reply."""
    sidebar: bool = True
    """Show the sessions sidebar at start."""
    cursor_blink: bool = False
    """Blink the prompt's cursor: every blink redraws it (traffic over SSH, CPU taken from
    the model on small machines)."""


@dataclass(frozen=True)
class RemoteConfig:
    """One `[[remotes]]` entry: a model served by an OpenAI-compatible server."""

    name: str
    """Short name used as `--model remote:NAME`: letters, digits, '.', '_' and '-'."""
    base_url: str
    """The server's OpenAI API root, e.g. http://127.0.0.1:8080/v1 (llama.cpp, vLLM, Ollama)."""
    model: str
    """Model id the server knows, as its /v1/models lists it."""
    api_key_env: str = ""
    """Name of the environment variable holding the API key; "" = the server needs none."""
    context_length: int = 8192
    """Tokens the served model attends to (prompt plus reply); older turns are left out beyond."""
    connect_timeout: float = 10.0
    """Seconds to wait for the server to accept the connection."""
    read_timeout: float = 120.0
    """Seconds to wait for the next bytes of an answer (long prompts, a model still loading)."""
    extended_sampling: bool = True
    """Also send top_k and repetition_penalty, which llama.cpp, vLLM and Ollama understand;
    false for servers that reject fields outside OpenAI's API (such as api.openai.com)."""

    @property
    def model_name(self) -> str:
        """How `--model`, the model switcher and sessions name it: `remote:NAME`."""
        return REMOTE_PREFIX + self.name


@dataclass(frozen=True)
class Config:
    model: ModelConfig = field(default_factory=ModelConfig)
    """[model]: which model to open and how to run it."""
    generation: GenerationSettings = field(default_factory=GenerationSettings)
    """[generation]: sampling defaults for new sessions."""
    system_prompt: str = DEFAULT_SYSTEM_PROMPT
    """[generation].system_prompt: system prompt of new sessions."""
    hub: HubConfig = field(default_factory=HubConfig)
    """[hub]: where models are downloaded from."""
    ui: UIConfig = field(default_factory=UIConfig)
    """[ui]: looks."""
    keys: dict[str, str] = field(default_factory=dict)
    """[keys]: binding id -> key(s), only the ones the user rebinds (App.set_keymap format)."""
    remotes: tuple[RemoteConfig, ...] = ()
    """[[remotes]]: models on OpenAI-compatible servers, opened as `--model remote:NAME`."""
    path: Path | None = field(default=None, compare=False)
    """The file read; None when there was none (all defaults)."""
    warnings: tuple[str, ...] = field(default=(), compare=False)
    """Problems worth telling the user that do not stop the app (e.g. a readable token)."""
