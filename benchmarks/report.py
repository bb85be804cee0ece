"""The benchmark's numbers: medians and spreads of the repeats, ratios to llama.cpp, the
issue's targets, the Markdown table, the JSON file and the docs section.

The JSON keys are documented in benchmarks/README.md; scripts rely on them.
"""

from __future__ import annotations

import json
import statistics
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

BASELINES = ("llamacpp", "hf")
BASELINE_TITLES = {"llamacpp": "llama.cpp Q4_0", "hf": "transformers bf16"}


# Targets of the performance issue, checked on the 1.8B model (same run, same model).
TARGETS: dict[str, tuple[str, float]] = {
    "decode_tok_s": (">=", 25.0),
    "decode_vs_llamacpp": (">=", 0.75),
    "prefill_tok_s.512": (">=", 100.0),
    "ttft_turn10_over_turn1": ("<=", 1.5),
    "peak_rss_mb": ("<=", 2048.0),
    "ui_overhead_pct": ("<=", 3.0),
}


# ---------------------------------------------------------------------------- summaries


@dataclass
class Metrics:
    """Samples per metric name (`prefill_tok_s.512`); medians and spreads come from them."""

    samples: dict[str, list[float]] = field(default_factory=dict)

    def add(self, name: str, value: Any) -> None:
        if isinstance(value, dict):
            for key, inner in value.items():
                self.add(f"{name}.{key}", inner)
        elif isinstance(value, int | float) and not isinstance(value, bool):
            self.samples.setdefault(name, []).append(float(value))

    def median(self, name: str) -> float | None:
        values = self.samples.get(name)
        return statistics.median(values) if values else None

    def spread(self) -> dict[str, dict[str, float]]:
        return {
            name: {"min": min(v), "max": max(v), "n": len(v)}
            for name, v in sorted(self.samples.items())
        }

    def nested(self, names: Iterable[str]) -> dict[str, Any]:
        """Medians, with `a.b` names folded into {"a": {"b": ...}} as the JSON keys promise."""
        out: dict[str, Any] = {}
        for name in names:
            for sample_name in sorted(self.samples):
                head, _, tail = sample_name.partition(".")
                if head != name:
                    continue
                if tail:
                    out.setdefault(head, {})[tail] = self.median(sample_name)
                else:
                    out[head] = self.median(sample_name)
        return out


ENGINE_KEYS = ("decode_tok_s", "prefill_tok_s", "ttft_s", "ttft_turn1_s", "peak_rss_mb", "load_s")
BASELINE_KEYS = ("decode_tok_s", "prefill_tok_s", "ttft_s", "peak_rss_mb", "load_s")


def summarize(runs: list[dict[str, Any]], keys: Iterable[str]) -> dict[str, Any]:
    metrics = Metrics()
    for run in runs:
        for key, value in run.items():
            metrics.add(key, value)
    keys = tuple(keys)
    summary = {key: None for key in keys} | metrics.nested(keys)
    summary["spread"] = metrics.spread()
    summary["errors"] = {k: v for run in runs for k, v in (run.get("errors") or {}).items()}
    summary["runs"] = runs
    return summary


def ui_summary(run: dict[str, Any]) -> dict[str, Any]:
    ui = statistics.median(run["ui_decode_tok_s"])
    alone = statistics.median(run["engine_decode_tok_s"])
    return {
        "ui_decode_tok_s": ui,
        "engine_decode_tok_s": alone,
        "ui_overhead_pct": 100.0 * (1.0 - ui / alone),
        "ui_runs": run,
    }


def comparisons(result: dict[str, Any]) -> dict[str, float | None]:
    """Ratios qwen-tui / llama.cpp of every shared key (higher is better for tok/s only)."""
    base = result.get("llamacpp") or {}
    ratios: dict[str, float | None] = {}
    for key in BASELINE_KEYS:
        ours, theirs = result.get(key), base.get(key)
        if isinstance(ours, dict) and isinstance(theirs, dict):
            for n in ours:
                ratios[f"{key}.{n}"] = _ratio(ours[n], theirs.get(n))
        else:
            ratios[key] = _ratio(ours, theirs)
    return ratios


def _ratio(ours: Any, theirs: Any) -> float | None:
    if isinstance(ours, int | float) and isinstance(theirs, int | float) and theirs:
        return ours / theirs
    return None


def target_checks(result: dict[str, Any]) -> dict[str, dict[str, Any]]:
    turn1, turn10 = result.get("ttft_turn1_s"), result.get("ttft_turn10_s")
    values = {
        "decode_tok_s": result.get("decode_tok_s"),
        "decode_vs_llamacpp": result.get("vs_llamacpp", {}).get("decode_tok_s"),
        "prefill_tok_s.512": (result.get("prefill_tok_s") or {}).get("512"),
        "ttft_turn10_over_turn1": _ratio(turn10, turn1),
        "peak_rss_mb": result.get("peak_rss_mb"),
        "ui_overhead_pct": result.get("ui_overhead_pct"),
    }
    checks = {}
    for name, (op, limit) in TARGETS.items():
        value = values[name]
        ok = None if value is None else (value >= limit if op == ">=" else value <= limit)
        checks[name] = {"value": value, "target": f"{op} {limit:g}", "ok": ok}
    return checks


# ---------------------------------------------------------------------------- output


def _fmt(value: Any, digits: int = 1) -> str:
    if value is None:
        return "n/a"
    if isinstance(value, bool):
        return "yes" if value else "NO"
    if abs(value) < 10 and digits < 3:
        return f"{value:.{digits + 1}f}"
    return f"{value:.{digits}f}"


