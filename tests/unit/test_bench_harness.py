"""The benchmark harness (benchmarks/, `make bench`) on the tiny models: every metric is measured
and lands under the JSON keys scripts rely on. Shapes and keys only; timings are never asserted."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from benchmarks import harness, report, workers
from qwen_tui.engine import measure
from qwen_tui.model_setup.installed import InstalledModel

TINY_SPEC: dict[str, Any] = {
    "threads": 1,
    "decode_tokens": 6,
    "prompt_lengths": [64, 96],  # the tiny vocabulary needs 40 for the system prompt
    "turns": 3,
    "turn_tokens": 20,
    "repeat": 0,
}


def test_engine_worker_measures_every_metric(tiny_quantized) -> None:
    model = tiny_quantized("qwen2")
    result = workers.engine_worker(TINY_SPEC | {"model_dir": str(model.path)})
    assert result["errors"] == {}
    assert result["decode_tok_s"] > 0 and result["load_s"] > 0 and result["peak_rss_mb"] > 0
    assert result["kernel"]
    for key in ("prefill_tok_s", "ttft_s", "prompt_tokens"):
        assert set(result[key]) == {"64", "96"}
    # Prompts are as long as asked (never longer): TTFT compares like with like.
    assert all(n - 3 <= result["prompt_tokens"][str(n)] <= n for n in (64, 96))
    assert result["ttft_turn1_s"] > 0 and result["ttft_turn3_s"] > 0
    turns = result["turns"]
    assert len(turns["ttft_s"]) == len(turns["prompt_tokens"]) == 3
    # A real conversation: each turn's prompt holds the previous ones.
    assert turns["prompt_tokens"] == sorted(turns["prompt_tokens"])
    assert turns["prompt_tokens"][2] > turns["prompt_tokens"][0] + 20


def test_decode_runs_to_the_asked_length_through_the_engine(tiny_engine) -> None:
    engine = tiny_engine("qwen2")
    original = engine.format
    assert measure.engine_decode(engine, 7, seed=1)["decode_tok_s"] > 0
    assert engine.format is original  # the no-stop format is only borrowed
    messages = measure.chat_of_length(engine, 40, 3, "system text")
    with measure.eos_ignored(engine):
        assert engine.format.stop_token_ids == []
        assert engine.format.encode(messages) == original.encode(messages)


@pytest.mark.slow
def test_ui_worker_compares_the_app_with_the_engine_alone(tiny_quantized) -> None:
    model = tiny_quantized("qwen2")
    spec = TINY_SPEC | {"model_dir": str(model.path), "repeats": 2}
    result = workers.ui_worker(spec)
    assert len(result["ui_decode_tok_s"]) == len(result["engine_decode_tok_s"]) == 2
    summary = report.ui_summary(result)
    assert summary["ui_decode_tok_s"] > 0 and summary["engine_decode_tok_s"] > 0
    assert isinstance(summary["ui_overhead_pct"], float)


def fake_runs(decode: float, lengths: tuple[str, ...] = ("32", "512")) -> list[dict[str, Any]]:
    """Three repeats as workers report them (the numbers are made up; the shapes are not)."""
    return [
        {
            "decode_tok_s": decode + i,
            "prefill_tok_s": {n: 100.0 + i for n in lengths},
            "ttft_s": {n: 0.5 + i for n in lengths},
            "ttft_turn1_s": 0.2,
            "ttft_turn10_s": 0.25,
            "peak_rss_mb": 1500.0,
            "load_s": 2.0,
            "errors": {},
        }
        for i in range(3)
    ]


def test_summaries_have_the_documented_keys_ratios_and_targets() -> None:
    keys = (*report.ENGINE_KEYS, "ttft_turn10_s")
    result = report.summarize(fake_runs(30.0), keys)
    result["llamacpp"] = report.summarize(fake_runs(40.0), report.BASELINE_KEYS)
    result |= report.ui_summary({"ui_decode_tok_s": [29.0], "engine_decode_tok_s": [30.0]})
    result["vs_llamacpp"] = report.comparisons(result)
    result["targets"] = report.target_checks(result)

    assert result["decode_tok_s"] == 31.0  # median of 30, 31, 32
    assert result["prefill_tok_s"] == {"32": 101.0, "512": 101.0}
    assert result["spread"]["decode_tok_s"] == {"min": 30.0, "max": 32.0, "n": 3}
    assert result["llamacpp"]["decode_tok_s"] == 41.0
    assert result["vs_llamacpp"]["decode_tok_s"] == pytest.approx(31 / 41)
    assert result["vs_llamacpp"]["prefill_tok_s.512"] == pytest.approx(1.0)
    assert result["targets"]["decode_tok_s"]["ok"] is True
    assert result["targets"]["decode_vs_llamacpp"]["ok"] is True  # 0.756 >= 0.75
    assert result["targets"]["ttft_turn10_over_turn1"]["value"] == pytest.approx(1.25)
    assert result["targets"]["ui_overhead_pct"]["value"] == pytest.approx(100 / 30)
    bench_report = {
        "model": "m",
        "models": {"m": result},
        "plan": {"prompt_lengths": [32, 512], "turns": 10, "repeats": 3, "quick": False},
        "machine": {
            "cpu": "cpu",
            "vendor": "v",
            "physical_cores": 2,
            "ram_gb": 8,
            "flags": ["avx2"],
            "load_average": [0.1, 0, 0],
        },
        "command": "bench",
        "wall_s": 1.0,
        "targets": result["targets"],
    }
    table = report.format_report(bench_report)
    assert "| decode tok/s | 31.0 ±3% | 41.0 ±2% | 0.76 |" in table
    assert "TTFT turn 10 s" in table and "UI overhead %" in table
    json.dumps(bench_report)  # everything in it is plain JSON


def test_update_docs_replaces_only_the_latest_run_section(tmp_path: Path) -> None:
    docs = tmp_path / "BENCHMARKS.md"
    docs.write_text(f"# Intro\n\n{report.DOCS_START}\nold table\n{report.DOCS_END}\n\nNotes.\n")
    result = report.summarize(fake_runs(30.0), (*report.ENGINE_KEYS, "ttft_turn10_s"))
    bench_report = {
        "model": "m",
        "models": {"m": result},
        "plan": {"prompt_lengths": [32, 512], "turns": 10, "repeats": 3, "quick": False},
        "machine": {
            "cpu": "cpu",
            "vendor": "v",
            "physical_cores": 2,
            "ram_gb": 8,
            "flags": [],
            "load_average": [0.1, 0, 0],
        },
        "command": "make bench",
        "wall_s": 1.0,
        "date": "today",
        "targets": report.target_checks(result),
    }
    report.update_docs(bench_report, docs)
    text = docs.read_text()
    assert text.startswith("# Intro") and text.endswith("Notes.\n")
    assert "old table" not in text and "| decode tok/s | 31.0" in text


@pytest.mark.slow
def test_bench_json_on_an_installed_model(
    tiny_quantized: Callable[[str], InstalledModel],
    install_into_home: Callable[[InstalledModel], InstalledModel],
    tmp_path: Path,
    capsys: pytest.CaptureFixture[str],
) -> None:
    """`make bench --json` end to end: a child process per measurement, one JSON object."""
    installed = install_into_home(tiny_quantized("qwen2"))
    argv = ["--json", "--model", installed.name, "--repeats", "1", "--decode-tokens", "6"]
    argv += ["--lengths", "64", "96", "--turns", "2", "--turn-tokens", "20", "--threads", "1"]
    argv += ["--no-ui", "--baseline", "none", "--results-dir", str(tmp_path)]
    assert harness.main(argv) == 0
    printed = json.loads(capsys.readouterr().out)
    for key in ("decode_tok_s", "ttft_turn1_s", "peak_rss_mb", "load_s"):
        assert printed[key] > 0, key
    assert set(printed["prefill_tok_s"]) == set(printed["ttft_s"]) == {"64", "96"}
    assert printed["machine"]["cpu"] and printed["machine"]["kernel"]
    assert printed["models"][installed.name]["errors"] == {}
    assert list(tmp_path.glob("*.json"))  # and the same report was saved


@pytest.mark.slow
def test_benchmark_tokenizer_is_qwen2s_as_llama_cpp_recognises_it(tmp_path: Path) -> None:
    """The 1.8B model's tokenizer, rebuilt from qwen.tiktoken, hashes like Qwen1.5's in
    llama.cpp's converter (convert_hf_to_gguf.py get_vocab_base_pre), so GGUF conversion works."""
    from hashlib import sha256

    from benchmarks.models import QWEN_SPECIAL_IDS, build_qwen2_tokenizer

    tokenizer = build_qwen2_tokenizer(tmp_path)
    check = (
        "\n \n\n \n\n\n \t \t\t \t\n  \n   \n    \n     \n🚀 (normal) 😶\u200d🌫️ (multiple emojis "
        "concatenated) ✅ 🦙🦙 3 33 333 3333 33333 333333 3333333 33333333 3.3 3..3 3...3 "
        "កាន់តែពិសេសអាច😁 ?我想在apple工作1314151天～ ------======= нещо на Български "
        "''''''```````\"\"\"\"......!!!!!!?????? I've been 'told he's there, 'RE you sure? "
        "'M not sure I'll make it, 'D you like some tea? We'Ve a'lL"
    )
    digest = sha256(str(tokenizer.encode(check)).encode()).hexdigest()
    assert digest == "e636dc30a262dcc0d8c323492e32ae2b70728f4df7dfe9737d9f920a282b8aea"
    assert tokenizer.convert_tokens_to_ids(list(QWEN_SPECIAL_IDS)) == [151643, 151644, 151645]
    assert tokenizer.decode(tokenizer.encode("Hello, 世界!")) == "Hello, 世界!"
