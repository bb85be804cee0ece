"""Chat models known to work with the pinned stack (transformers 4.37.2 + bigdl-llm 2.5.0b20240627).

Qwen v1 (`Qwen/Qwen-*-Chat`) ships its model and tiktoken tokenizer as code in the repo; setup
never runs it: the weights are converted to the Qwen2 layout and the tokenizer rebuilt from
`qwen.tiktoken` (qwen_v1_convert.py), so the code files are not even fetched. Qwen1.5, Qwen2
and Qwen2.5 use `Qwen2ForCausalLM` + `Qwen2Tokenizer`, which transformers has had since 4.37.0.
Larger sizes are left out: this app targets CPUs with 8-16 GB of RAM.

Sizes are the bf16 weights as published; RAM figures are estimates (quantizing holds the fp32 or
bf16 weights for a moment; running holds the INT4 weights plus the KV cache and Python itself).
Any other repo id works too, through `entry_for`, marked untested.
"""

from __future__ import annotations

from dataclasses import dataclass

DEFAULT_REPO = "Qwen/Qwen-1_8B-Chat"

# Top-level names only where the hub allows it: allow-patterns are fnmatch patterns in which `*`
# also matches `/`, so `*.safetensors` would pull variants kept in sub-folders.
_COMMON_FILES = ("config.json", "generation_config.json", "tokenizer_config.json", "LICENSE*")
_SAFETENSORS_WEIGHTS = ("model*.safetensors", "model.safetensors.index.json")
_QWEN2_TOKENIZER = ("tokenizer.json", "vocab.json", "merges.txt")
_QWEN_V1_FILES = (*_COMMON_FILES, *_SAFETENSORS_WEIGHTS, "*.tiktoken", "NOTICE*")
_QWEN2_FILES = (*_COMMON_FILES, *_SAFETENSORS_WEIGHTS, *_QWEN2_TOKENIZER)

UNTESTED_NOTE = "Not in the catalog: untested with this app; it may fail to quantize or to chat."


@dataclass(frozen=True)
class CatalogEntry:
    repo_id: str
    display_name: str
    params: str
    """Parameter count as people say it: "1.8B"."""
    download_mb: int
    """Approximate size of the files fetched (allow_patterns), in MB."""
    quantize_ram_gb: float
    """RAM needed while quantizing to INT4 (the full-precision weights pass through memory)."""
    run_ram_gb: float
    """RAM needed to chat with the INT4 model."""
    license: str
    trust_remote_code: bool
    """The repo's own Python code builds the model and tokenizer (never for catalog entries)."""
    allow_patterns: tuple[str, ...]
    """Files to fetch (fnmatch patterns): never the whole repo, which may hold other formats."""
    revision: str | None
    """Pinned commit for remote-code repos, so the code we run is the code we reviewed."""
    notes: str = ""
    tested: bool = True
    """False for repos outside the catalog."""
    qwen_v1: bool = False
    """Qwen v1 (QWenLMHeadModel): converted to the Qwen2 layout before quantizing."""


def _qwen2(repo_id: str, name: str, params: str, mb: int, q_ram: float, run_ram: float,
           license: str, notes: str = "") -> CatalogEntry:  # fmt: skip
    return CatalogEntry(
        repo_id, name, params, mb, q_ram, run_ram, license, False, _QWEN2_FILES, None, notes
    )


CATALOG: tuple[CatalogEntry, ...] = (
    CatalogEntry(
        repo_id=DEFAULT_REPO,
        display_name="Qwen 1.8B Chat (Qwen v1)",
        params="1.8B",
        download_mb=3680,
        quantize_ram_gb=8.0,
        run_ram_gb=2.5,
        license="Tongyi Qianwen Research License",
        trust_remote_code=False,
        allow_patterns=_QWEN_V1_FILES,
        revision=None,
        notes="Qwen v1, converted at setup (none of its code runs); context 6144 tokens.",
        qwen_v1=True,
    ),
    _qwen2("Qwen/Qwen2.5-0.5B-Instruct", "Qwen2.5 0.5B Instruct", "0.5B", 1000, 3.0, 1.2,
           "Apache-2.0", "Smallest and fastest; good for slow machines."),
    _qwen2("Qwen/Qwen2.5-1.5B-Instruct", "Qwen2.5 1.5B Instruct", "1.5B", 3100, 7.0, 2.2,
           "Apache-2.0", "Newest small Qwen; best answers of the small models."),
    _qwen2("Qwen/Qwen2-0.5B-Instruct", "Qwen2 0.5B Instruct", "0.5B", 1000, 3.0, 1.2,
           "Apache-2.0"),
    _qwen2("Qwen/Qwen2-1.5B-Instruct", "Qwen2 1.5B Instruct", "1.5B", 3100, 7.0, 2.2,
           "Apache-2.0"),
    _qwen2("Qwen/Qwen1.5-0.5B-Chat", "Qwen1.5 0.5B Chat", "0.5B", 1250, 3.0, 1.3,
           "Tongyi Qianwen Research License"),
    _qwen2("Qwen/Qwen1.5-1.8B-Chat", "Qwen1.5 1.8B Chat", "1.8B", 3690, 8.0, 2.5,
           "Tongyi Qianwen Research License"),
)  # fmt: skip


def find_entry(repo_id: str) -> CatalogEntry | None:
    """The catalog entry for `repo_id` (case-insensitive, as the hub treats repo ids)."""
    wanted = repo_id.strip().strip("/").lower()
    return next((e for e in CATALOG if e.repo_id.lower() == wanted), None)


def untested_allow_patterns(allow_remote_code: bool = False) -> tuple[str, ...]:
    """What to fetch from a repo we know nothing about: config, tokenizer, weights (+ code)."""
    patterns = (
        "*.json",
        "model*.safetensors",
        "pytorch_model*.bin",  # dropped by the download when safetensors weights are present
        "tokenizer*",
        "*.tiktoken",
        "*.model",
        "merges.txt",
        "vocab.txt",
        "LICENSE*",
    )
    return (*patterns, "*.py") if allow_remote_code else patterns


def entry_for(repo_id: str, *, allow_remote_code: bool = False) -> CatalogEntry:
    """The catalog entry, or a generic untested one so any repo id can still be tried."""
    known = find_entry(repo_id)
    if known is not None:
        return known
    repo_id = repo_id.strip().strip("/")
    return CatalogEntry(
        repo_id=repo_id,
        display_name=repo_id.rsplit("/", 1)[-1],
        params="?",
        download_mb=0,
        quantize_ram_gb=0.0,
        run_ram_gb=0.0,
        license="unknown (see the model page)",
        trust_remote_code=allow_remote_code,
        allow_patterns=untested_allow_patterns(allow_remote_code),
        revision=None,
        notes=UNTESTED_NOTE,
        tested=False,
    )