def _spread_pct(result: dict[str, Any], name: str) -> str:
    spread = (result.get("spread") or {}).get(name)
    if not spread or spread["n"] < 2:
        return ""
    values = result["spread"][name]
    middle = (values["min"] + values["max"]) / 2 or 1
    return f" ±{50 * (values['max'] - values['min']) / middle:.0f}%"


def table_rows(lengths: Iterable[int], turns: int) -> list[tuple[str, str]]:
    """(label, metric name) rows of the table, `name` as in the spread dict."""
    rows = [("decode tok/s", "decode_tok_s")]
    rows += [(f"prefill tok/s @{n}", f"prefill_tok_s.{n}") for n in lengths]
    rows += [(f"TTFT s @{n}", f"ttft_s.{n}") for n in lengths]
    rows += [
        ("TTFT turn 1 s", "ttft_turn1_s"),
        (f"TTFT turn {turns} s", f"ttft_turn{turns}_s"),
        ("peak RSS MB", "peak_rss_mb"),
        ("load s", "load_s"),
        ("quantize s", "quantize_s"),
        ("quantize peak RSS MB", "quantize_peak_rss_mb"),
        ("UI decode tok/s", "ui_decode_tok_s"),
        ("UI overhead %", "ui_overhead_pct"),
    ]
    return rows


def _value(result: dict[str, Any], name: str) -> Any:
    head, _, tail = name.partition(".")
    value = result.get(head)
    return value.get(tail) if tail and isinstance(value, dict) else value


def format_table(name: str, result: dict[str, Any], plan: dict[str, Any]) -> str:
    """A Markdown table: qwen-tui, each baseline, and qwen-tui ÷ llama.cpp."""
    kinds = [k for k in BASELINES if isinstance(result.get(k), dict)]
    header = ["metric", "qwen-tui", *(BASELINE_TITLES[k] for k in kinds), "qwen-tui ÷ llama.cpp"]
    spent = ", ".join(f"{k} {v:.0f} s" for k, v in (result.get("worker_time_s") or {}).items())
    lines = [f"**{name}** (bigdl kernel {result.get('kernel') or '?'}; time: {spent})", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for label, metric in table_rows(plan["prompt_lengths"], plan["turns"]):
        cells = [label, _fmt(_value(result, metric)) + _spread_pct(result, metric)]
        for kind in kinds:
            other = result[kind]
            value = "n/a" if "error" in other else _fmt(_value(other, metric))
            cells.append(value + _spread_pct(other, metric))
        ratio = (result.get("vs_llamacpp") or {}).get(metric)
        cells.append("n/a" if ratio is None else f"{ratio:.2f}")
        lines.append("| " + " | ".join(cells) + " |")
    problems = [(BASELINE_TITLES[k], result[k]["error"]) for k in kinds if "error" in result[k]]
    for kind in ("", *kinds):
        errors = (result[kind] if kind else result).get("errors") or {}
        title = BASELINE_TITLES.get(kind, "qwen-tui")
        problems += [(f"{title} {metric}", error) for metric, error in errors.items()]
    if result.get("ui_error"):
        problems.append(("UI overhead", result["ui_error"]))
    if problems:
        lines.append("")
    lines += [f"- failed: {what}: {error}" for what, error in problems]
    return "\n".join(lines)


def format_targets(result: dict[str, Any]) -> str:
    lines = ["| target | value | limit | met |", "|---|---|---|---|"]
    for name, check in (result.get("targets") or {}).items():
        value = _fmt(check["value"], 2)
        lines.append(f"| {name} | {value} | {check['target']} | {_fmt(check['ok'])} |")
    return "\n".join(lines)


def format_report(report: dict[str, Any]) -> str:
    machine = report["machine"]
    parts = [
        f"Machine: {machine['cpu']} ({machine['vendor']}), {machine['physical_cores']} cores, "
        f"{machine['ram_gb']} GB RAM; bigdl kernel {machine.get('kernel') or '?'}, "
        f"{machine.get('threads')} threads; load average {machine['load_average'][0]:.2f} "
        f"at start, {machine.get('load_average_end', [0])[0]:.2f} at end",
        f"Flags: {' '.join(machine['flags'])}",
        f"Command: `{report['command']}` ({report['plan']['repeats']} repeats, "
        f"medians ± half the min-max spread; wall time {report['wall_s']:.0f} s)",
    ]
    for name, result in report["models"].items():
        parts += ["", format_table(name, result, report["plan"])]
    parts += ["", f"Targets ({report['model']}):", "", format_targets(report)]
    return "\n".join(parts)


def save_report(report: dict[str, Any], results_dir: Path) -> Path:
    results_dir.mkdir(parents=True, exist_ok=True)
    stamp = time.strftime("%Y%m%d-%H%M%S")
    quick = "-quick" if report["plan"]["quick"] else ""
    path = results_dir / f"{stamp}-{report['model']}{quick}.json"
    path.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    return path


def default_results_dir() -> Path:
    return Path(__file__).resolve().parent / "results"


DOCS_START, DOCS_END = "<!-- bench:latest:start -->", "<!-- bench:latest:end -->"


def update_docs(report: dict[str, Any], docs: Path) -> None:
    """Replace the latest-run section of docs/BENCHMARKS.md with this run's table."""
    text = docs.read_text(encoding="utf-8")
    if DOCS_START not in text or DOCS_END not in text:
        raise ValueError(f"{docs} has no {DOCS_START} ... {DOCS_END} section")
    before, rest = text.split(DOCS_START, 1)
    _, after = rest.split(DOCS_END, 1)
    body = f"Run {report['date']}.\n\n{format_report(report)}\n"
    docs.write_text(f"{before}{DOCS_START}\n{body}{DOCS_END}{after}", encoding="utf-8")
